"""Figures of the study: one function per figure, each taking data and returning a Figure.

Notebooks save figures with `save_figure`, as PDF (papers) and PNG (talks, README), named
after the notebook that made them (`04_roc`). Cutout triplets are shown as the talk shows
them: Ref | New | Sub columns, zscale, origin lower, the score in the title.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # headless runs (papermill, CI): non-interactive backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.visualization import ZScaleInterval  # noqa: E402

CHANNEL_NAMES = ("Ref", "New", "Sub")


def use_headless_backend() -> None:
    """Switch matplotlib to the non-interactive Agg backend."""
    plt.switch_backend("Agg")


def save_figure(fig: plt.Figure, figures_dir, name: str, *, dpi: int = 150) -> list[Path]:
    """Save `fig` as `figures_dir/name.pdf` and `figures_dir/name.png`.

    Returns:
        The two paths written.
    """
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.pdf", out / f"{name}.png"]
    # No creation date in the PDF: a rerun that draws the same figure writes the same bytes.
    fig.savefig(paths[0], dpi=dpi, bbox_inches="tight", metadata={"CreationDate": None})
    fig.savefig(paths[1], dpi=dpi, bbox_inches="tight")
    return paths


def _zscale(img: np.ndarray) -> tuple[float, float]:
    finite = img[np.isfinite(img)]
    if finite.size == 0 or finite.min() == finite.max():
        return 0.0, 1.0
    return ZScaleInterval().get_limits(finite)


def triplet_gallery(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    *,
    ncols_triplets: int = 1,
    panel_size: float = 1.3,
    suptitle: str | None = None,
) -> plt.Figure:
    """Cutout triplets as rows of Ref | New | Sub panels (zscale, origin lower).

    Args:
        images: float[N, H, W, 3] raw or normalized cutouts; NaN (masked) pixels are shown
            in the colormap's "bad" colour (red).
        titles: one string per triplet (e.g. "prediction: -2.19"), shown above its New panel.
        ncols_triplets: triplets side by side per figure row.
        panel_size: inches per panel.
        suptitle: figure title.

    Returns:
        The Figure.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"triplet_gallery expects images of shape [N, H, W, 3], got {images.shape}"
        )
    n = images.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} triplets")
    nrows = max(1, int(np.ceil(n / ncols_triplets)))
    ncols = 3 * ncols_triplets
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * panel_size, nrows * panel_size * 1.12), squeeze=False
    )
    cmap = plt.get_cmap("gray").with_extremes(bad="red")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for i in range(n):
        r, c0 = divmod(i, ncols_triplets)
        for ch in range(3):
            ax = axes[r, 3 * c0 + ch]
            ax.set_frame_on(True)
            img = images[i, :, :, ch]
            vmin, vmax = _zscale(img)
            ax.imshow(np.ma.masked_invalid(img), origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
            if r == 0:
                ax.set_xlabel(CHANNEL_NAMES[ch], fontsize=8)
                ax.xaxis.set_label_position("top")
            if ch == 1 and titles is not None:
                ax.set_title(titles[i], fontsize=7, pad=10 if r == 0 else 2)
    if n == 0:
        axes[0, 0].text(
            0.5, 0.5, "no samples", ha="center", va="center", transform=axes[0, 0].transAxes
        )
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


# ============================================================================ mislabel (issue 5)
# Figures of notebook 02_mislabel_discovery; data from rbcore.mislabel.

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
        table: `rbcore.mislabel.inspection_table` output (label, lo, hi, n, n_inspected,
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
        tables: {panel title: `rbcore.mislabel.recall_by_group` DataFrame}.

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


# ========================================================================== evaluation (issue 6)
# Figures of notebook 04_evaluation; data from rbcore.metrics and rbcore.evaluation.

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


# ======================================================================= real alerts (issue 8)
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


# ================================================================== data preparation (issue 3)
# Figures of notebook 01_data_preparation; data from rbcore.datasets / rbcore.simulation.


def category_counts(train_params, test_params=None) -> plt.Figure:
    """Number of samples per simulated category, split by label (log scale).

    Args:
        train_params: training params with `category` and `label` columns.
        test_params: optional test params (same columns).

    Returns:
        The Figure (one panel per set).
    """
    sets = [("training set", train_params)] + (
        [("test set", test_params)] if test_params is not None else []
    )
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 4.2), squeeze=False)
    for ax, (name, p) in zip(axes[0], sets, strict=True):
        tab = p.groupby(["category", "label"]).size().unstack(fill_value=0)
        tab = tab.reindex(columns=[0, 1], fill_value=0)
        y = np.arange(len(tab))
        ax.barh(y - 0.2, tab[0], height=0.4, color="tab:red", label="label bogus")
        ax.barh(y + 0.2, tab[1], height=0.4, color="tab:blue", label="label real")
        ax.set_yticks(y, tab.index, fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("samples")
        ax.set_title(f"{name} ({len(p):,} samples)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def real_magnitudes(train_params, test_params=None) -> plt.Figure:
    """Magnitude and S/N of the real samples: injections rand vs galx (and test supernovae).

    Args:
        train_params: training params with `object_type`, `mag`, `det_snr`, `noise_cause`.
        test_params: optional test params (real rows have label 1).

    Returns:
        The Figure: magnitude histograms | detection S/N against magnitude.
    """
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    groups = [
        (ot.split("_")[0], train_params[train_params["object_type"] == ot], c)
        for ot, c in (("rand_artificial_real", "tab:blue"), ("galx_artificial_real", "tab:orange"))
    ]
    if test_params is not None:
        groups.append(("test SNe", test_params[test_params["label"] == 1], "tab:green"))
    mags = np.concatenate([g["mag"].dropna().to_numpy() for _, g, _ in groups] or [np.zeros(1)])
    bins = np.linspace(np.floor(mags.min()), np.ceil(mags.max()), 30) if mags.size else 10
    for name, g, c in groups:
        a1.hist(
            g["mag"].dropna(),
            bins=bins,
            histtype="step",
            color=c,
            density=True,
            label=f"{name} ({len(g)})",
        )
        a2.scatter(g["mag"], np.clip(g["det_snr"], 0.1, None), s=3, alpha=0.4, color=c, label=name)
    a1.set_xlabel("magnitude")
    a1.set_ylabel("density")
    a1.legend(fontsize=7)
    a2.set_yscale("log")
    a2.axhline(5.0, color="k", lw=0.8, ls="--", label="detection threshold")
    a2.set_xlabel("magnitude")
    a2.set_ylabel("detection S/N in sub")
    a2.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    return fig


# ======================================================================= deployment (issue 7)


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


# ----------------------------------------------------------------------------------------
# Notebook 03 (training; issue 4): training curves and the eps/alpha sweep.
# ----------------------------------------------------------------------------------------


def training_curves(histories: dict, *, axes=None) -> plt.Figure:
    """Training loss terms, validation loss and validation AUC per epoch, one line per model.

    Args:
        histories: {model name: list of per-epoch dicts from `rbcore.train.fit`} (keys epoch,
            loss, ce, lds (VAT only), val_loss, val_auc).
        axes: optional sequence of three Axes.

    Returns:
        The Figure.
    """
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    else:
        fig = axes[0].figure
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, hist) in enumerate(histories.items()):
        col = colors[i % len(colors)]
        ep = [r["epoch"] for r in hist]
        axes[0].plot(ep, [r["ce"] for r in hist], "-o", ms=3, color=col, label=f"{name}: CE")
        if all("lds" in r for r in hist):
            axes[0].plot(ep, [r["lds"] for r in hist], "--s", ms=3, color=col, label=f"{name}: LDS")
        if all("val_loss" in r for r in hist):
            axes[1].plot(ep, [r["val_loss"] for r in hist], "-o", ms=3, color=col, label=name)
            axes[2].plot(ep, [r["val_auc"] for r in hist], "-o", ms=3, color=col, label=name)
    titles = ("training loss terms", "validation loss (BCE)", "validation AUC")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    fig.tight_layout()
    return fig


def vat_sweep(table, *, ax=None) -> plt.Figure:
    """Validation AUC of the eps/alpha sweep: AUC against eps, one line per alpha.

    Args:
        table: DataFrame with columns eps, alpha, val_auc (`rbcore.train.experiment.run_sweep`).
        ax: optional Axes.

    Returns:
        The Figure.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 3.4))
    else:
        fig = ax.figure
    for alpha, group in table.groupby("alpha"):
        g = group.sort_values("eps")
        ax.plot(g["eps"], g["val_auc"], "-o", ms=4, label=f"alpha = {alpha:g}")
    best = table.sort_values(["val_auc", "val_loss"], ascending=[False, True]).iloc[0]
    ax.plot(best["eps"], best["val_auc"], "*", ms=12, color="k", label="chosen")
    ax.set_xscale("log")
    ax.set_xlabel("eps (L2 norm of r_adv, normalized pixels)")
    ax.set_ylabel("validation AUC")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
