"""Scores of the training data by the CNN trained on it: folds, out-of-fold and in-sample.

The talk (Takahashi 2021, "Cleaning mislabel in training data") classifies the training data
with the CNN trained on it; Takahashi et al. (2022, PASJ 74, 946) and their code do it with
5-fold out-of-fold predictions, folds stratified by detector. This module assigns the folds
and computes both variants (in-sample and out-of-fold), each fold's scores kept under
`run_dir/mislabel/` so that an interrupted run resumes; the flags are made from them in
`rbcore.mislabel.flags`. It also holds notebook 02's profile settings.

The model-training step is injected: a `TrainFn` is `train_fn(train_idx, out_dir) ->
predict_fn`, with `predict_fn(idx) -> float[len(idx)]` logits. `cnn_trainer` builds the one
that trains `rbcore.model.RBCNN` with `rbcore.train.fit`; the tests use a cheap classifier.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rbcore.datasets import Subset
from rbcore.files import write_npz_atomic

__all__ = [
    "TrainFn",
    "assign_folds",
    "out_of_fold_logits",
    "insample_logits",
    "cnn_trainer",
    "profile_settings",
]


TrainFn = Callable[[np.ndarray, Path | None], Callable[[np.ndarray], np.ndarray]]


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
    write_npz_atomic(path, idx=idx, logits=logits, meta=json.dumps(meta, sort_keys=True))


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
    from rbcore.inference import predict_logits
    from rbcore.train import fit

    labels = np.asarray(labels, dtype=np.int64)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")

    def train_fn(train_idx, out_dir):
        rng = np.random.default_rng(config.seed)
        perm = rng.permutation(np.asarray(train_idx))
        n_val = int(round(val_fraction * perm.size))
        val, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        model, _ = fit(
            Subset(images, fit_idx),
            labels[fit_idx],
            val_images=Subset(images, val) if n_val else None,
            val_labels=labels[val] if n_val else None,
            config=config,
            out_dir=out_dir,
            progress=progress,
        )
        return lambda idx: predict_logits(model, Subset(images, idx))

    return train_fn


def profile_settings(profile: str, *, n_folds=None, epochs=None, seed: int = 0):
    """(n_folds, supervised TrainConfig) of a notebook profile, with optional overrides.

    Args:
        profile: "smoke", "default" or "paper".
        n_folds: K; None = the profile's (`rbcore.profiles`, step "mislabel").
        epochs: epochs per model; None = the profile's.
        seed: training seed.

    Returns:
        (n_folds, config) with config.alpha = 0 (the baseline CNN, no VAT) and early stopping
        on the validation loss.
    """
    from rbcore.profiles import settings
    from rbcore.train import profile_config

    p = settings(profile, "mislabel", n_folds=n_folds, epochs=epochs)
    # Select the epoch by validation loss, not AUC: the disagreement rule thresholds the
    # probability, so calibration matters, and AUC ignores it (an epoch-1 model with AUC 1.0
    # may still call everything bogus at p = 0.5). Our choice. epochs None: notebook 03's.
    config = profile_config(
        profile, seed=int(seed), alpha=0.0, early_stopping_metric="loss", epochs=p["epochs"]
    )
    return int(p["n_folds"]), config
