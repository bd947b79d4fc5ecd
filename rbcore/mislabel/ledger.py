"""Mislabel discovery: out-of-fold scores, flagging rules, cleanlab, the label ledger.

The talk (Takahashi 2021, "Cleaning mislabel in training data") classifies the training data
with the CNN trained on it and inspects the disagreements; Takahashi et al. (2022, PASJ 74,
946) and their code do it with 5-fold out-of-fold predictions, folds stratified by detector,
flagging every sample whose out-of-fold prediction disagrees with its label at probability
0.5. The flagged samples become "unlabeled" for VAT (notebook 03). This module computes both
variants (in-sample and out-of-fold), the margin ranking a reviewer reads worst-first,
cleanlab's `find_label_issues` as the established reference, the label ledger
(`run_dir/label_ledger.csv`) and detection metrics against the simulator's truth. The
review of the flags (inspection-sample estimates, recall by group, galleries) is in
`rbcore.mislabel.review`.

The model-training step is injected: a `TrainFn` is `train_fn(train_idx, out_dir) ->
predict_fn`, with `predict_fn(idx) -> float[len(idx)]` logits. `cnn_trainer` builds the one
that trains `rbcore.model.RBCNN` with `rbcore.train.fit`; the tests use a cheap classifier.

Scores: the ledger's `*_score` columns are probabilities (sigmoid of the logit), the
`*_logit` columns the CNN's raw output (the talk's "prediction: -2.19").
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.files import write_json_atomic

__all__ = [
    "TrainFn",
    "assign_folds",
    "out_of_fold_logits",
    "insample_logits",
    "cnn_trainer",
    "PROFILES",
    "profile_settings",
    "sigmoid",
    "flag_disagreements",
    "wrong_side_margin",
    "margin_rank",
    "cleanlab_flags",
    "detection_metrics",
    "build_ledger",
    "write_ledger",
    "read_ledger",
    "mislabel_metrics",
    "write_metrics",
    "LEDGER_COLUMNS",
    "METHODS",
]

TrainFn = Callable[[np.ndarray, Path | None], Callable[[np.ndarray], np.ndarray]]

# The ledger contract read by the VAT notebook (issue 5): these columns, one row per sample.
LEDGER_COLUMNS = (
    "id",
    "detector_id",
    "fold",
    "label",
    "oof_score",
    "insample_score",
    "flagged",
    "rule",
)
METHODS = ("insample", "oof", "cleanlab")


# ----------------------------------------------------------------------------- folds


def assign_folds(
    n_folds: int = 5,
    *,
    groups=None,
    labels=None,
    by: str = "detector",
    seed: int = 0,
) -> np.ndarray:
    """Assign every sample to one of `n_folds` folds.

    Args:
        n_folds: K (the paper's code: 5).
        groups: int[N] detector ids; required for `by="detector"`.
        labels: int[N] 0/1 labels; required for `by="label"`.
        by: "detector" (each detector's samples in one fold, folds balanced in size: the
            paper's choice, so a model never scores a detector it was trained on) or "label"
            (stratified by label, each fold with the same real fraction).
        seed: shuffles the detector order (or the samples) before assignment.

    Returns:
        int[N] fold number 0..n_folds-1 per sample.

    Notes:
        Detector mode is a seeded GroupKFold: detectors are taken in a random order, each
        into the currently smallest fold (ties by fold number), so fold sizes differ by at
        most the largest detector's count (scikit-learn's GroupKFold goes largest-first,
        which is tighter but ignores the seed).
    """
    if int(n_folds) < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    rng = np.random.default_rng(seed)
    if by == "detector":
        if groups is None:
            raise ValueError("assign_folds(by='detector') needs groups (the detector_id column)")
        groups = np.asarray(groups)
        uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
        if uniq.size < n_folds:
            raise ValueError(
                f"detector_id has {uniq.size} distinct detectors, fewer than n_folds={n_folds}; "
                "use fewer folds or by='label'"
            )
        order = rng.permutation(uniq.size)  # seeded order: the folds differ between seeds
        sizes = np.zeros(n_folds, dtype=np.int64)
        group_fold = np.empty(uniq.size, dtype=np.int64)
        for g in order:
            k = int(np.argmin(sizes))
            group_fold[g] = k
            sizes[k] += counts[g]
        return group_fold[inverse]
    if by == "label":
        if labels is None:
            raise ValueError("assign_folds(by='label') needs labels")
        from sklearn.model_selection import StratifiedKFold

        labels = np.asarray(labels)
        folds = np.empty(labels.size, dtype=np.int64)
        skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for k, (_, test) in enumerate(skf.split(np.zeros(labels.size), labels)):
            folds[test] = k
        return folds
    raise ValueError(f"assign_folds: by must be 'detector' or 'label', got {by!r}")


# ----------------------------------------------------------------------------- scoring


def _save_scores(path: Path, idx: np.ndarray, logits: np.ndarray, meta: dict) -> None:
    """Write a fold's scores atomically (temporary file renamed into place)."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, idx=idx, logits=logits, meta=json.dumps(meta, sort_keys=True))
    os.replace(tmp, path)


def _load_scores(path: Path, idx: np.ndarray, meta: dict) -> np.ndarray | None:
    """A finished fold's logits, or None when not done; ValueError if made differently."""
    if not path.exists():
        return None
    with np.load(path) as z:
        stored_idx, logits, stored_meta = z["idx"], z["logits"], json.loads(str(z["meta"]))
    if not np.array_equal(stored_idx, idx) or stored_meta != json.loads(
        json.dumps(meta, sort_keys=True)
    ):
        raise ValueError(
            f"{path}: scores from a different run (other fold assignment or settings: "
            f"stored {stored_meta}, now {meta}); use a fresh run_dir or delete {path.parent}"
        )
    return logits


def _score_split(
    name: str,
    train_idx: np.ndarray,
    score_idx: np.ndarray,
    train_fn: TrainFn,
    run_dir,
    meta: dict,
) -> np.ndarray:
    """Train on `train_idx`, score `score_idx`; reuse finished work under run_dir/mislabel/name."""
    fold_dir = None if run_dir is None else Path(run_dir) / "mislabel" / name
    if fold_dir is not None:
        done = _load_scores(fold_dir / "scores.npz", score_idx, meta)
        if done is not None:
            return done
        fold_dir.mkdir(parents=True, exist_ok=True)
    predict = train_fn(train_idx, None if fold_dir is None else fold_dir / "model")
    logits = np.asarray(predict(score_idx), dtype=np.float32).reshape(-1)
    if logits.shape != score_idx.shape:
        raise ValueError(
            f"{name}: predict_fn returned {logits.shape[0]} scores for {score_idx.size} samples"
        )
    if not np.isfinite(logits).all():
        raise ValueError(
            f"{name}: predict_fn returned {int((~np.isfinite(logits)).sum())} non-finite scores"
        )
    if fold_dir is not None:
        _save_scores(fold_dir / "scores.npz", score_idx, logits, meta)
    return logits


def out_of_fold_logits(
    folds, train_fn: TrainFn, *, run_dir=None, meta: dict | None = None
) -> np.ndarray:
    """Out-of-fold logits: each sample scored by the model trained on the other folds.

    Args:
        folds: int[N] fold per sample (`assign_folds`).
        train_fn: `train_fn(train_idx, out_dir) -> predict_fn`, `predict_fn(idx) -> logits`.
        run_dir: when given, fold k keeps its model in run_dir/mislabel/fold{k}/model and its
            scores in run_dir/mislabel/fold{k}/scores.npz (written atomically); a rerun skips
            the finished folds and resumes at the first one not done.
        meta: JSON-ready settings stored with the scores (training config, seed); a rerun with
            different settings or folds raises instead of mixing old and new scores.

    Returns:
        float32[N] logits.

    Notes:
        Takahashi et al. (2022): 5-fold out-of-fold predictions flag the mislabels.
    """
    folds = np.asarray(folds)
    if folds.ndim != 1 or folds.size == 0:
        raise ValueError(f"folds must be a non-empty 1-D array, got shape {folds.shape}")
    meta = dict(meta or {})
    out = np.full(folds.size, np.nan, dtype=np.float32)
    for k in np.unique(folds):
        held = np.nonzero(folds == k)[0]
        train = np.nonzero(folds != k)[0]
        if train.size == 0:
            raise ValueError(f"fold {k} holds every sample; need at least two folds")
        out[held] = _score_split(
            f"fold{int(k)}", train, held, train_fn, run_dir, {**meta, "fold": int(k)}
        )
    return out


def insample_logits(
    n: int, train_fn: TrainFn, *, run_dir=None, meta: dict | None = None
) -> np.ndarray:
    """In-sample logits: one model trained on all `n` samples scores its own training data.

    Notes:
        The talk's method ("学習データ自体をCNNで分類"); it sees each label while training, so
        it can memorize a mislabel and miss it. Stored under run_dir/mislabel/insample.
    """
    idx = np.arange(int(n))
    return _score_split("insample", idx, idx, train_fn, run_dir, {**(meta or {}), "fold": -1})


class _Subset:
    """Lazy view `images[index]` that the training loop can index by int arrays."""

    def __init__(self, images, index: np.ndarray):
        self.images, self.index = images, np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.index.size)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *tuple(np.shape(self.images[self.index[:1]]))[1:])

    def __getitem__(self, idx):
        sel = self.index[np.asarray(idx)]
        order = np.argsort(sel, kind="stable")  # sorted reads are fast on memory maps
        out = np.asarray(self.images[sel[order]])
        res = np.empty_like(out)
        res[order] = out
        return res


def cnn_trainer(
    images, labels, config, *, val_fraction: float = 0.1, progress: bool = False
) -> TrainFn:
    """A `TrainFn` that trains the baseline CNN with `rbcore.train.fit`.

    Args:
        images: raw cutouts float32[N, 29, 29, 3], anything indexable by int arrays.
        labels: int[N] given labels.
        config: a supervised `rbcore.train.TrainConfig` (alpha = 0).
        val_fraction: share of each training split held out (seeded by `config.seed`) for
            early stopping, so the held-out fold is never used to choose the model.
        progress: show training progress bars.

    Returns:
        The `TrainFn`; its models are checkpointed (and resumed) in `out_dir`.
    """
    from rbcore.train import fit, predict_logits

    labels = np.asarray(labels, dtype=np.int64)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")

    def train_fn(train_idx, out_dir):
        rng = np.random.default_rng(config.seed)
        perm = rng.permutation(np.asarray(train_idx))
        n_val = int(round(val_fraction * perm.size))
        val, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        model, _ = fit(
            _Subset(images, fit_idx),
            labels[fit_idx],
            val_images=_Subset(images, val) if n_val else None,
            val_labels=labels[val] if n_val else None,
            config=config,
            out_dir=out_dir,
            progress=progress,
        )
        return lambda idx: predict_logits(model, _Subset(images, idx))

    return train_fn


# Settings of notebook 02 per profile. It trains n_folds + 1 models (the folds and the
# in-sample one), so each gets fewer epochs than notebook 03's single model (rbcore.train
# PROFILES); n_folds 5 is the paper's code. Smoke: 2 folds because the smoke data has 4
# detectors and CI has ~1 minute. Default: one epoch, so the 6 models on 120k samples fit the
# ~10 minute budget on 2 CPU cores (measured 9.4 min, CPU shared); two epochs took 18 min and
# flagged with the same precision (0.063 vs 0.062 against the truth) at a lower recall (0.59 vs
# 0.66), measured on the default simulated set, seed 0. None = rbcore.train's profile.
PROFILES = {
    "smoke": dict(n_folds=2, epochs=1),
    "default": dict(n_folds=5, epochs=1),
    "paper": dict(n_folds=5, epochs=None),
}


def profile_settings(profile: str, *, n_folds=None, epochs=None, seed: int = 0):
    """(n_folds, supervised TrainConfig) of a notebook profile, with optional overrides.

    Args:
        profile: "smoke", "default" or "paper".
        n_folds: K; None = the profile's (`PROFILES`).
        epochs: epochs per model; None = the profile's.
        seed: training seed.

    Returns:
        (n_folds, config) with config.alpha = 0 (the baseline CNN, no VAT) and early stopping
        on the validation loss.
    """
    from rbcore.train import profile_config

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    p = PROFILES[profile]
    k = int(n_folds if n_folds is not None else p["n_folds"])
    e = epochs if epochs is not None else p["epochs"]
    # Select the epoch by validation loss, not AUC: the disagreement rule thresholds the
    # probability, so calibration matters, and AUC ignores it (an epoch-1 model with AUC 1.0
    # may still call everything bogus at p = 0.5). Our choice.
    overrides = {"seed": int(seed), "alpha": 0.0, "early_stopping_metric": "loss"}
    if e is not None:
        overrides["epochs"] = int(e)
    return k, profile_config(profile, **overrides)


# ----------------------------------------------------------------------------- flagging


def sigmoid(logits) -> np.ndarray:
    """Probability of "real" from a logit (float64, numerically stable)."""
    x = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def _check_pair(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.shape != probs.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {probs.shape} must be equal-length 1-D")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (bogus) or 1 (real)")
    if np.isnan(probs).any():
        raise ValueError(f"scores contain {int(np.isnan(probs).sum())} NaN values")
    return labels.astype(np.int64), probs


def flag_disagreements(labels, probs, threshold: float = 0.5) -> np.ndarray:
    """The paper's rule: flag a sample whose prediction disagrees with its label.

    Args:
        labels: int[N] given labels.
        probs: float[N] probability of real.
        threshold: called real when `prob >= threshold` (the paper: 0.5).

    Returns:
        bool[N]: label 1 with prob < threshold, or label 0 with prob >= threshold.
    """
    labels, probs = _check_pair(labels, probs)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
    pred = probs >= threshold
    return pred != (labels == 1)


def wrong_side_margin(labels, logits, threshold: float = 0.5) -> np.ndarray:
    """How far (in logit units) a score sits on the wrong side of the threshold.

    Returns:
        float[N]: logit(threshold) - logit for label 1, logit - logit(threshold) for label 0;
        positive on the wrong side (the sample disagrees with its label), larger = worse.
    """
    labels, logits = _check_pair(labels, logits)
    t = np.log(threshold / (1.0 - threshold))
    return np.where(labels == 1, t - logits, logits - t)


def margin_rank(margin) -> np.ndarray:
    """Rank 1 = the worst disagreement (largest margin); ties broken by sample order."""
    margin = np.asarray(margin, dtype=np.float64)
    order = np.argsort(-margin, kind="stable")
    rank = np.empty(margin.size, dtype=np.int64)
    rank[order] = np.arange(1, margin.size + 1)
    return rank


def cleanlab_flags(labels, probs, **kwargs) -> np.ndarray:
    """cleanlab's `find_label_issues` on probabilities of real (the reference method).

    Args:
        labels: int[N] given labels.
        probs: float[N] out-of-fold probability of real; cleanlab gets [1 - p, p].
        **kwargs: passed to `cleanlab.filter.find_label_issues` (default
            filter_by="prune_by_noise_rate", single process).

    Returns:
        bool[N] label issues.

    Notes:
        Northcutt, Jiang & Chuang (2021), confident learning.
    """
    from cleanlab.filter import find_label_issues

    labels, probs = _check_pair(labels, probs)
    pred_probs = np.column_stack([1.0 - probs, probs])
    kwargs.setdefault("n_jobs", 1)  # the CPU is shared; cleanlab forks per core otherwise
    return np.asarray(find_label_issues(labels, pred_probs, **kwargs), dtype=bool)


# ----------------------------------------------------------------------------- evaluation


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def detection_metrics(flagged, is_wrong) -> dict:
    """Precision and recall of a flag set against the true mislabels.

    Args:
        flagged: bool[N] flagged samples.
        is_wrong: bool[N] truth (`label_is_wrong`).

    Returns:
        dict n_flagged, n_wrong, tp, fp, fn, precision (tp / n_flagged, None if nothing is
        flagged), recall (tp / n_wrong, None if nothing is wrong), f1.
    """
    flagged = np.asarray(flagged).astype(bool)
    is_wrong = np.asarray(is_wrong)
    if flagged.shape != is_wrong.shape:
        raise ValueError(f"flagged {flagged.shape} and label_is_wrong {is_wrong.shape} differ")
    if not np.isin(is_wrong, (0, 1)).all():
        raise ValueError("label_is_wrong must be 0/1")
    is_wrong = is_wrong.astype(bool)
    tp = int((flagged & is_wrong).sum())
    fp = int((flagged & ~is_wrong).sum())
    fn = int((~flagged & is_wrong).sum())
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * p * r / (p + r) if np.isfinite(p) and np.isfinite(r) and p + r > 0 else float("nan")
    return {
        "n_flagged": tp + fp,
        "n_wrong": tp + fn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": _nan_to_none(p),
        "recall": _nan_to_none(r),
        "f1": _nan_to_none(f1),
    }


# ----------------------------------------------------------------------------- the ledger


def build_ledger(
    params: pd.DataFrame,
    folds,
    oof_logits,
    insample_logits,
    *,
    threshold: float = 0.5,
    flag_method: str = "oof",
    cleanlab_kwargs: dict | None = None,
) -> pd.DataFrame:
    """One row per training sample: scores, flags of every method, and the chosen flag.

    Args:
        params: the training table with `id`, `detector_id`, `label` (TrainingSet.params).
        folds: int[N] out-of-fold fold per sample.
        oof_logits, insample_logits: float[N].
        threshold: probability threshold of the disagreement rule (the paper: 0.5).
        flag_method: which method sets `flagged` ("oof": the paper's; "insample": the
            talk's; "cleanlab").
        cleanlab_kwargs: passed to `cleanlab_flags`.

    Returns:
        DataFrame with LEDGER_COLUMNS (`*_score` are probabilities) plus oof_logit,
        insample_logit, oof_flag, insample_flag, cleanlab_flag, margin (logit units on the
        wrong side of the threshold, OOF) and margin_rank (1 = worst).
    """
    for col in ("id", "detector_id", "label"):
        if col not in params.columns:
            raise ValueError(
                f"training params lack the column {col!r} (have {list(params.columns)[:12]})"
            )
    if flag_method not in METHODS:
        raise ValueError(f"flag_method must be one of {METHODS}, got {flag_method!r}")
    n = len(params)
    arrays = {"folds": folds, "oof_logits": oof_logits, "insample_logits": insample_logits}
    for name, a in arrays.items():
        if np.shape(a) != (n,):
            raise ValueError(f"{name} has shape {np.shape(a)}, expected ({n},) like params")
    labels = params["label"].to_numpy()
    oof_p, ins_p = sigmoid(oof_logits), sigmoid(insample_logits)
    flags = {
        "oof": flag_disagreements(labels, oof_p, threshold),
        "insample": flag_disagreements(labels, ins_p, threshold),
        "cleanlab": cleanlab_flags(labels, oof_p, **(cleanlab_kwargs or {})),
    }
    margin = wrong_side_margin(labels, oof_logits, threshold)
    chosen = flags[flag_method]
    direction = np.where(labels == 1, f"<{threshold:g}", f">={threshold:g}")
    rule = np.where(
        chosen,
        np.char.add(f"{flag_method}: label=", labels.astype(str)),
        "none",
    )
    if flag_method != "cleanlab":
        rule = np.where(
            chosen, np.char.add(np.char.add(rule, f", {flag_method} p"), direction), rule
        )
    return pd.DataFrame(
        {
            "id": params["id"].to_numpy(),
            "detector_id": params["detector_id"].to_numpy(),
            "fold": np.asarray(folds, dtype=np.int64),
            "label": labels.astype(np.int64),
            "oof_score": oof_p,
            "insample_score": ins_p,
            "flagged": chosen.astype(np.int64),
            "rule": rule,
            "oof_logit": np.asarray(oof_logits, dtype=np.float64),
            "insample_logit": np.asarray(insample_logits, dtype=np.float64),
            "oof_flag": flags["oof"].astype(np.int64),
            "insample_flag": flags["insample"].astype(np.int64),
            "cleanlab_flag": flags["cleanlab"].astype(np.int64),
            "margin": margin,
            "margin_rank": margin_rank(margin),
        }
    )


def write_ledger(ledger: pd.DataFrame, run_dir) -> Path:
    """Write run_dir/label_ledger.csv atomically."""
    missing = [c for c in LEDGER_COLUMNS if c not in ledger.columns]
    if missing:
        raise ValueError(f"ledger lacks the columns {missing}")
    path = Path(run_dir) / "label_ledger.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    ledger.to_csv(tmp, index=False, float_format="%.7g")
    os.replace(tmp, path)
    return path


def read_ledger(path) -> pd.DataFrame:
    """Read and check a label ledger (the input of the VAT notebook).

    Raises:
        FileNotFoundError: no ledger at `path`.
        ValueError: a missing column, a duplicate id, or a flag that is not 0/1.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "label_ledger.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no label ledger (run notebook 02_mislabel_discovery)")
    ledger = pd.read_csv(path, keep_default_na=False, na_values=[""])
    missing = [c for c in LEDGER_COLUMNS if c not in ledger.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected {list(LEDGER_COLUMNS)}")
    if ledger["id"].duplicated().any():
        raise ValueError(f"{path}: column 'id' has duplicates; one row per sample expected")
    if not ledger["flagged"].isin([0, 1]).all():
        raise ValueError(f"{path}: column 'flagged' must be 0/1")
    return ledger


def mislabel_metrics(ledger: pd.DataFrame, label_is_wrong=None, *, threshold: float = 0.5) -> dict:
    """Per method (insample, oof, cleanlab): number flagged and, with truth, precision/recall.

    Args:
        ledger: from `build_ledger`.
        label_is_wrong: int[N] truth in ledger order, or None (real data: no truth).
        threshold: the disagreement threshold used (recorded).

    Returns:
        dict {"insample": {...}, "oof": {...}, "cleanlab": {...}, "n_samples", "threshold",
        "has_truth"}; each method has n_flagged, n_flagged_label_real,
        n_flagged_label_bogus and, with truth, the `detection_metrics` fields.
    """
    out = {"n_samples": int(len(ledger)), "threshold": float(threshold)}
    out["has_truth"] = label_is_wrong is not None
    labels = ledger["label"].to_numpy()
    methods = {}
    for m in METHODS:
        f = ledger[f"{m}_flag"].to_numpy().astype(bool)
        d = {
            "n_flagged": int(f.sum()),
            "n_flagged_label_real": int((f & (labels == 1)).sum()),
            "n_flagged_label_bogus": int((f & (labels == 0)).sum()),
        }
        if label_is_wrong is not None:
            d.update(detection_metrics(f, label_is_wrong))
        methods[m] = d
    out.update(methods)
    return out


def write_metrics(metrics: dict, run_dir, name: str = "mislabel_metrics.json") -> Path:
    """Write the metrics JSON atomically to run_dir/name."""
    return write_json_atomic(
        Path(run_dir) / name, metrics, indent=2, sort_keys=True, allow_nan=False
    )
