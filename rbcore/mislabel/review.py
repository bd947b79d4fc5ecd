"""Review of mislabel flags: the talk's inspection-sample estimate, recall by group, galleries.

The talk (Takahashi 2021) estimates the mislabel ratio in bins of the CNN output from a
sample of cutouts inspected by eye ("誤分類しているものを標本調査 / ラベル間違いの比率を計算")
and quotes per-class rates (bogus 0.6 %, real 1.0 %). Here a person's inspection is emulated
by looking up the simulator's truth for a small random sample per bin, so the estimate can
be set beside the truth over all samples, which no published work could measure. Also the
recall of each detection method by S/N and category, the precision-recall curves of the
margin rankings, and the selection of the most confident disagreements for the galleries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rbcore.metrics import binomial_interval
from rbcore.mislabel.flags import wrong_side_margin

__all__ = [
    "logit_bin_edges",
    "inspection_table",
    "estimated_class_rates",
    "snr_groups",
    "recall_by_group",
    "detection_curves",
    "gallery_rows",
]


def logit_bin_edges(limit: float = 10.0, width: float = 2.0) -> np.ndarray:
    """Bin edges on the CNN output (logit): -inf, -limit, ..., +limit, +inf."""
    if limit <= 0 or width <= 0:
        raise ValueError(f"limit and width must be > 0, got {limit}, {width}")
    inner = np.arange(-limit, limit + width / 2, width)
    return np.concatenate([[-np.inf], inner, [np.inf]])


def inspection_table(
    logits,
    labels,
    label_is_wrong,
    *,
    bin_edges,
    n_inspect: int = 20,
    seed: int = 0,
    level: float = 0.6827,
) -> pd.DataFrame:
    """Mislabel fraction per (given label, output bin): inspection-sample estimate and truth.

    In every bin of the CNN output and for each given label, `n_inspect` samples (all, if
    fewer) are drawn at random and "inspected": their truth is looked up, as a person
    reviewing the cutouts would decide. The inspected fraction is the talk's estimate; the
    fraction over the whole bin is the truth.

    Args:
        logits: float[N] CNN output.
        labels: int[N] given labels.
        label_is_wrong: int[N] truth (the simulator's `label_is_wrong`).
        bin_edges: float[B+1] increasing edges (`logit_bin_edges`); bins are [lo, hi).
        n_inspect: cutouts inspected per bin and label.
        seed: draws of the inspection sample.
        level: coverage of the Clopper-Pearson interval.

    Returns:
        DataFrame, one row per (label, bin): label, bin, lo, hi, n, n_inspected,
        n_found, est, est_lo, est_hi, n_wrong, true_frac.

    Notes:
        The talk: "誤分類しているものを標本調査 / ラベル間違いの比率を計算"
        (a sample survey of the misclassified, the ratio of mislabels computed).
    """
    labels, logits = np.asarray(labels), np.asarray(logits, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != logits.shape or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0/1 and as long as the scores ({logits.shape})")
    wrong = np.asarray(label_is_wrong)
    if wrong.shape != labels.shape or not np.isin(wrong, (0, 1)).all():
        raise ValueError("label_is_wrong must be 0/1 and as long as labels")
    edges = np.asarray(bin_edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bin_edges must be increasing with at least two edges, got {edges}")
    if int(n_inspect) < 1:
        raise ValueError(f"n_inspect must be >= 1, got {n_inspect}")
    b = np.searchsorted(edges, logits, side="right") - 1
    outside = (b < 0) | (b >= edges.size - 1)
    if outside.any():
        raise ValueError(
            f"{int(outside.sum())} scores fall outside bin_edges [{edges[0]}, {edges[-1]})"
        )
    rng = np.random.default_rng(seed)
    rows = []
    for lab in (0, 1):
        for i in range(edges.size - 1):
            members = np.nonzero((labels == lab) & (b == i))[0]
            pick = rng.choice(members, size=min(int(n_inspect), members.size), replace=False)
            rows.append(
                dict(
                    label=lab, bin=i, lo=edges[i], hi=edges[i + 1], n=members.size,
                    n_inspected=pick.size, n_found=int(wrong[pick].sum()),
                    n_wrong=int(wrong[members].sum()),
                )
            )  # fmt: skip
    t = pd.DataFrame(rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        t["est"] = t["n_found"] / t["n_inspected"].where(t["n_inspected"] > 0)
        t["true_frac"] = t["n_wrong"] / t["n"].where(t["n"] > 0)
    t["est_lo"], t["est_hi"] = binomial_interval(t["n_found"], t["n_inspected"], level=level)
    return t


def estimated_class_rates(table: pd.DataFrame) -> pd.DataFrame:
    """Per given label: mislabel rate estimated from the inspection sample, and the truth.

    The bin estimates are combined weighted by the bin counts (stratified sampling,
    Cochran 1977, ch. 5): rate = sum_b (N_b / N) p_b with p_b = k_b / n_b, variance =
    sum_b (N_b / N)^2 (1 - n_b / N_b) q_b (1 - q_b) / n_b, where the finite-population
    correction makes a fully inspected bin add no variance and q_b = (k_b + 1/2) / (n_b + 1),
    the Jeffreys posterior mean, keeps a bin where nothing was found from claiming zero
    uncertainty (with p_b itself the error would vanish whenever k_b = 0).

    Returns:
        DataFrame with label, n, n_inspected, est_rate, est_err (1 sigma), true_rate.
    """
    rows = []
    for lab, t in table.groupby("label"):
        t = t[t["n"] > 0]
        if t.empty:  # no sample carries this label
            continue
        w = t["n"] / t["n"].sum()
        p, nb, nn = t["est"].to_numpy(), t["n_inspected"].to_numpy(), t["n"].to_numpy()
        q = (t["n_found"].to_numpy() + 0.5) / (nb + 1.0)
        var = np.sum(w**2 * (1.0 - nb / nn) * q * (1.0 - q) / nb)
        rows.append(
            dict(
                label=int(lab), n=int(nn.sum()), n_inspected=int(nb.sum()),
                est_rate=float(np.sum(w * p)), est_err=float(np.sqrt(var)),
                true_rate=float(t["n_wrong"].sum() / nn.sum()),
            )
        )  # fmt: skip
    return pd.DataFrame(rows)


def snr_groups(snr, edges=(0, 5, 10, 20, 50, np.inf)) -> pd.Categorical:
    """Each sample's S/N bin ("[5, 10)"), or "no source" where S/N is NaN, as ordered categories."""
    snr = np.asarray(snr, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    idx = np.searchsorted(edges, snr, side="right") - 1
    names = [f"[{edges[i]:g}, {edges[i + 1]:g})" for i in range(edges.size - 1)]
    out = np.array(["no source"] * snr.size, dtype=object)
    ok = np.isfinite(snr) & (idx >= 0) & (idx < edges.size - 1)
    out[ok] = np.asarray(names, dtype=object)[idx[ok]]
    return pd.Categorical(out, categories=[*names, "no source"], ordered=True)


def recall_by_group(flags: dict, label_is_wrong, groups, *, level: float = 0.6827) -> pd.DataFrame:
    """Recall of each method among the true mislabels of each group (S/N bin, category).

    Args:
        flags: {method: bool[N]}.
        label_is_wrong: int[N] truth.
        groups: [N] group of each sample (categories keep their order, others are sorted);
            groups without mislabels are left out.
        level: coverage of the Clopper-Pearson interval.

    Returns:
        DataFrame with method, group, n_wrong, n_found, recall, lo, hi.
    """
    wrong = np.asarray(label_is_wrong).astype(bool)
    order = list(groups.categories) if isinstance(groups, pd.Categorical) else None
    groups = np.asarray(groups, dtype=object)
    present = set(groups[wrong])
    order = [g for g in order if g in present] if order is not None else sorted(present, key=str)
    rows = []
    for m, f in flags.items():
        f = np.asarray(f).astype(bool)
        for g in order:
            sel = wrong & (groups == g)
            rows.append(dict(method=m, group=g, n_wrong=int(sel.sum()), n_found=int(f[sel].sum())))
    t = pd.DataFrame(rows, columns=["method", "group", "n_wrong", "n_found"])
    t["recall"] = t["n_found"] / t["n_wrong"]
    t["lo"], t["hi"] = binomial_interval(t["n_found"], t["n_wrong"], level=level)
    return t


def detection_curves(ledger: pd.DataFrame, label_is_wrong, threshold: float = 0.5) -> dict:
    """Precision-recall curves of the margin rankings (in-sample, OOF) against the truth.

    Returns:
        {"insample": (precision, recall), "oof": (precision, recall)}; empty when the truth
        holds no mislabel (a curve is undefined).
    """
    from sklearn.metrics import precision_recall_curve

    wrong = np.asarray(label_is_wrong).astype(int)
    if wrong.sum() == 0 or wrong.sum() == wrong.size:
        return {}
    labels = ledger["label"].to_numpy()
    out = {}
    for m in ("insample", "oof"):
        margin = wrong_side_margin(labels, ledger[f"{m}_logit"].to_numpy(), threshold)
        p, r, _ = precision_recall_curve(wrong, margin)
        out[m] = (p, r)
    return out


def gallery_rows(ledger: pd.DataFrame, label: int, n: int, method: str = "oof") -> pd.DataFrame:
    """The `n` most confident disagreements among samples with the given label.

    Returns:
        Rows of `ledger` flagged by `method` with `label`, sorted worst first (lowest logit
        for label 1, highest for label 0), at most `n`.
    """
    sel = ledger[(ledger["label"] == label) & (ledger[f"{method}_flag"] == 1)]
    return sel.sort_values(f"{method}_logit", ascending=(label == 1), kind="stable").head(n)
