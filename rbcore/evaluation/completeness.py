"""Completeness and false-positive rates in bins and groups, with binomial intervals.

What the talk (Takahashi 2021) does not show: the completeness (recall) of the reals against
a truth column of the simulator (injected magnitude, S/N) per real category, and the
false-positive rate of each bogus category, each with its 95 % Clopper-Pearson interval
(`rbcore.metrics.binomial_interval`). The truth columns exist for simulated data only
(`has_columns`). Also the reader of notebook 03's validation split, whose injected reals
(rand/galx) join the test set's transients here and fit the temperature in
`rbcore.evaluation.calibration`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.metrics import _check, binomial_interval

__all__ = [
    "rate_frame",
    "binned_rate",
    "has_columns",
    "completeness_vs",
    "completeness_by_model",
    "magnitude_and_snr_bins",
    "rate_by_group",
    "flagged_by_category",
    "fpr_by_category",
    "read_validation_split",
]


def rate_frame(k, n, **columns) -> pd.DataFrame:
    """Table of k hits out of n per row: `columns`, n, k, rate, ci_lo, ci_hi (95 % interval)."""
    k, n = np.asarray(k, dtype=np.int64), np.asarray(n, dtype=np.int64)
    lo, hi = binomial_interval(k, n, level=0.95)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    return pd.DataFrame({**columns, "n": n, "k": k, "rate": rate, "ci_lo": lo, "ci_hi": hi})


def binned_rate(values, hits, bins) -> pd.DataFrame:
    """Fraction of `hits` in bins of `values`, with 95 % Clopper-Pearson intervals.

    Args:
        values: float[N] binned quantity (e.g. magnitude); must be finite.
        hits: bool[N] (e.g. detected at the threshold).
        bins: float[M + 1] increasing bin edges; a value v falls in [e_i, e_{i+1}), the last
            bin is closed. Values outside the edges are in no bin (count them with
            `np.histogram` if it matters).

    Returns:
        DataFrame with one row per bin: bin_lo, bin_hi, center, n, k, rate, ci_lo, ci_hi.
    """
    values, hits = np.asarray(values, dtype=np.float64), np.asarray(hits, dtype=bool)
    bins = np.asarray(bins, dtype=np.float64)
    if values.shape != hits.shape or values.ndim != 1:
        raise ValueError(f"values {values.shape} and hits {hits.shape} must be 1-D, same length")
    if not np.isfinite(values).all():
        raise ValueError(f"values contain {int((~np.isfinite(values)).sum())} non-finite entries")
    if bins.ndim != 1 or bins.size < 2 or np.any(np.diff(bins) <= 0):
        raise ValueError(f"bins must be >= 2 strictly increasing edges, got {bins}")
    n, _ = np.histogram(values, bins)
    k, _ = np.histogram(values[hits], bins)
    return rate_frame(k, n, bin_lo=bins[:-1], bin_hi=bins[1:], center=(bins[:-1] + bins[1:]) / 2)


def has_columns(params: pd.DataFrame | None, columns) -> bool:
    """True when `params` is a DataFrame holding every one of `columns` (simulator truth)."""
    return isinstance(params, pd.DataFrame) and set(columns) <= set(params.columns)


def _check_params(params, labels, scores, columns) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = _check(labels, scores, need_both=False)
    if not has_columns(params, columns):
        have = list(params.columns) if isinstance(params, pd.DataFrame) else None
        raise ValueError(f"params need truth columns {list(columns)}; have {have}")
    if len(params) != labels.size:
        raise ValueError(f"params has {len(params)} rows for {labels.size} labels")
    return labels, scores


def completeness_vs(
    params: pd.DataFrame, labels, scores, column: str, bins, *, threshold: float = 0.0
) -> tuple[pd.DataFrame, pd.Series]:
    """Completeness (recall) of the reals against a truth column, per real category.

    Args:
        params: DataFrame, one row per test sample, with truth columns `category` and `column`.
        labels: int[N] 0/1 (the test set is clean: label = truth).
        scores: float[N] logits; detected when `score >= threshold`.
        column: e.g. "mag" (injected magnitude) or "snr".
        bins: bin edges of `column`.
        threshold: logit threshold (0 = probability 0.5).

    Returns:
        (table, unbinned): table with columns category + `binned_rate`'s; unbinned counts, per
        category, the reals whose `column` is NaN or outside the bins (reported, not dropped
        silently).
    """
    labels, scores = _check_params(params, labels, scores, ("category", column))
    real = labels == 1
    cat = params["category"].to_numpy()[real]
    val = params[column].to_numpy(dtype=np.float64)[real]
    hit = scores[real] >= threshold
    edges = np.asarray(bins, dtype=np.float64)
    inside = np.isfinite(val) & (val >= edges[0]) & (val <= edges[-1])
    tables, unbinned = [], {}
    for c in sorted(set(cat)):
        m = cat == c
        t = binned_rate(val[m & inside], hit[m & inside], edges)
        tables.append(t.assign(category=c))
        unbinned[c] = int((m & ~inside).sum())
    if not tables:  # no reals: an empty table with the same columns
        tables = [binned_rate([], [], edges).iloc[:0].assign(category=pd.Series(dtype=object))]
    table = pd.concat(tables, ignore_index=True)
    return table, pd.Series(unbinned, name=f"reals without {column} in bins", dtype=np.int64)


def completeness_by_model(
    sources: dict, column: str, bins, *, threshold: float = 0.0
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.Series]]:
    """`completeness_vs` of every model over several samples of reals, tables joined per model.

    Args:
        sources: {sample name: (params, labels int[N], {model: logits float[N]})}, e.g. the
            test set (transients) and the validation split (injected rand/galx reals).
        column: truth column to bin ("mag", "snr").
        bins: bin edges.
        threshold: logit threshold.

    Returns:
        ({model: table with a `source` column}, {sample name: reals outside the bins per category}).
    """
    tables: dict[str, list] = {}
    unbinned = {}
    for source, (params, labels, logits) in sources.items():
        for model, z in logits.items():
            t, unbinned[source] = completeness_vs(
                params, labels, z, column, bins, threshold=threshold
            )
            tables.setdefault(model, []).append(t.assign(source=source))
    return {m: pd.concat(v, ignore_index=True) for m, v in tables.items()}, unbinned


def magnitude_and_snr_bins(mag, snr, *, mag_step: float = 0.5, n_snr: int = 8) -> dict:
    """Bin edges covering the finite values: `mag_step` magnitude steps, `n_snr` log S/N bins.

    Returns:
        {"mag": float[M], "snr": float[n_snr + 1]}.
    """
    mag, snr = np.asarray(mag, float), np.asarray(snr, float)
    mag, snr = mag[np.isfinite(mag)], snr[np.isfinite(snr) & (snr > 0)]
    if mag.size == 0 or snr.size == 0:
        raise ValueError(f"need finite magnitudes and positive S/N, got {mag.size} and {snr.size}")
    lo, hi = np.floor(mag.min() / mag_step), np.ceil(mag.max() / mag_step)
    return {
        "mag": np.arange(lo, max(hi, lo + 1) + 0.5) * mag_step,
        "snr": np.geomspace(snr.min(), snr.max() * (1 + 1e-9), n_snr + 1),
    }


def rate_by_group(groups, hits) -> pd.DataFrame:
    """Fraction of `hits` per group value, with 95 % Clopper-Pearson intervals (one row per group)."""
    groups, hits = np.asarray(groups), np.asarray(hits, dtype=bool)
    if groups.shape != hits.shape or groups.ndim != 1:
        raise ValueError(f"groups {groups.shape} and hits {hits.shape} must be 1-D, same length")
    names = sorted(set(groups.tolist()))
    n = [int((groups == g).sum()) for g in names]
    k = [int(hits[groups == g].sum()) for g in names]
    return rate_frame(k, n, group=names)


def fpr_by_category(
    params: pd.DataFrame, labels, scores, *, threshold: float = 0.0
) -> pd.DataFrame:
    """False-positive rate of each bogus `category` (fraction with `score >= threshold`), with CIs."""
    labels, scores = _check_params(params, labels, scores, ("category",))
    bogus = labels == 0
    table = rate_by_group(params["category"].to_numpy()[bogus], scores[bogus] >= threshold)
    return table.rename(columns={"group": "category", "k": "n_fp", "rate": "fpr"})


def flagged_by_category(params: pd.DataFrame, flagged) -> pd.DataFrame:
    """Share of each bogus-labelled training `category` that the mislabel step flagged.

    The two-stage method unlabels the flagged samples, so a category flagged often is one the
    VAT model hardly sees labelled; set beside `fpr_by_category` (test set) it shows whether the
    model's false positives come from the categories the cleaning took away.

    Args:
        params: the training set's table (columns "label" and "category", truth columns of
            the simulator).
        flagged: bool[N] aligned with `params` (notebook 02's `flagged`, i.e. not labeled).

    Returns:
        One row per category of the bogus-labelled samples: category, n, n_flagged, share and
        its Clopper-Pearson 95 % interval (lo, hi).
    """
    flagged = np.asarray(flagged, dtype=bool)
    missing = [c for c in ("label", "category") if c not in params.columns]
    if missing:
        raise ValueError(f"flagged_by_category: params lack columns {missing}")
    if flagged.shape != (len(params),):
        raise ValueError(f"flagged {flagged.shape} must have one entry per row ({len(params)})")
    bogus = params["label"].to_numpy() == 0
    table = rate_by_group(params["category"].to_numpy()[bogus], flagged[bogus])
    return table.rename(columns={"group": "category", "k": "n_flagged", "rate": "share"})


def read_validation_split(path, params: pd.DataFrame) -> np.ndarray:
    """Row positions of the validation split written by notebook 03, checked against the data.

    Args:
        path: `run_dir/models/validation_split.csv` with columns id, detector_id, label
            (`rbcore.train.experiment.write_split`).
        params: the training set's params (`rbcore.datasets.load_training(...).params`).

    Returns:
        int64[M] sorted row positions (= the `id` column) of the validation samples.

    Raises:
        FileNotFoundError: no split file (run notebook 03 first).
        ValueError: missing columns, ids out of range or repeated, or a detector/label that
            differs from the training data (the split belongs to other data).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no validation split (notebook 03 writes it)")
    split = pd.read_csv(path)
    need = {"id", "detector_id", "label"}
    if not need <= set(split.columns):
        raise ValueError(f"{path}: columns {sorted(need - set(split.columns))} missing")
    ids = split["id"].to_numpy(np.int64)
    if (
        ids.size == 0
        or ids.min() < 0
        or ids.max() >= len(params)
        or np.unique(ids).size != ids.size
    ):
        raise ValueError(f"{path}: ids must be distinct row positions in [0, {len(params)})")
    for col in ("detector_id", "label"):
        differ = int((params[col].to_numpy()[ids] != split[col].to_numpy()).sum())
        if differ:
            raise ValueError(f"{path}: {differ} rows whose {col} differs from the training data")
    return np.sort(ids)
