"""The talk's table with bootstrap intervals, metrics.json, and the test logits cached.

The talk's table (Takahashi 2021, "Evaluation with actual test dataset"; Takahashi et al.
2022, PASJ 74, 946) gives accuracy, precision, recall and F1 at probability 0.5 and AUC(ROC)
and FPR at TPR = 0.9 for the "Current model" and the VAT model. This module computes that
table with stratified bootstrap intervals (vectorized, so that 200,000 test samples take
seconds), writes and checks `metrics.json` (notebook 04), and caches the models' logits on
the test set. What the talk does not show is in `rbcore.evaluation.completeness`
(completeness against magnitude and S/N, false-positive rate by bogus category) and
`rbcore.evaluation.calibration` (reliability diagrams, temperature scaling).

Conventions follow `rbcore.metrics`: `labels` are 0 (bogus) / 1 (real); a sample is called
real when `score >= threshold`. Functions here take *logits* where calibration matters and
any monotone score otherwise; a probability threshold p is the logit threshold log(p/(1-p)),
which keeps float32 logits beyond +-17 from collapsing to ties at probability 1 or 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rbcore.evaluation.calibration import logit
from rbcore.files import read_json, write_json_atomic, write_npz_atomic
from rbcore.inference import MODEL_NAMES, sigmoid
from rbcore.metrics import _check, classification_summary

__all__ = [
    "TABLE_METRICS",
    "MODEL_NAMES",
    "TARGET_TPR",
    "bootstrap_samples",
    "metrics_table",
    "validate_metrics",
    "write_metrics",
    "read_metrics",
    "file_fingerprint",
    "cached_logits",
]


#: The talk's table, in its order; also the keys of each model's entry in metrics.json.
TABLE_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "fpr_at_tpr90")
#: The models compared in the talk, as named in metrics.json and in run_dir/models/.
#: Target TPR of the talk's "FPR@TPR=0.9".
TARGET_TPR = 0.9
# Elements of the (resamples x samples) weight arrays built at once by the bootstrap; bounds
# memory at ~8 bytes x this (our choice: ~50 MB).
_BOOT_CHUNK_ELEMENTS = 6_000_000


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


# The clean-label oracle (issue 12): the Current model's data, split and configuration with the
# simulator's true labels. What label cleaning could at best recover; never a method, never used
# to choose anything. Evaluated beside the talk's two models when notebook 03 trained it.
ORACLE = "oracle"
DISPLAY_NAMES = {"current": "Current model", "vat": "VAT", ORACLE: "Oracle (true labels)"}


def evaluated_models(models_dir) -> list[str]:
    """The talk's two models, and the oracle where its checkpoint is in `models_dir`."""
    has_oracle = (Path(models_dir) / ORACLE / "config.json").is_file()
    return [*MODEL_NAMES, *([ORACLE] if has_oracle else [])]


def validate_metrics(metrics: dict, source: str = "metrics") -> None:
    """Raise ValueError naming the first key of the metrics.json schema that is missing or malformed."""
    for model in [*MODEL_NAMES, *([ORACLE] if ORACLE in metrics else [])]:
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


def metrics_results(
    tables: dict,
    *,
    run: dict,
    n_real: int,
    n_bogus: int,
    calibration: dict,
    recall_by_category: dict | None = None,
    fpr_by_category: dict | None = None,
    flagged_by_category=None,
) -> dict:
    """The contents of metrics.json (notebook 04).

    Args:
        tables: {model: `metrics_table(...)`}.
        run: the notebook's own settings (profile, threshold, n_boot, seed).
        n_real, n_bogus: the test set's counts.
        calibration: {model: temperature, priors and the test-set calibration summaries}.
        recall_by_category: {model: DataFrame of `rate_by_group`} (simulated data only).
        fpr_by_category: {key: DataFrame of `fpr_by_category`} (simulated data only).
        flagged_by_category: DataFrame of `flagged_by_category` (simulated data with
            notebook 02's ledger only).
    """
    results = {**tables, "test_counts": {"n_real": int(n_real), "n_bogus": int(n_bogus)},
               **run, "calibration": calibration}  # fmt: skip
    if recall_by_category is not None:
        results["recall_by_category"] = {
            m: t.set_index("group")[["n", "k", "rate"]].to_dict("index")
            for m, t in recall_by_category.items()
        }
    if fpr_by_category is not None:
        results["fpr_by_category"] = {
            key: t.set_index("category")[["n", "n_fp", "fpr"]].to_dict("index")
            for key, t in fpr_by_category.items()
        }
    if flagged_by_category is not None:
        results["flagged_by_category"] = flagged_by_category.set_index("category")[
            ["n", "n_flagged", "share"]
        ].to_dict("index")
    return results


def write_metrics(path, metrics: dict) -> Path:
    """Validate `metrics` against the metrics.json schema and write it atomically (indented JSON)."""
    validate_metrics(metrics, str(path))
    return write_json_atomic(path, metrics, indent=2, trailing_newline=True)


def read_metrics(path) -> dict:
    """Read and validate a metrics.json written by `write_metrics`."""
    metrics = read_json(path, missing="no metrics file (run notebooks/04_evaluation.ipynb)")
    validate_metrics(metrics, str(path))
    return metrics


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
    from rbcore.inference import predict_logits

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
    write_npz_atomic(
        cache_path, key=np.array(key_json), **{f"logits_{k}": v for k, v in out.items()}
    )
    return out
