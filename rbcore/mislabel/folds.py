"""Scores of the training data by the CNN trained on it: folds, out-of-fold and in-sample.

The talk (Takahashi 2021, "Cleaning mislabel in training data") classifies the training data
with the CNN trained on it; Takahashi et al. (2022, PASJ 74, 946) and their code do it with
5-fold out-of-fold predictions. The code's folds are `StratifiedKFold(5, shuffle=True,
random_state=0x5eed)` with the detector id as the class (src/real_bogus.py:439-441, 451-452,
749; n_splits 5 at :112, the seed at :119), so every fold holds ~20 % of every detector: this
module's default, `by="detector_stratified"`. Folds that keep each detector whole
(`by="detector_grouped"`, a fold model never sees the detector it scores) are our option, not
the paper's. This module assigns the folds and computes both variants (in-sample and
out-of-fold), each fold's scores kept under `run_dir/mislabel/` so that an interrupted run
resumes; the flags are made from them in `rbcore.mislabel.flags`. It also holds notebook 02's
profile settings.

The model-training step is injected: a `TrainFn` is `train_fn(train_idx, out_dir) ->
predict_fn`, with `predict_fn(idx) -> float[len(idx)]` logits. `cnn_trainer` builds the one
that trains the configured network (`TrainConfig.architecture` where it exists) with
`rbcore.train.fit`; the tests use a cheap classifier.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rbcore.datasets import Subset
from rbcore.files import write_npz_atomic

__all__ = [
    "TrainFn",
    "FOLD_MODES",
    "PAPER_FOLD_SEED",
    "assign_folds",
    "out_of_fold_logits",
    "insample_logits",
    "cnn_trainer",
    "profile_settings",
]


TrainFn = Callable[[np.ndarray, Path | None], Callable[[np.ndarray], np.ndarray]]


# ----------------------------------------------------------------------------- folds


# The paper's code: StratifiedKFold(n_splits, shuffle=True, random_state=base_classifier_seed)
# with base_classifier_seed = 0x5eed (src/real_bogus.py:119, :451, :748-749).
PAPER_FOLD_SEED = 0x5EED
FOLD_MODES = ("detector_stratified", "detector_grouped", "label")


def assign_folds(
    n_folds: int = 5,
    *,
    groups=None,
    labels=None,
    by: str = "detector_stratified",
    seed: int = PAPER_FOLD_SEED,
) -> np.ndarray:
    """Assign every sample to one of `n_folds` folds.

    Args:
        n_folds: K (the paper's code: 5, src/real_bogus.py:112).
        groups: int[N] detector ids; required for the two detector modes.
        labels: int[N] 0/1 labels; required for `by="label"`.
        by: "detector_stratified" (the paper's code, src/real_bogus.py:439-441, 451-452:
            scikit-learn's `StratifiedKFold(n_folds, shuffle=True, random_state=seed)` with
            the detector id as the class, so every fold holds ~1/K of every detector),
            "detector_grouped" (our option: each detector's samples in one fold, folds
            balanced in size, so a model never scores a detector it was trained on) or
            "label" (stratified by label, each fold with the same real fraction).
        seed: the split's random state (the paper's code: 0x5eed); in grouped mode it
            shuffles the detector order.

    Returns:
        int[N] fold number 0..n_folds-1 per sample.

    Notes:
        Grouped mode is a seeded GroupKFold: detectors are taken in a random order, each
        into the currently smallest fold (ties by fold number), so fold sizes differ by at
        most the largest detector's count (scikit-learn's GroupKFold goes largest-first,
        which is tighter but ignores the seed).
    """
    from sklearn.model_selection import StratifiedKFold

    if int(n_folds) < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    if by not in FOLD_MODES:
        raise ValueError(f"assign_folds: by must be one of {FOLD_MODES}, got {by!r}")
    if by == "label":
        if labels is None:
            raise ValueError("assign_folds(by='label') needs labels")
        y = np.asarray(labels)
    else:
        if groups is None:
            raise ValueError(f"assign_folds(by={by!r}) needs groups (the detector_id column)")
        y = np.asarray(groups)
    if by == "detector_grouped":
        return _grouped_folds(int(n_folds), y, seed)
    counts = np.unique(y, return_counts=True)[1]
    if counts.max() < n_folds:
        raise ValueError(
            f"assign_folds(by={by!r}): no class has n_folds={n_folds} samples "
            f"(largest {int(counts.max())}); use fewer folds"
        )
    folds = np.empty(y.size, dtype=np.int64)
    skf = StratifiedKFold(n_splits=int(n_folds), shuffle=True, random_state=int(seed))
    with warnings.catch_warnings():
        # A detector with fewer than K samples is spread over fewer folds; scikit-learn warns.
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, test) in enumerate(skf.split(np.zeros(y.size), y)):
            folds[test] = k
    return folds


def _grouped_folds(n_folds: int, groups: np.ndarray, seed: int) -> np.ndarray:
    """Each group (detector) whole in one fold, groups in a seeded order into the smallest."""
    rng = np.random.default_rng(seed)
    uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if uniq.size < n_folds:
        raise ValueError(
            f"detector_id has {uniq.size} distinct detectors, fewer than n_folds={n_folds}; "
            "use fewer folds or another fold mode"
        )
    order = rng.permutation(uniq.size)  # seeded order: the folds differ between seeds
    sizes = np.zeros(n_folds, dtype=np.int64)
    group_fold = np.empty(uniq.size, dtype=np.int64)
    for g in order:
        k = int(np.argmin(sizes))
        group_fold[g] = k
        sizes[k] += counts[g]
    return group_fold[inverse]


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


STAGE1_VALIDATION = ("split", "all")


def cnn_trainer(
    images,
    labels,
    config,
    *,
    val_fraction: float = 0.1,
    validation: str = "split",
    progress: bool = False,
) -> TrainFn:
    """A `TrainFn` that trains the configured network with `rbcore.train.fit`.

    Args:
        images: raw cutouts float32[N, 29, 29, 3], anything indexable by int arrays.
        labels: int[N] given labels.
        config: a supervised `rbcore.train.TrainConfig` (alpha = 0); its network, optimizer,
            batch, epochs and early stopping are the fold models' (`stage1_settings`).
        val_fraction: with validation "split", the share of each training split held out
            (seeded by `config.seed`) for early stopping.
        validation: what early stopping watches: "split" (our choice: `val_fraction` of the
            training folds, so the held-out fold never chooses the model) or "all" (the
            paper's code as it runs: its validation dataset is meant to be the held-out fold,
            src/real_bogus.py:474-477, but `_make_dataset` replaces the filtered set by the
            whole cached one, :510-511, so Keras' EarlyStopping watches the loss over every
            training sample; the model still trains on the other folds only).
        progress: show training progress bars.

    Returns:
        The `TrainFn`; its models are checkpointed (and resumed) in `out_dir`.
    """
    from rbcore.inference import predict_logits
    from rbcore.train import fit

    labels = np.asarray(labels, dtype=np.int64)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if validation not in STAGE1_VALIDATION:
        raise ValueError(f"validation must be one of {STAGE1_VALIDATION}, got {validation!r}")

    def train_fn(train_idx, out_dir):
        if validation == "all":
            fit_idx, val = np.sort(np.asarray(train_idx)), np.arange(labels.size)
        else:
            rng = np.random.default_rng(config.seed)
            perm = rng.permutation(np.asarray(train_idx))
            n_val = int(round(val_fraction * perm.size))
            val, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        model, _ = fit(
            Subset(images, fit_idx),
            labels[fit_idx],
            val_images=Subset(images, val) if val.size else None,
            val_labels=labels[val] if val.size else None,
            config=config,
            out_dir=out_dir,
            progress=progress,
        )
        return lambda idx: predict_logits(model, Subset(images, idx), config.eval_batch_size)

    return train_fn


def profile_settings(profile: str, *, n_folds=None, epochs=None, seed: int = 0):
    """(n_folds, supervised TrainConfig) of a notebook profile, with optional overrides.

    Args:
        profile: "smoke", "default" or "paper".
        n_folds: K; None = the profile's (`rbcore.profiles`, step "mislabel").
        epochs: epochs per model; None = the profile's (paper: 1000 with patience 10, the
            code's; smoke and default: what their time budgets allow).
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
    # may still call everything bogus at p = 0.5). Our choice; the paper's code watches the
    # validation loss too (Keras EarlyStopping's default, src/real_bogus.py:799-800).
    config = profile_config(
        profile,
        seed=int(seed),
        alpha=0.0,
        early_stopping_metric="loss",
        epochs=p["epochs"],
        patience=p.get("patience"),
    )
    return int(p["n_folds"]), config
