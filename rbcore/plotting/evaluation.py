"""Figures of notebooks 04 (evaluation) and 06 (real alerts).

Data from rbcore.metrics and rbcore.evaluation (notebook 04) and rbcore.ztf (notebook 06).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "output_distributions",
    "confusion_matrices",
    "roc_curves",
    "pr_curves",
    "completeness_curves",
    "fpr_by_category_plot",
    "reliability_diagram",
    "score_vs_drb",
]


_MODEL_COLORS = ("tab:orange", "tab:green", "tab:purple", "tab:brown")
_CLASS_STYLE = {1: ("Real", "tab:blue"), 0: ("Bogus", "tab:red")}


def output_distributions(
    logits_by_model: dict, labels, *, threshold: float = 0.0, bins: int = 60
) -> plt.Figure:
    """Output (logit) distributions of real and bogus test samples, log counts, one panel per model.

    Args:
        logits_by_model: {model name: float[N] logits on the test set}.
        labels: int[N] 0/1 (1 = real).
        threshold: logit of the decision threshold, drawn as a line (0 = probability 0.5).
        bins: number of histogram bins over the common range.

    Returns:
        The Figure (talk: 出力分布, "Evaluation with actual test dataset").
    """
    labels = np.asarray(labels)
    allv = np.concatenate([np.asarray(v, float) for v in logits_by_model.values()])
    edges = np.linspace(np.floor(allv.min()), np.ceil(allv.max()) + 1e-9, bins + 1)
    n = len(logits_by_model)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.2), sharey=True, squeeze=False)
    for ax, (name, v) in zip(axes[0], logits_by_model.items(), strict=True):
        v = np.asarray(v, float)
        for lab in (0, 1):
            text, color = _CLASS_STYLE[lab]
            sel = v[labels == lab]
            ax.hist(sel, bins=edges, histtype="step", lw=1.4, color=color,
                    label=f"{text} ({sel.size:,})")  # fmt: skip
        ax.set_yscale("log")
        ax.axvline(threshold, color="0.4", lw=0.8, ls=":")
        ax.set_xlabel("CNN output (logit)")
        ax.set_title(name, fontsize=9)
    axes[0, 0].set_ylabel("test samples")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def confusion_matrices(cms: dict, *, threshold: float = 0.5) -> plt.Figure:
    """Normalized confusion matrices with the counts in brackets, as the talk shows them.

    Args:
        cms: {model name: int[2, 2] counts [[TN, FP], [FN, TP]]} (rows: true Bogus, Real).
        threshold: the probability threshold, quoted in the titles.

    Returns:
        The Figure, one panel per model: colour and first number the row-normalized rate,
        in brackets the count (talk: "Normalized confusion matrix, accuracy, threshold").
    """
    n = len(cms)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False)
    for ax, (name, cm) in zip(axes[0], cms.items(), strict=True):
        cm = np.asarray(cm)
        if cm.shape != (2, 2):
            raise ValueError(f"confusion matrix of {name} must be 2x2, got {cm.shape}")
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, f"{norm[i, j]:.3f}\n({cm[i, j]:,})", ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=9)  # fmt: skip
        ax.set_xticks([0, 1], ["Bogus", "Real"])
        ax.set_yticks([0, 1], ["Bogus", "Real"])
        ax.set_xlabel("Predicted label")
        ax.set_ylabel("True label")
        acc = np.trace(cm) / max(cm.sum(), 1)
        ax.set_title(f"{name}\naccuracy {acc:.4f}, threshold {threshold}", fontsize=9)
    fig.tight_layout()
    return fig


def roc_curves(curves: dict, *, aucs: dict | None = None, tpr_mark: float = 0.9) -> plt.Figure:
    """ROC curves, linear and with a logarithmic FPR axis (the region near FPR 1e-4).

    Args:
        curves: {model name: (fpr float[K], tpr float[K])}.
        aucs: {model name: AUC} for the legend.
        tpr_mark: the TPR of the talk's FPR@TPR, drawn as a line.

    Returns:
        The Figure, two panels.
    """
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.6))
    for k, (name, (fpr, tpr)) in enumerate(curves.items()):
        label = name if not aucs else f"{name} (AUC {aucs[name]:.4f})"
        for ax in axes:
            ax.plot(fpr, tpr, color=_MODEL_COLORS[k % 4], lw=1.4, label=label)
    positive = [np.asarray(f)[np.asarray(f) > 0] for f, _ in curves.values()]
    fmin = min((p.min() for p in positive if p.size), default=1e-5)
    axes[1].set_xscale("log")
    axes[1].set_xlim(fmin / 2, 1.0)
    for ax in axes:
        ax.axhline(tpr_mark, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("False positive rate")
        ax.set_ylabel("True positive rate")
    axes[0].legend(fontsize=7, loc="lower right")
    axes[0].set_title("ROC", fontsize=9)
    axes[1].set_title("ROC, logarithmic FPR", fontsize=9)
    fig.tight_layout()
    return fig


def pr_curves(curves: dict, *, prevalence: float | None = None) -> plt.Figure:
    """Precision-recall curves of the models.

    Args:
        curves: {model name: (precision float[K], recall float[K])}.
        prevalence: fraction of reals in the test set: the precision of a random classifier.

    Returns:
        The Figure.
    """
    fig, ax = plt.subplots(figsize=(4.4, 3.6))
    for k, (name, (precision, recall)) in enumerate(curves.items()):
        ax.plot(recall, precision, color=_MODEL_COLORS[k % 4], lw=1.4, label=name)
    if prevalence is not None:
        ax.axhline(prevalence, color="0.5", lw=0.8, ls=":", label=f"prevalence {prevalence:.2g}")
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def completeness_curves(
    tables: dict, *, xlabel: str, invert_x: bool = False, rate_label: str = "completeness"
) -> plt.Figure:
    """Completeness with 95 % binomial intervals against a binned quantity, one panel per category.

    Args:
        tables: {model name: DataFrame from rbcore.evaluation.completeness_vs} (columns
            category, center, bin_lo, bin_hi, n, rate, ci_lo, ci_hi).
        xlabel: axis label ("injected magnitude", "S/N").
        invert_x: True for magnitudes (bright on the left).
        rate_label: y-axis label.

    Returns:
        The Figure.
    """
    cats = sorted({c for t in tables.values() for c in t["category"]})
    n = max(1, len(cats))
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.2), sharex=True, sharey=True, squeeze=False)
    for ax, cat in zip(axes[0], cats, strict=False):
        for k, (name, t) in enumerate(tables.items()):
            t = t[(t["category"] == cat) & (t["n"] > 0)]
            x = t["center"].to_numpy() + (k - 0.5) * 0.06 * (t["bin_hi"] - t["bin_lo"]).to_numpy()
            yerr = np.vstack([t["rate"] - t["ci_lo"], t["ci_hi"] - t["rate"]])
            ax.errorbar(x, t["rate"], yerr=yerr, fmt="o-", ms=3, lw=1, capsize=2,
                        color=_MODEL_COLORS[k % 4], label=name)  # fmt: skip
        first = next(iter(tables.values()))
        n_cat = int(first.loc[first["category"] == cat, "n"].sum())
        ax.set_title(f"{cat} (n = {n_cat})", fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.03, 1.05)
    if invert_x:
        axes[0, 0].invert_xaxis()  # once: the panels share the x axis
    if not cats:
        axes[0, 0].text(0.5, 0.5, "no reals", ha="center", transform=axes[0, 0].transAxes)
    axes[0, 0].set_ylabel(rate_label)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def fpr_by_category_plot(tables: dict, *, title: str | None = None) -> plt.Figure:
    """False-positive rate of each bogus category with 95 % intervals, logarithmic axis.

    Args:
        tables: {model name: DataFrame from rbcore.evaluation.fpr_by_category} (columns
            category, n, n_fp, fpr, ci_lo, ci_hi).
        title: figure title (e.g. the threshold).

    Returns:
        The Figure; a category without false positives is drawn as its upper limit (◁).
    """
    cats = sorted({c for t in tables.values() for c in t["category"]})
    fig, ax = plt.subplots(figsize=(6.0, 0.35 * len(cats) + 1.4))
    y0 = np.arange(len(cats))
    ends = np.concatenate(
        [t[["fpr", "ci_lo", "ci_hi"]].to_numpy(float).ravel() for t in tables.values()]
    )
    ends = ends[np.isfinite(ends) & (ends > 0)]
    floor = ends.min() if ends.size else 1e-4
    for k, (name, t) in enumerate(tables.items()):
        t = t.set_index("category").reindex(cats)
        y = y0 + (k - (len(tables) - 1) / 2) * 0.25
        zero = (t["n_fp"] == 0).to_numpy()
        fpr, lo, hi = t["fpr"].to_numpy(), t["ci_lo"].to_numpy(), t["ci_hi"].to_numpy()
        nz = ~zero
        ax.errorbar(fpr[nz], y[nz], xerr=np.vstack([fpr[nz] - lo[nz], hi[nz] - fpr[nz]]),
                    fmt="o", ms=4, capsize=2, color=_MODEL_COLORS[k % 4], label=name)  # fmt: skip
        ax.plot(hi[zero], y[zero], "<", ms=5, color=_MODEL_COLORS[k % 4])
    ax.set_xscale("log")
    ax.set_xlim(left=floor / 2)
    ax.set_yticks(y0, [f"{c} ({int(n):,})" for c, n in zip(cats, _category_counts(tables, cats), strict=True)])  # fmt: skip
    ax.set_xlabel("false-positive rate (◁: none seen, 95 % upper limit)")
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _category_counts(tables: dict, cats) -> list:
    first = next(iter(tables.values())).set_index("category")
    return [first["n"].get(c, 0) for c in cats]


def reliability_diagram(tables: dict, *, title: str | None = None) -> plt.Figure:
    """Reliability diagram: observed fraction of reals against mean predicted probability.

    Args:
        tables: {curve name: DataFrame from rbcore.evaluation.reliability_table} (columns
            bin_lo, bin_hi, n, rate, ci_lo, ci_hi, mean_prob), e.g. each model before and after
            temperature scaling.
        title: figure title.

    Returns:
        The Figure: the diagram (diagonal = calibrated) above the samples per bin (log).
    """
    fig, (ax, axn) = plt.subplots(2, 1, figsize=(4.6, 5.2), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.2]})  # fmt: skip
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    for k, (name, table) in enumerate(tables.items()):
        t = table[table["n"] > 0]
        yerr = np.vstack([t["rate"] - t["ci_lo"], t["ci_hi"] - t["rate"]])
        ax.errorbar(t["mean_prob"], t["rate"], yerr=yerr, fmt="o-", ms=3, lw=1, capsize=2,
                    color=_MODEL_COLORS[k % 4], label=name)  # fmt: skip
        edges = np.r_[table["bin_lo"].to_numpy(), table["bin_hi"].to_numpy()[-1]]
        axn.stairs(table["n"].to_numpy(), edges, color=_MODEL_COLORS[k % 4], lw=1)
    ax.set_ylabel("observed fraction of reals")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    axn.set_yscale("log")
    axn.set_ylabel("samples")
    axn.set_xlabel("predicted probability of real")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ real alerts (notebook 06)
# Figures of notebook 06: our models' scores on real ZTF alerts against ZTF's drb.


def score_vs_drb(
    probs: dict,
    drb: np.ndarray,
    weak_labels: np.ndarray,
    *,
    threshold: float,
    drb_threshold: float = 0.5,
) -> plt.Figure:
    """One panel per model: our probability of real against ZTF's drb, per alert.

    Args:
        probs: model name -> float[N] probability of real (sigmoid of the logit).
        drb: float[N] ZTF deep real/bogus score; NaN alerts are left out (count in legend).
        weak_labels: int[N], 1 = matched to a known solar-system object (drawn as triangles).
        threshold: our registration threshold (horizontal line).
        drb_threshold: braai's decision threshold (vertical line; Duev et al. 2019).

    Returns:
        The Figure.
    """
    drb = np.asarray(drb, dtype=float)
    weak = np.asarray(weak_labels)
    has = np.isfinite(drb)
    fig, axes = plt.subplots(1, len(probs), figsize=(3.6 * len(probs), 3.4), squeeze=False)
    for ax, (name, p) in zip(axes[0], probs.items(), strict=True):
        p = np.asarray(p, dtype=float)
        other, ast = has & (weak != 1), has & (weak == 1)
        ax.scatter(drb[other], p[other], s=8, alpha=0.5, c="C0", label=f"other ({other.sum()})")
        ax.scatter(drb[ast], p[ast], s=14, marker="^", c="C3", label=f"asteroid ({ast.sum()})")
        ax.axhline(threshold, color="k", lw=0.8, ls="--", label=f"threshold {threshold:g}")
        ax.axvline(drb_threshold, color="gray", lw=0.8, ls=":", label=f"drb {drb_threshold:g}")
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("ZTF drb (braai)")
        ax.set_ylabel(f"{name}: probability of real")
        ax.set_title(f"{name} ({(~has).sum()} alerts without drb not shown)", fontsize=8)
        ax.legend(fontsize=6, loc="best", framealpha=0.8)
    fig.tight_layout()
    return fig
