"""Evaluation of the real/bogus classifiers on the test set (issue 6, notebook 04).

The talk's table (Takahashi 2021, "Evaluation with actual test dataset"; Takahashi et al.
2022, PASJ 74, 946) gives accuracy, precision, recall and F1 at probability 0.5 and AUC(ROC)
and FPR at TPR = 0.9 for the "Current model" and the VAT model. This module computes that
table with stratified bootstrap intervals (vectorized, so that 200,000 test samples take
seconds), and what the talk does not show: completeness against magnitude and S/N,
false-positive rate by bogus category, reliability diagrams, and temperature scaling.

Conventions follow `rbcore.metrics`: `labels` are 0 (bogus) / 1 (real); a sample is called
real when `score >= threshold`. Functions here take *logits* where calibration matters and
any monotone score otherwise; a probability threshold p is the logit threshold log(p/(1-p)),
which keeps float32 logits beyond +-17 from collapsing to ties at probability 1 or 0.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from rbcore.files import write_json_atomic
from rbcore.metrics import _check, classification_summary

#: The talk's table, in its order; also the keys of each model's entry in metrics.json.
TABLE_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "fpr_at_tpr90")
#: The models compared in the talk, as named in metrics.json and in run_dir/models/.
MODEL_NAMES = ("current", "vat")
#: Target TPR of the talk's "FPR@TPR=0.9".
TARGET_TPR = 0.9
# Elements of the (resamples x samples) weight arrays built at once by the bootstrap; bounds
# memory at ~8 bytes x this (our choice: ~50 MB).
_BOOT_CHUNK_ELEMENTS = 6_000_000


def sigmoid(logits) -> np.ndarray:
    """Probability of real, float64[N], from logits float[N] (overflow-free)."""
    return special.expit(np.asarray(logits, dtype=np.float64))


def logit(p: float) -> float:
    """log(p / (1 - p)) of a probability threshold in (0, 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability threshold must be in (0, 1), got {p}")
    return float(special.logit(p))


# ---------------------------------------------------------------------------------------------
# The talk's table with bootstrap intervals
# ---------------------------------------------------------------------------------------------


def _resampled_metrics(r, b, wr, wb, threshold: float, tpr: float) -> dict[str, np.ndarray]:
    """The table's metrics for resamples given as per-sample counts (weights).

    Args:
        r: float[n_p] real scores sorted ascending; b: float[n_n] bogus scores sorted ascending.
        wr: int[B, n_p] how often each real appears in each resample; wb: int[B, n_n] same for
            bogus. Row sums are the resample's class counts.
        threshold: called real when score >= threshold.
        tpr: target TPR of the FPR@TPR metric.

    Returns:
        dict name -> float[B] (the TABLE_METRICS), plus "n_fp_at_tpr" (bogus counted above
        the TPR threshold) and "threshold_at_tpr".

    Notes:
        AUC is the Mann-Whitney statistic, sum over reals of (bogus below + half the ties),
        read off the cumulative bogus counts; FPR@TPR uses the same threshold rule as
        `rbcore.metrics.fpr_at_tpr` (the highest real score whose TPR reaches `tpr`).
    """
    n_p = wr.sum(axis=1).astype(np.float64)
    n_n = wb.sum(axis=1).astype(np.float64)
    cum_b = np.zeros((wb.shape[0], b.size + 1))
    np.cumsum(wb, axis=1, out=cum_b[:, 1:])
    lo = np.searchsorted(b, r, side="left")  # bogus strictly below each real
    hi = np.searchsorted(b, r, side="right")
    auc = (wr * (cum_b[:, lo] + 0.5 * (cum_b[:, hi] - cum_b[:, lo]))).sum(axis=1) / (n_p * n_n)
    # Threshold metrics.
    tp = wr[:, r >= threshold].sum(axis=1).astype(np.float64)
    fp = n_n - cum_b[:, np.searchsorted(b, threshold, side="left")]
    fn, tn = n_p - tp, n_n - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)  # sklearn zero_division=0
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    # FPR at TPR: TP at threshold r_j counts every real tied with r_j, i.e. the suffix sum
    # from the first index of r_j's tie group.
    suffix = np.cumsum(wr[:, ::-1], axis=1)[:, ::-1]
    group_start = np.searchsorted(r, r, side="left")
    tp_at = suffix[:, group_start]
    ok = tp_at >= (tpr - 1e-12) * n_p[:, None]  # same tolerance as metrics.fpr_at_tpr
    j = ok.sum(axis=1) - 1  # tp_at is non-increasing in j: the last j that reaches tpr
    fp_at = n_n - cum_b[np.arange(wb.shape[0]), lo[j]]
    return {
        "accuracy": (tp + tn) / (n_p + n_n),
        "precision": precision,
        "recall": tp / n_p,
        "f1": f1,
        "auc": auc,
        "fpr_at_tpr90": fp_at / n_n,
        "n_fp_at_tpr": fp_at,
        "threshold_at_tpr": r[j],
    }


def _counts(rng: np.random.Generator, n: int, rows: int) -> np.ndarray:
    """int[rows, n]: how often each of n items is drawn in each of `rows` resamples of size n."""
    idx = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
    return np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n)


def bootstrap_samples(
    labels, scores, *, threshold: float = 0.0, n_boot: int = 1000, seed: int = 0
) -> dict[str, np.ndarray]:
    """Stratified bootstrap distribution of the table's metrics, vectorized.

    Args:
        labels: int[N] 0/1.
        scores: float[N] logits (or any monotone score with a matching `threshold`).
        threshold: real when `score >= threshold` (logit 0 = the talk's probability 0.5).
        n_boot: number of resamples.
        seed: random seed; the result does not depend on the chunking.

    Returns:
        dict name -> float[n_boot] for each of TABLE_METRICS, plus "n_fp_at_tpr".

    Notes:
        Reals and bogus are resampled separately (class counts fixed: the test set's
        prevalence is a design choice), as `rbcore.metrics.bootstrap_interval` with
        `stratified=True` does sample by sample; here a resample is a vector of counts, and
        every metric is read off sorted scores, so 1000 resamples of 200,000 samples take
        seconds, not hours.
    """
    labels, scores = _check(labels, scores)
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2, got {n_boot}")
    r = np.sort(scores[labels == 1])
    b = np.sort(scores[labels == 0])
    rng_r, rng_b = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    chunk = max(1, _BOOT_CHUNK_ELEMENTS // labels.size)
    parts = []
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        wr, wb = _counts(rng_r, r.size, rows), _counts(rng_b, b.size, rows)
        parts.append(_resampled_metrics(r, b, wr, wb, threshold, TARGET_TPR))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def metrics_table(
    labels, logits, *, threshold: float = 0.5, n_boot: int = 1000, seed: int = 0
) -> dict:
    """One model's row of the talk's table, each value with its bootstrap 95 % interval.

    Args:
        labels: int[N] 0/1.
        logits: float[N] model logits.
        threshold: probability threshold (talk: 0.5).
        n_boot: bootstrap resamples; seed: their seed.

    Returns:
        {"accuracy": {"value": v, "ci95": [lo, hi]}, ... for TABLE_METRICS, and
        "counts": {tp, fp, tn, fn, n_real, n_bogus}, "threshold": the probability threshold,
        "tpr90": {"threshold_logit", "threshold_probability", "n_bogus_above",
        "n_bogus_above_ci95"}: how many bogus pass the TPR = 0.9 threshold, the number the
        FPR rests on}.

    Notes:
        Percentile intervals (2.5 and 97.5 %) of a stratified bootstrap.
    """
    t = logit(threshold)
    summary = classification_summary(labels, logits, threshold=t)
    boot = bootstrap_samples(labels, logits, threshold=t, n_boot=n_boot, seed=seed)
    out = {}
    for name in TABLE_METRICS:
        lo, hi = np.quantile(boot[name], [0.025, 0.975])
        out[name] = {"value": summary[name], "ci95": [float(lo), float(hi)]}
    thr90 = summary["threshold_at_tpr90"]
    n_above = int(round(summary["fpr_at_tpr90"] * summary["n_bogus"]))
    out["counts"] = {k: summary[k] for k in ("tp", "fp", "tn", "fn", "n_real", "n_bogus")}
    out["threshold"] = threshold
    out["tpr90"] = {
        "threshold_logit": thr90,
        "threshold_probability": float(sigmoid(thr90)),
        "n_bogus_above": n_above,
        "n_bogus_above_ci95": [float(v) for v in np.quantile(boot["n_fp_at_tpr"], [0.025, 0.975])],
    }
    return out


def validate_metrics(metrics: dict, source: str = "metrics") -> None:
    """Raise ValueError naming the first key of the metrics.json schema that is missing or malformed."""
    for model in MODEL_NAMES:
        if not isinstance(metrics.get(model), dict):
            raise ValueError(f"{source}: no '{model}' entry (expected keys {MODEL_NAMES})")
        for name in TABLE_METRICS:
            entry = metrics[model].get(name)
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("value"), int | float)
                or len(entry.get("ci95", ())) != 2
            ):
                raise ValueError(
                    f"{source}: '{model}.{name}' must be {{'value': number, 'ci95': [lo, hi]}}, "
                    f"got {entry!r}"
                )
    counts = metrics.get("test_counts")
    if not isinstance(counts, dict) or not {"n_real", "n_bogus"} <= counts.keys():
        raise ValueError(f"{source}: 'test_counts' must hold n_real and n_bogus, got {counts!r}")


def write_metrics(path, metrics: dict) -> Path:
    """Validate `metrics` against the metrics.json schema and write it atomically (indented JSON)."""
    validate_metrics(metrics, str(path))
    return write_json_atomic(path, metrics, indent=2, trailing_newline=True)


def read_metrics(path) -> dict:
    """Read and validate a metrics.json written by `write_metrics`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no metrics file (run notebooks/04_evaluation.ipynb)")
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    validate_metrics(metrics, str(path))
    return metrics


# ---------------------------------------------------------------------------------------------
# Rates in bins and groups, with binomial intervals
# ---------------------------------------------------------------------------------------------


def binomial_interval(k, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson (exact) interval of a binomial proportion k/n; NaN where n == 0."""
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("binomial_interval needs 0 <= k <= n")
    a = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        lo = np.where(k > 0, stats.beta.ppf(a, k, n - k + 1), 0.0)
        hi = np.where(k < n, stats.beta.ppf(1 - a, k + 1, n - k), 1.0)
    empty = n == 0
    return np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)


def _rate_frame(k, n, **columns) -> pd.DataFrame:
    k, n = np.asarray(k, dtype=np.int64), np.asarray(n, dtype=np.int64)
    lo, hi = binomial_interval(k, n)
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
    return _rate_frame(k, n, bin_lo=bins[:-1], bin_hi=bins[1:], center=(bins[:-1] + bins[1:]) / 2)


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
    return _rate_frame(k, n, group=names)


def fpr_by_category(
    params: pd.DataFrame, labels, scores, *, threshold: float = 0.0
) -> pd.DataFrame:
    """False-positive rate of each bogus `category` (fraction with `score >= threshold`), with CIs."""
    labels, scores = _check_params(params, labels, scores, ("category",))
    bogus = labels == 0
    table = rate_by_group(params["category"].to_numpy()[bogus], scores[bogus] >= threshold)
    return table.rename(columns={"group": "category", "k": "n_fp", "rate": "fpr"})


# ---------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------


def reliability_table(labels, probs, *, n_bins: int = 10) -> pd.DataFrame:
    """Reliability-diagram data: observed fraction of reals against mean predicted probability.

    Args:
        labels: int[N] 0/1.
        probs: float[N] predicted probability of real.
        n_bins: equal-width probability bins on [0, 1].

    Returns:
        DataFrame, one row per bin: bin_lo, bin_hi, n, k (reals), rate (observed fraction),
        ci_lo, ci_hi (Clopper-Pearson), mean_prob (NaN in empty bins).
    """
    labels, probs = _check(labels, probs, need_both=False)
    if probs.min() < 0 or probs.max() > 1:
        raise ValueError(f"probs must lie in [0, 1], got [{probs.min()}, {probs.max()}]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, probs, side="right") - 1, 0, n_bins - 1)
    n = np.bincount(which, minlength=n_bins)
    k = np.bincount(which, weights=labels, minlength=n_bins).astype(np.int64)
    s = np.bincount(which, weights=probs, minlength=n_bins)
    table = _rate_frame(k, n, bin_lo=edges[:-1], bin_hi=edges[1:])
    table["mean_prob"] = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return table


def expected_calibration_error(table: pd.DataFrame) -> float:
    """Sum over bins of (n_bin / N) |observed - predicted| of a `reliability_table`."""
    m = table["n"] > 0
    w = table.loc[m, "n"] / table.loc[m, "n"].sum()
    return float((w * (table.loc[m, "rate"] - table.loc[m, "mean_prob"]).abs()).sum())


def nll(labels, logits) -> float:
    """Mean binary cross-entropy (negative log-likelihood, nats) of logits, overflow-free."""
    labels, logits = _check(labels, logits, need_both=False)
    return float(np.mean(np.logaddexp(0.0, np.where(labels == 1, -logits, logits))))


def brier(labels, probs) -> float:
    """Mean squared error of the predicted probability of real."""
    labels, probs = _check(labels, probs, need_both=False)
    return float(np.mean((probs - labels) ** 2))


def fit_temperature(labels, logits, *, bounds: tuple[float, float] = (1e-2, 1e2)) -> float:
    """Temperature T minimizing the NLL of sigmoid(logits / T) (temperature scaling).

    Args:
        labels: int[N] 0/1 of a validation split (training data, never the test set).
        logits: float[N] the model's logits on it.
        bounds: search range of T.

    Returns:
        T > 0; calibrated probability = sigmoid(logits / T). T > 1 softens overconfident
        outputs. A warning is raised if the optimum sits on a bound.

    Notes:
        Guo et al. (2017), "On Calibration of Modern Neural Networks", Sec. 4.2: one scalar
        fitted on held-out data; it leaves the ranking (AUC, FPR@TPR) and the decision at
        probability 0.5 (logit 0) unchanged, only the probabilities move.
    """
    labels, logits = _check(labels, logits)
    lo, hi = bounds
    if not 0 < lo < hi:
        raise ValueError(f"bounds must satisfy 0 < lo < hi, got {bounds}")
    res = optimize.minimize_scalar(
        lambda log_t: nll(labels, logits / np.exp(log_t)),
        bounds=(np.log(lo), np.log(hi)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    t = float(np.exp(res.x))
    if min(abs(res.x - np.log(lo)), abs(res.x - np.log(hi))) < 1e-3:
        warnings.warn(f"fitted temperature {t:.4g} sits on the bound {bounds}", stacklevel=2)
    return t


def prior_shift(logits, *, train_prior: float, target_prior: float) -> np.ndarray:
    """Logits re-weighted from the training prevalence of reals to a target prevalence.

    Args:
        logits: float[N] logits of a model trained with a fraction `train_prior` of reals.
        train_prior: fraction of reals in the training labels.
        target_prior: fraction of reals where the model is used (e.g. the survey's stream).

    Returns:
        float64[N] logits + log-odds(target_prior) - log-odds(train_prior).

    Notes:
        Bayes' rule with class-conditional likelihoods unchanged (Saerens, Latinne & Decaestecker
        2002, Neural Computation 14, 21, Eq. 2.4): a calibrated classifier trained at one
        prevalence is calibrated at another after this shift. Unlike temperature scaling it
        moves the decision at probability 0.5.
    """
    for name, p in (("train_prior", train_prior), ("target_prior", target_prior)):
        if not 0.0 < p < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {p}")
    return np.asarray(logits, dtype=np.float64) + logit(target_prior) - logit(train_prior)


def calibration_variants(
    logits, *, temperature: float, train_prior: float, target_prior: float
) -> dict[str, np.ndarray]:
    """The logits as scored, temperature-scaled, and temperature-scaled plus prior-shifted.

    Args:
        logits: float[N] test logits.
        temperature: from `fit_temperature` on the validation split.
        train_prior, target_prior: see `prior_shift`.

    Returns:
        {"as scored", "temperature scaled", "temperature + prior shift"} -> float[N] logits.
    """
    z_t = np.asarray(logits, dtype=np.float64) / temperature
    return {
        "as scored": np.asarray(logits),
        "temperature scaled": z_t,
        "temperature + prior shift": prior_shift(
            z_t, train_prior=train_prior, target_prior=target_prior
        ),
    }


def calibration_summary(labels, logits, *, temperature: float = 1.0, n_bins: int = 10) -> dict:
    """NLL, Brier score and ECE of sigmoid(logits / temperature) on (labels, logits)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = sigmoid(z)
    return {
        "temperature": float(temperature),
        "nll": nll(labels, z),
        "brier": brier(labels, p),
        "ece": expected_calibration_error(reliability_table(labels, p, n_bins=n_bins)),
    }


# ---------------------------------------------------------------------------------------------
# Scoring, cached
# ---------------------------------------------------------------------------------------------


def file_fingerprint(paths) -> dict:
    """{path: [size, mtime_ns]} of existing files: identifies the data a score cache was made from."""
    out = {}
    for p in map(Path, paths):
        if p.exists():
            st = p.stat()
            out[str(p)] = [st.st_size, st.st_mtime_ns]
    return out


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


def cached_logits(
    cache_path, model_dirs: dict, images, *, fingerprint: dict | None = None, batch_size=1024
) -> dict[str, np.ndarray]:
    """Logits of each checkpoint on `images`, computed once and cached in an .npz file.

    Args:
        cache_path: the .npz cache (e.g. run_dir/test_scores.npz).
        model_dirs: {name: checkpoint directory (rbcore.checkpoint)}.
        images: raw float32[N, 29, 29, 3] or a lazy indexable (TestSet.images).
        fingerprint: JSON-serializable description of the input data (e.g. `file_fingerprint`);
            a cache made from other data or other weights is recomputed, never reused.
        batch_size: inference batch.

    Returns:
        {name: float32[N] logits}.
    """
    from rbcore.checkpoint import load_model, read_config
    from rbcore.train import predict_logits

    key = {
        "n": len(images),
        "weights": {k: read_config(d).get("weights_sha256") for k, d in model_dirs.items()},
        "data": fingerprint or {},
    }
    key_json = json.dumps(key, sort_keys=True)
    cache_path = Path(cache_path)
    if cache_path.exists():
        with np.load(cache_path) as z:
            if "key" in z.files and str(z["key"]) == key_json:
                return {k: z[f"logits_{k}"] for k in model_dirs}
    out = {}
    for name, d in model_dirs.items():
        model, _ = load_model(d)
        out[name] = np.asarray(predict_logits(model, images, batch_size=batch_size), np.float32)
        bad = int((~np.isfinite(out[name])).sum())
        if out[name].shape != (len(images),) or bad:
            raise ValueError(
                f"{d}: expected {len(images)} finite logits, got shape {out[name].shape} "
                f"with {bad} non-finite"
            )
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_name(cache_path.name + ".tmp.npz")
    np.savez(tmp, key=np.array(key_json), **{f"logits_{k}": v for k, v in out.items()})
    os.replace(tmp, cache_path)
    return out
