"""The noise-rate sweep of notebook 07: the survey's label noise scaled x0 ... x4.

Takahashi et al. (2022) claim that the two-stage method "works better on training data with
a high fraction of label errors". At each multiplier of the survey's label noise
(`rbcore.simulation.scale_label_noise`) this module simulates a training set (same seed and
size at every rate), runs the mislabel step (out-of-fold scores, the 0.5 rule, as notebook
02), trains `current`, `two_stage` and `oracle` as notebook 03 does (its training config and
its eps/alpha choice), and scores them on the run's test set (notebook 01's, whose labels are
clean). Everything lives under `run_dir/study/sweep/x<multiplier>/` and resumes.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from rbcore.datasets import Subset, TestSet, detector_validation_split, load_training
from rbcore.mislabel.flags import detection_metrics, flag_disagreements, sigmoid
from rbcore.mislabel.folds import assign_folds, cnn_trainer, out_of_fold_logits
from rbcore.simulation.config import SurveyConfig, scale_label_noise
from rbcore.simulation.write import RECORD_NAMES, write_training_set
from rbcore.study.ablation import StudyData, row_config, train_row
from rbcore.study.scores import model_scores, test_logits
from rbcore.train.config import TrainConfig
from rbcore.train.experiment import labeled_mask_from_ledger

__all__ = [
    "SWEEP_MODELS",
    "point_dir",
    "measured_noise_rates",
    "point_data",
    "run_point",
    "with_epochs",
    "test_subset",
]

#: The models of the sweep (issue 13, item 3).
SWEEP_MODELS = ("current", "two_stage", "oracle")


def point_dir(study_dir, multiplier: float) -> Path:
    """Folder of one sweep point: study_dir/sweep/x<multiplier>."""
    return Path(study_dir) / "sweep" / f"x{float(multiplier):g}"


def measured_noise_rates(params) -> tuple[float, float]:
    """(share of real labels that are wrong, share of bogus labels that are wrong), from truth."""
    label = params["label"].to_numpy()
    wrong = params["label_is_wrong"].to_numpy().astype(bool)
    if not (label == 1).any() or not (label == 0).any():
        raise ValueError("measured_noise_rates: the training set needs both labels")
    return float(wrong[label == 1].mean()), float(wrong[label == 0].mean())


def _is_run_set(train_dir, record: dict) -> bool:
    """Whether `train_dir` holds a training set simulated with exactly `record`'s settings."""
    path = Path(train_dir) / RECORD_NAMES["train"]
    if not path.is_file():
        return False
    return json.loads(path.read_text()) == json.loads(json.dumps(record))


def point_data(
    out: Path,
    *,
    multiplier: float,
    survey: SurveyConfig,
    n_train: int,
    n_detectors: int,
    seed: int,
    val_fraction: float,
    n_threads: int = 1,
    run_train_dir=None,
):
    """Simulate (or reuse) the point's training set and split it as notebook 03 does.

    Args:
        run_train_dir: the run's training set (notebook 01's). Where it was simulated with the
            very settings of this point (x1 at the full size: the paper profile), it is read
            as it is instead of simulated again.

    Returns:
        (TrainingSet, train_idx, val_idx, whether the data are the run's own).
    """
    config = scale_label_noise(survey, multiplier)
    record = {"seed": seed, "n": n_train, "n_detectors": n_detectors, "config": config.as_dict()}
    own = run_train_dir is not None and _is_run_set(run_train_dir, record)
    train_dir = Path(run_train_dir) if own else out / "data" / "train"
    if not own:
        write_training_set(train_dir, n_train, seed=seed, config=config,
                           n_detectors=n_detectors, n_threads=n_threads)  # fmt: skip
    ts = load_training(train_dir)
    labels = ts.params["label"].to_numpy()
    train_idx, val_idx = detector_validation_split(
        ts.params["detector_id"].to_numpy(), labels, fraction=val_fraction, seed=seed
    )
    return ts, train_idx, val_idx, own


def _ledger_flags_equal(run_dir, params, flagged) -> bool:
    """Whether `flagged` is the flag column of the run's ledger (notebook 02), sample for sample."""
    path = Path(run_dir) / "label_ledger.csv"
    if not path.exists():
        return False
    labeled, _ = labeled_mask_from_ledger(path, params)
    return bool(np.array_equal(~labeled, flagged))


def _flags(ts, *, n_folds: int, fold_config: TrainConfig, seed: int, out: Path) -> np.ndarray:
    """Notebook 02's flags on the point's data: out-of-fold folds stratified by detector (the
    paper code's, `assign_folds`' default), the 0.5 rule."""
    labels = ts.params["label"].to_numpy()
    folds = assign_folds(n_folds, groups=ts.params["detector_id"], labels=labels)
    trainer = cnn_trainer(ts.images, labels, fold_config, progress=False)
    meta = {"train_config": fold_config.to_dict(), "n_folds": n_folds, "seed": seed}
    oof = out_of_fold_logits(folds, trainer, run_dir=out, meta=meta)
    return flag_disagreements(labels, sigmoid(oof), 0.5)


def run_point(
    multiplier: float,
    *,
    survey: SurveyConfig,
    sizes: dict,
    base: TrainConfig,
    fold_config: TrainConfig,
    eps_alpha: dict,
    test,
    fingerprint: dict,
    study_dir,
    n_boot: int,
    seed: int,
    run_dir=None,
    log=print,
) -> dict:
    """One point of the sweep: data, flags, the three models and their test scores.

    Args:
        multiplier: factor on the survey's label-noise rates.
        survey: the run's SurveyConfig (notebook 01's).
        sizes: n_train, n_detectors, n_folds, val_fraction, n_threads of the sweep.
        base: notebook 03's training config (epochs as the sweep's profile says).
        fold_config: notebook 02's fold-model config.
        eps_alpha: notebook 03's eps/alpha choice (the two_stage model's).
        test: the run's TestSet; fingerprint: its files' fingerprint (score caches).
        study_dir: run_dir/study.
        run_dir: the run folder, whose training set and notebook 03 models are used where the
            point would simulate and train the same ones (None: never).
        n_boot, seed: bootstrap resamples and seed of the intervals.
        log: progress printer.

    Returns:
        The point's entry of noise_study.json (schema in `rbcore.study.report`).
    """
    t0 = time.time()
    out = point_dir(study_dir, multiplier)
    ts, train_idx, val_idx, own = point_data(out, multiplier=multiplier, survey=survey, seed=seed,
        n_train=sizes["n_train"], n_detectors=sizes["n_detectors"],
        val_fraction=sizes["val_fraction"], n_threads=sizes.get("n_threads", 1),
        run_train_dir=None if run_dir is None else Path(run_dir) / "data" / "train")  # fmt: skip
    rate_real, rate_bogus = measured_noise_rates(ts.params)
    log(f"x{multiplier:g}: {len(ts):,} samples, wrong labels {rate_real:.2%} of real, "
        f"{rate_bogus:.2%} of bogus ({time.time() - t0:.0f} s)")  # fmt: skip
    flagged = _flags(ts, n_folds=sizes["n_folds"], fold_config=fold_config, seed=seed, out=out)
    wrong = ts.params["label_is_wrong"].to_numpy().astype(bool)
    detection = detection_metrics(flagged, wrong)
    data = StudyData(
        images=ts.images, params=ts.params, labels=ts.labels,
        true_labels=ts.params["is_real_true"].to_numpy().astype(np.int64),
        label_is_wrong=wrong, flagged=flagged, cleanlab_flagged=np.zeros(len(ts), bool),
        train_idx=train_idx, val_idx=val_idx,
    )  # fmt: skip
    log(f"x{multiplier:g}: flagged {detection['n_flagged']:,} (precision "
        f"{detection['precision']}, recall {detection['recall']}; {time.time() - t0:.0f} s)")  # fmt: skip
    scores, sources = {}, {}
    for row in SWEEP_MODELS:
        if row == "oracle" and np.array_equal(data.labels, data.true_labels):
            # No wrong label: the oracle's training is the current model's, to the bit.
            scores[row], sources[row] = scores["current"], "the current model (labels = truth)"
            continue
        config = row_config(base, row, base.seed, eps_alpha)
        # On the run's own data, notebook 03's models are reused where they are the same
        # (two_stage only where these flags are notebook 02's, sample for sample).
        reuse = own and (row != "two_stage" or _ledger_flags_equal(run_dir, ts.params, flagged))
        ckpt, info = train_row(data, row, config, run_dir=run_dir if reuse else None, study_dir=out)
        z = test_logits(ckpt, test.images, cache_dir=out / "scores", fingerprint=fingerprint)
        scores[row] = model_scores(test.labels, z, n_boot=n_boot, seed=seed)
        sources[row] = info["source"]
        log(f"x{multiplier:g}: {row} FPR at TPR 0.9 {scores[row]['fpr_at_tpr90']['value']:.4g} "
            f"({time.time() - t0:.0f} s)")  # fmt: skip
    return {
        "noise_multiplier": float(multiplier),
        "noise_rate_real": rate_real,
        "noise_rate_bogus": rate_bogus,
        **{row: scores[row]["fpr_at_tpr90"]["value"] for row in SWEEP_MODELS},
        "mislabel_precision": detection["precision"],
        "mislabel_recall": detection["recall"],
        "fpr_at_tpr90_ci95": {row: scores[row]["fpr_at_tpr90"]["ci95"] for row in SWEEP_MODELS},
        "auc": {row: scores[row]["auc"] for row in SWEEP_MODELS},
        "mislabel": detection,
        "n_train": int(len(train_idx)),
        "n_val": int(len(val_idx)),
        "data": "the run's training set (notebook 01)" if own else str(out / "data" / "train"),
        "models": sources,
        "seconds": time.time() - t0,
    }


def with_epochs(base: TrainConfig, epochs: int | None) -> TrainConfig:
    """Notebook 03's config with the study's epochs (None: notebook 03's)."""
    return base if epochs is None else dataclasses.replace(base, epochs=int(epochs))


def test_subset(test: TestSet, n_bogus: int | None, seed: int) -> tuple[TestSet, dict]:
    """Every real of the test set and a seeded random subset of `n_bogus` of its bogus.

    The sweep compares models across noise rates, so fewer bogus (FPRs of 1e-3..1e-2 rest on
    hundreds of them at 50,000) buy time for the training; None keeps the whole test set.

    Returns:
        (the subset as a TestSet, a description of it for the score caches' fingerprints).
    """
    labels = np.asarray(test.labels)
    bogus = np.flatnonzero(labels == 0)
    if n_bogus is None or n_bogus >= bogus.size:
        return test, {"bogus_subset": None}
    keep = np.sort(np.random.default_rng(seed).choice(bogus, int(n_bogus), replace=False))
    idx = np.concatenate([np.flatnonzero(labels == 1), keep])
    sub = TestSet(images=Subset(test.images, idx), labels=labels[idx],
                  params=test.params.iloc[idx].reset_index(drop=True), has_truth=test.has_truth)  # fmt: skip
    return sub, {"bogus_subset": int(n_bogus), "subset_seed": int(seed)}
