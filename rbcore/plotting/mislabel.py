"""Figures of notebook 02 (mislabel discovery); data from rbcore.mislabel."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "mislabel_output_distribution",
    "mislabel_ratio",
    "detection_pr",
    "mislabel_recall",
]


_LABEL_NAMES = {0: "Label: Bogus", 1: "Label: Real"}
_LABEL_COLORS = {0: "tab:red", 1: "tab:blue"}


def mislabel_output_distribution(
    logits_by_method: dict, labels, *, bins: np.ndarray | None = None
) -> plt.Figure:
    """Output distribution of the training data by given label, log counts (talk: 学習データの出力分布).

    Args:
        logits_by_method: {panel title: float[N] logits}, e.g. in-sample and out-of-fold.
        labels: int[N] given labels (1 = real).
        bins: histogram edges on the logit; default 60 bins over the common range.

    Returns:
        The Figure, one panel per method.
    """
    labels = np.asarray(labels)
    if bins is None:
        allv = np.concatenate([np.asarray(v, float) for v in logits_by_method.values()])
        bins = np.linspace(np.floor(allv.min()), np.ceil(allv.max()) + 1e-9, 61)
    n = len(logits_by_method)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.2), sharey=True, squeeze=False)
    for ax, (title, v) in zip(axes[0], logits_by_method.items(), strict=True):
        v = np.asarray(v, float)
        for lab in (1, 0):
            ax.hist(v[labels == lab], bins=bins, histtype="step", lw=1.4,
                    color=_LABEL_COLORS[lab], label=f"{_LABEL_NAMES[lab]} ({(labels == lab).sum()})")  # fmt: skip
        ax.set_yscale("log")
        ax.axvline(0.0, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("CNN output (logit)")
        ax.set_title(title, fontsize=9)
    axes[0, 0].set_ylabel("samples")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def mislabel_ratio(table) -> plt.Figure:
    """Mislabel ratio in bins of the CNN output: inspection-sample estimate vs truth.

    Args:
        table: `rbcore.mislabel.review.inspection_table` output (label, lo, hi, n, n_inspected,
            est, est_lo, est_hi, true_frac).

    Returns:
        The Figure: per given label, the sample counts (top) and the mislabel fraction
        (bottom) with Clopper-Pearson error bars; talk: 後分類の分布と誤ラベルの比率.
    """
    fig, axes = plt.subplots(2, 2, figsize=(8.4, 5.2), sharex=True, height_ratios=(1, 1.6))
    for col, lab in enumerate((1, 0)):
        t = table[(table["label"] == lab) & (table["n"] > 0)]
        lo, hi = t["lo"].to_numpy(float), t["hi"].to_numpy(float)
        finite = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
        width = np.median(np.diff(np.unique(finite))) if finite.size > 1 else 1.0
        lo = np.where(np.isfinite(lo), lo, hi - width)  # open end bins drawn one width wide
        hi = np.where(np.isfinite(hi), hi, lo + width)
        x = (lo + hi) / 2
        top, ax = axes[0, col], axes[1, col]
        top.bar(x, t["n"], width=hi - lo, color=_LABEL_COLORS[lab], alpha=0.35, label="in bin")
        top.bar(x, t["n_inspected"], width=hi - lo, color=_LABEL_COLORS[lab], label="inspected")
        top.set_yscale("log")
        top.set_title(_LABEL_NAMES[lab], fontsize=9)
        est = t["est"].to_numpy(float)
        err = np.vstack([est - t["est_lo"].to_numpy(float), t["est_hi"].to_numpy(float) - est])
        ax.errorbar(x - 0.08 * width, est, yerr=err, fmt="o", ms=4, color=_LABEL_COLORS[lab],
                    capsize=2, label="inspection sample")  # fmt: skip
        if "true_frac" in t and t["true_frac"].notna().any():
            ax.plot(x + 0.08 * width, t["true_frac"], "k_", ms=10, mew=2, label="truth (all)")
        ax.set_xlabel("CNN output (logit)")
        ax.set_ylim(-0.03, 1.03)
    axes[0, 0].set_ylabel("samples")
    axes[1, 0].set_ylabel("mislabel fraction")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def detection_pr(curves: dict, points: dict | None = None, *, ax=None) -> plt.Figure:
    """Precision-recall of mislabel detection against the truth.

    Args:
        curves: {name: (precision[M], recall[M])} from ranking by margin.
        points: {name: (precision, recall)} of the flag sets (rule at the threshold, cleanlab).
        ax: optional Axes.

    Returns:
        The Figure.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4.6, 3.8))
    for (name, (p, r)), c in zip(
        curves.items(), ("tab:blue", "tab:orange", "tab:green", "tab:purple"), strict=False
    ):
        ax.plot(r, p, color=c, lw=1.3, label=f"{name} (margin ranking)")
    markers = iter("os^Dv")
    for name, (p, r) in (points or {}).items():
        if p is not None and r is not None:
            ax.plot(r, p, next(markers), ms=7, mfc="none", mew=1.5, label=name)
    ax.set_xlabel("recall (true mislabels found)")
    ax.set_ylabel("precision (flagged that are mislabels)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def mislabel_recall(tables: dict) -> plt.Figure:
    """Recall of each detection method per group (S/N bin, category), with error bars.

    Args:
        tables: {panel title: `rbcore.mislabel.review.recall_by_group` DataFrame}.

    Returns:
        The Figure, one panel per table.
    """
    n = len(tables)
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n, 3.6), squeeze=False)
    for ax, (title, t) in zip(axes[0], tables.items(), strict=True):
        groups = list(dict.fromkeys(t["group"]))
        methods = list(dict.fromkeys(t["method"]))
        for j, m in enumerate(methods):
            s = t[t["method"] == m].set_index("group").reindex(groups)
            x = np.arange(len(groups)) + (j - (len(methods) - 1) / 2) * 0.22
            r = s["recall"].to_numpy(float)
            err = np.vstack([r - s["lo"].to_numpy(float), s["hi"].to_numpy(float) - r])
            ax.errorbar(x, r, yerr=err, fmt="o", ms=4, capsize=2, label=m)
        counts = t.drop_duplicates("group").set_index("group")["n_wrong"].reindex(groups)
        ax.set_xticks(np.arange(len(groups)))
        ax.set_xticklabels([f"{g}\n(n={c})" for g, c in zip(groups, counts, strict=True)],
                           rotation=30, ha="right", fontsize=7)  # fmt: skip
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel("recall")
        ax.set_title(title, fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
