"""Figures of notebook 05 (a week in the pipeline); data from rbcore.deploy.report."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "registered_per_night_bars",
    "budget_threshold_curves",
]


def registered_per_night_bars(per_night, *, budget: float | None = None, ax=None) -> plt.Figure:
    """Registered candidates per night before (Current) and after (VAT), at the talk's volume.

    Args:
        per_night: `rbcore.deploy.report.registered_per_night` table (night, model,
            n_talk_volume, n_raw).
        budget: a nightly budget drawn as a line (talk: 150 a day).
        ax: optional Axes.

    Returns:
        The Figure: bars per night and model, log scale, raw counts annotated.
    """
    fig, ax = _deploy_fig_ax(ax, (6.5, 3.6))
    nights = sorted(per_night["night"].unique())
    models = list(dict.fromkeys(per_night["model"]))
    width = 0.8 / max(len(models), 1)
    for i, m in enumerate(models):
        t = per_night[per_night["model"] == m].set_index("night").reindex(nights)
        x = np.arange(len(nights)) + (i - (len(models) - 1) / 2) * width
        v = t["n_talk_volume"].to_numpy(float)
        ax.bar(x, np.where(v > 0, v, np.nan), width, label=m)
        for xi, vi, r in zip(x, v, t["n_raw"], strict=True):
            ax.text(xi, vi if vi > 0 else 1, f"{int(r)}", ha="center", va="bottom", fontsize=6)
    if budget is not None:
        ax.axhline(budget, color="k", ls="--", lw=0.8, label=f"budget {budget:g}/night")
    ax.set_xticks(np.arange(len(nights)), [str(n) for n in nights])
    ax.set_yscale("log")
    ax.set_xlabel("night")
    ax.set_ylabel("registered per night\n(effective, at 8.2 M candidates/night)")
    ax.set_title("bars: effective count at the talk's volume; numbers: rows simulated", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def budget_threshold_curves(
    curves: dict, *, budget: float, chosen: dict | None = None
) -> plt.Figure:
    """Registered candidates per night and transient completeness against the threshold.

    Args:
        curves: {model: `rbcore.deploy.report.budget_curves` table}.
        budget: the nightly budget (line on the left panel).
        chosen: {model: `budget_threshold` dict}, marked on both panels.

    Returns:
        The Figure: registered per night (log) | completeness, both against logit(threshold).
    """
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (m, c) in enumerate(curves.items()):
        col = f"C{i}"
        x = c["logit_threshold"].to_numpy()
        reg = c["registered_per_night"].to_numpy()
        a1.plot(x, np.where(reg > 0, reg, np.nan), color=col, label=m)
        a2.plot(x, c["completeness"], color=col, label=m)
        pick = (chosen or {}).get(m)
        if pick and np.isfinite(pick["logit_threshold"]):
            a1.plot(pick["logit_threshold"], pick["registered_per_night"], "o", color=col)
            a2.plot(pick["logit_threshold"], pick["completeness"], "o", color=col)
            a2.annotate(
                f"p >= {pick['threshold']:.4g}: {pick['completeness']:.2f}",
                (pick["logit_threshold"], pick["completeness"]),
                fontsize=7, xytext=(4, -10 - 10 * i), textcoords="offset points", color=col,
            )  # fmt: skip
    a1.axhline(budget, color="k", ls="--", lw=0.8, label=f"budget {budget:g}/night")
    a1.set_yscale("log")
    a1.set_ylabel("registered per night (talk's volume)")
    a2.set_ylabel("completeness of transients")
    a2.set_ylim(-0.02, 1.02)
    for a in (a1, a2):
        a.set_xlabel("threshold, logit(p)")
        a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _deploy_fig_ax(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax
