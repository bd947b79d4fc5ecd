"""Figures of notebook 07 (the label-noise study): the noise-rate sweep and the ablation."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["noise_sweep", "ablation_fpr", "decomposition_steps", "memorization_curves"]

_SWEEP_STYLE = {"current": ("Current", "o-"), "two_stage": ("two-stage (the paper)", "s-"),
                "oracle": ("oracle (true labels)", "^--")}  # fmt: skip


def noise_sweep(points: list[dict], *, axes=None) -> plt.Figure:
    """FPR at TPR 0.9 against the measured label-noise rate, and the flags' precision/recall.

    Args:
        points: the "sweep" entries of noise_study.json (noise_rate_real, noise_rate_bogus,
            current, two_stage, oracle, fpr_at_tpr90_ci95, mislabel_precision,
            mislabel_recall, noise_multiplier).
        axes: optional two Axes.

    Returns:
        The Figure: left, FPR at TPR 0.9 (bootstrap 95 % bars) of each model against the
        share of wrong labels (real and bogus together); right, precision and recall of the
        mislabel flags against the truth at each rate.
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    else:
        fig = axes[0].figure
    pts = sorted(points, key=lambda p: p["noise_multiplier"])
    x = np.array([(p["noise_rate_real"] + p["noise_rate_bogus"]) / 2 for p in pts]) * 100
    for key, (label, style) in _SWEEP_STYLE.items():
        y = np.array([p[key] for p in pts], float)
        ci = [p.get("fpr_at_tpr90_ci95", {}).get(key) for p in pts]
        if all(c is not None for c in ci):
            lo, hi = np.array(ci, float).T
            axes[0].errorbar(x, y, yerr=[y - lo, hi - y], fmt=style, ms=4, capsize=3, label=label)
        else:
            axes[0].plot(x, y, style, ms=4, label=label)
    for xi, p in zip(x, pts, strict=True):
        axes[0].annotate(f"×{p['noise_multiplier']:g}", (xi, 0), xycoords=("data", "axes fraction"),
                         xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7)  # fmt: skip
    axes[0].set_yscale("log")
    axes[0].set_xlabel("wrong labels, mean of real and bogus (%, measured)")
    axes[0].set_ylabel("FPR at TPR = 0.9 (test set)")
    axes[0].legend(fontsize=8)
    for key, style, label in (("mislabel_precision", "o-", "precision"),
                              ("mislabel_recall", "s-", "recall")):  # fmt: skip
        y = np.array([np.nan if p[key] is None else p[key] for p in pts], float)
        axes[1].plot(x, y, style, ms=4, label=label)
    axes[1].set_ylim(0, 1.02)
    axes[1].set_xlabel(axes[0].get_xlabel())
    axes[1].set_ylabel("mislabel flags against the truth")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def ablation_fpr(ablation: dict, *, ax=None) -> plt.Figure:
    """FPR at TPR 0.9 of each ablation row: bootstrap 95 % interval and the value at each seed.

    Args:
        ablation: the "ablation" entry of noise_study.json.
        ax: optional Axes.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(ablation) + 1.2))
    else:
        fig = ax.figure
    rows = list(ablation)
    for i, row in enumerate(rows):
        e = ablation[row]
        lo, hi = e["fpr_at_tpr90"]["ci95"]
        v = e["fpr_at_tpr90"]["value"]
        ax.errorbar(v, i, xerr=[[v - lo], [hi - v]], fmt="o", color="C0", capsize=3,
                    label="bootstrap 95 %" if i == 0 else None)  # fmt: skip
        seeds = e["fpr_at_tpr90_seeds"]["values"]
        if len(seeds) > 1:
            ax.plot(seeds, [i + 0.2] * len(seeds), "x", color="C1",
                    label="training seeds" if row == next(r for r in rows if len(
                        ablation[r]["fpr_at_tpr90_seeds"]["values"]) > 1) else None)  # fmt: skip
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("FPR at TPR = 0.9 (test set)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def decomposition_steps(steps: list[dict], *, aa: dict | None = None, ax=None) -> plt.Figure:
    """The gain of each step of the decomposition (issue 22): FPR ratio with its interval.

    Args:
        steps: the "steps" entries of noise_study.json ("from", "to", "what", "ratio",
            "ratio_ci", "detectable_ratio", "passes").
        aa: the "aa_check" entry (drawn last, grey), or None.
        ax: optional Axes.

    Returns:
        The Figure: one line per step, the ratio FPR(from) / FPR(to) at TPR 0.9 (> 1: the
        step lowers the false positives) with its 95 % interval (test-set bootstrap and
        training seeds); the band between 1/detectable and detectable ratio in grey, the
        effects the design could not have told from 1.
    """
    items = [(f"{s['what']}\n{s['from']} → {s['to']}", s, "C0") for s in steps]
    if aa is not None:
        items.append((f"A/A check: {aa['row']}, two seed sets", aa, "0.4"))
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.6 * len(items) + 1.2))
    else:
        fig = ax.figure
    for i, (_, s, color) in enumerate(items):
        if s.get("detectable_ratio"):
            d = s["detectable_ratio"]
            ax.plot([1 / d, d], [i, i], color="0.85", lw=8, solid_capstyle="butt",
                    label="not detectable (power 0.8)" if i == 0 else None)  # fmt: skip
        r = s["ratio"]
        if s.get("ratio_ci"):
            lo, hi = s["ratio_ci"]
            ax.errorbar(r, i, xerr=[[r - lo], [hi - r]], fmt="o", color=color, capsize=3,
                        mfc=color if s.get("passes") else "white")  # fmt: skip
        else:
            ax.plot(r, i, "o", color=color, mfc="white")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(range(len(items)), [t for t, _, _ in items], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("FPR ratio at TPR = 0.9, from / to (> 1: the step helps); filled: passes")
    if any(s.get("detectable_ratio") for _, s, _ in items):
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def memorization_curves(memorization: dict, *, ax=None) -> plt.Figure:
    """Share of wrong (solid) and right (dashed) training labels each model fits, per epoch.

    Args:
        memorization: the "memorization" entry of noise_study.json ({row: [{"epoch",
            "fit_wrong", "fit_right"}]}).
        ax: optional Axes.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    for k, (row, curve) in enumerate(memorization.items()):
        if not curve:
            continue
        e = [c["epoch"] for c in curve]
        color = f"C{k % 10}"
        wrong = [np.nan if c["fit_wrong"] is None else c["fit_wrong"] for c in curve]
        right = [np.nan if c["fit_right"] is None else c["fit_right"] for c in curve]
        ax.plot(e, wrong, "o-", color=color, ms=3, label=row)
        ax.plot(e, right, "s--", color=color, ms=3)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epoch")
    ax.set_ylabel("share of training labels fitted\n(solid: wrong labels, dashed: right)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
