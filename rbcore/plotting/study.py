"""Figures of notebook 07 (the label-noise study): the noise-rate sweep and the ablation."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["noise_sweep", "ablation_fpr"]

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
