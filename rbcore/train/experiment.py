"""Notebook 03's experiment: the "Current" baseline and the VAT model with flagged samples unlabeled.

Takahashi et al. (2022) train the same CNN twice: "Current" on all labels, noisy ones included,
and VAT with the samples that the mislabel step flags (notebook 02's ledger) treated as
unlabeled. This module holds the steps of that experiment so that notebook 03 only calls and
shows them: the labeled mask from the ledger, the detector validation split, a small sweep
of eps and alpha scored on the validation split (never the test set), training with resume,
and the files the later notebooks read (`run_dir/models/{current,vat}/`,
`run_dir/models/validation_split.csv`, `run_dir/models/training_summary.json`).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.datasets import Subset, detector_validation_split
from rbcore.files import write_csv_atomic, write_json_atomic
from rbcore.inference import MODEL_NAMES, predict_logits, sigmoid
from rbcore.profiles import settings
from rbcore.train.config import TrainConfig
from rbcore.train.loop import fit


def labeled_mask_from_ledger(ledger_path, params: pd.DataFrame) -> tuple[np.ndarray, dict]:
    """The labeled mask of the VAT model: False for the samples notebook 02 flagged.

    Args:
        ledger_path: `run_dir/label_ledger.csv` (columns id, detector_id, label, flagged, ...).
        params: the training set's table (`TrainingSet.params`, columns id, detector_id, label).

    Returns:
        (bool[N] labeled mask aligned with `params`, info dict with the ledger path, whether it
        exists, and the number flagged). Without a ledger every sample is labeled (and info
        says so).

    Raises:
        ValueError: a ledger whose ids, detectors or labels differ from the training set's.
    """
    path = Path(ledger_path)
    n = len(params)
    if not path.exists():
        return np.ones(n, bool), {"ledger": str(path), "ledger_found": False, "n_flagged": 0}
    ledger = pd.read_csv(path)
    missing = {"id", "detector_id", "label", "flagged"} - set(ledger.columns)
    if missing:
        raise ValueError(f"{path}: ledger lacks columns {sorted(missing)}")
    ledger = ledger.set_index("id").reindex(params["id"].to_numpy())
    if ledger["flagged"].isna().any():
        raise ValueError(
            f"{path}: {int(ledger['flagged'].isna().sum())} training ids have no ledger row"
        )
    for col in ("detector_id", "label"):
        if not np.array_equal(ledger[col].to_numpy(), params[col].to_numpy()):
            raise ValueError(f"{path}: column {col!r} differs from the training data's")
    flagged = ledger["flagged"].to_numpy().astype(bool)
    info = {"ledger": str(path), "ledger_found": True, "n_flagged": int(flagged.sum())}
    if "rule" in ledger.columns:  # the rules that flagged samples (unflagged rows say "none")
        info["rules"] = sorted(str(r) for r in ledger.loc[flagged, "rule"].unique())
    return ~flagged, info


def sweep_grid(profile: str, eps=None, alpha=None) -> list[dict]:
    """The (eps, alpha) pairs of the sweep: the profile's, or the given sequences."""
    grid = settings(profile, "vat_sweep", sweep_eps=eps, sweep_alpha=alpha)
    return [
        {"eps": float(e), "alpha": float(a)}
        for e, a in itertools.product(grid["sweep_eps"], grid["sweep_alpha"])
    ]


def notebook_settings(profile: str) -> dict:
    """Notebook 03's sweep settings of a profile (`rbcore.profiles`, step "vat_sweep")."""
    return settings(profile, "vat_sweep")


def run_sweep(
    images,
    labels,
    *,
    labeled_mask,
    train_idx,
    val_idx,
    config: TrainConfig,
    grid: list[dict],
    n_samples: int | None,
    epochs: int,
    out_dir,
    progress: bool = False,
) -> pd.DataFrame:
    """Train a VAT model for each (eps, alpha) of `grid` and score it on the validation split.

    Args:
        images, labels, labeled_mask: the whole training set (raw images, int[N], bool[N]).
        train_idx, val_idx: the detector split (`rbcore.datasets.detector_validation_split`).
        config: the VAT config; eps, alpha and epochs are replaced per run.
        grid: [{"eps": ..., "alpha": ...}, ...].
        n_samples: train on a seeded random subset of this many training samples (None: all).
        epochs: epochs per sweep run.
        out_dir: one resumable subfolder per run.
        progress: progress bars.

    Returns:
        One row per run: eps, alpha, val_auc, val_loss (of the best epoch), best_epoch,
        samples_per_s; sorted as `grid`.
    """
    train_idx = np.asarray(train_idx)
    if n_samples is not None and n_samples < len(train_idx):
        rng = np.random.default_rng(config.seed)
        train_idx = np.sort(rng.choice(train_idx, n_samples, replace=False))
    rows = []
    for point in grid:
        cfg = dataclasses.replace(config, epochs=epochs, eps=point["eps"], alpha=point["alpha"])
        name = f"eps{point['eps']:g}_alpha{point['alpha']:g}"
        _, history = fit(
            Subset(images, train_idx),
            np.asarray(labels)[train_idx],
            labeled_mask=np.asarray(labeled_mask)[train_idx],
            val_images=Subset(images, val_idx),
            val_labels=np.asarray(labels)[val_idx],
            config=cfg,
            out_dir=os.path.join(out_dir, name),
            progress=progress,
        )
        best = max(history, key=lambda r: r["val_auc"])
        rows.append(
            {
                **point,
                "val_auc": best["val_auc"],
                "val_loss": best["val_loss"],
                "best_epoch": best["epoch"],
                "n_train": len(train_idx),
                "samples_per_s": float(np.mean([r["samples_per_s"] for r in history])),
            }
        )
    return pd.DataFrame(rows)


def choose_from_sweep(table: pd.DataFrame) -> dict:
    """The (eps, alpha) with the highest validation AUC; ties go to the lower validation loss."""
    if table.empty:
        raise ValueError("the sweep table is empty")
    best = table.sort_values(["val_auc", "val_loss"], ascending=[False, True]).iloc[0]
    return {"eps": float(best["eps"]), "alpha": float(best["alpha"])}


def train_model(
    name: str,
    images,
    labels,
    *,
    labeled_mask,
    train_idx,
    val_idx,
    config: TrainConfig,
    run_dir,
    extra: dict | None = None,
    progress: bool = True,
    on_epoch_end=None,
):
    """Train (or resume) one of the notebook's models and save it to run_dir/models/<name>/.

    Training state (epoch checkpoints, history) goes to run_dir/training/<name>/; the best
    model by validation AUC is saved with `rbcore.checkpoint.save_model`, its TrainConfig,
    validation metrics and `extra` (e.g. the sweep's choice) in the checkpoint's extra.

    Returns:
        (model, history list of per-epoch dicts).
    """
    from rbcore.checkpoint import save_model

    run_dir = Path(run_dir)
    labels = np.asarray(labels)
    model, history = fit(
        Subset(images, train_idx),
        labels[train_idx],
        labeled_mask=np.asarray(labeled_mask)[train_idx],
        val_images=Subset(images, val_idx),
        val_labels=labels[val_idx],
        config=config,
        out_dir=run_dir / "training" / name,
        progress=progress,
        on_epoch_end=on_epoch_end,  # `fit`'s per-epoch hook (the study's memorization)
    )
    best = best_epoch_row(history, config)
    save_model(
        run_dir / "models" / name,
        model,
        extra={
            "name": name,
            "train_config": config.to_dict(),
            "best_epoch": best["epoch"],
            "val_auc": best["val_auc"],
            "val_loss": best["val_loss"],
            "n_train": int(len(train_idx)),
            "n_unlabeled": int((~np.asarray(labeled_mask)[train_idx]).sum()),
            **(extra or {}),
        },
    )
    return model, history


def best_epoch_row(history: list[dict], config: TrainConfig) -> dict:
    """The history row of the epoch `fit` returned (best by the early-stopping metric)."""
    if config.early_stopping_metric == "auc":
        return max(history, key=lambda r: r["val_auc"])
    return min(history, key=lambda r: r["val_loss"])


def validation_scores(model, images, val_idx) -> np.ndarray:
    """float32[len(val_idx)] logits of `model` on the validation split."""
    return predict_logits(model, Subset(images, val_idx))


def validation_table(models: dict, images, val_idx, labels, truth_wrong=None) -> pd.DataFrame:
    """`rbcore.metrics.classification_summary` at probability 0.5 on the validation split.

    Args:
        models: {name: model}.
        images: the whole training set's raw images; val_idx: int[M] validation rows.
        labels: int[N] given labels of the whole training set.
        truth_wrong: bool[N] simulator truth (label is wrong), or None for real data; adds
            rows scored against the true labels (information only, nothing is chosen on it).

    Returns:
        DataFrame indexed by (model, "given labels" | "true labels").
    """
    from rbcore.metrics import classification_summary

    val_labels = np.asarray(labels)[val_idx]
    rows = {}
    for name, model in models.items():
        z = validation_scores(model, images, val_idx).astype(np.float64)
        p = sigmoid(z)
        rows[(name, "given labels")] = classification_summary(val_labels, p, 0.5)
        if truth_wrong is not None:
            true_labels = np.where(np.asarray(truth_wrong)[val_idx], 1 - val_labels, val_labels)
            rows[(name, "true labels")] = classification_summary(true_labels, p, 0.5)
    return pd.DataFrame(rows).T


def model_summary(
    name: str, config: TrainConfig, history: list[dict], seconds: float, run_dir, table=None
) -> dict:
    """One model's entry of training_summary.json (config, best epoch, timing, metrics)."""
    best = best_epoch_row(history, config)
    entry = {
        "checkpoint": str(Path(run_dir) / "models" / name),
        "train_config": config.to_dict(),
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "val_auc": best["val_auc"],
        "val_loss": best["val_loss"],
        "train_seconds": seconds,
        "samples_per_s": float(np.mean([r["samples_per_s"] for r in history])),
    }
    if table is not None and name in table.index.get_level_values(0):
        entry["validation_metrics"] = {k: row.to_dict() for k, row in table.loc[name].iterrows()}
    return entry


def training_summary(
    *,
    run: dict,
    train_idx,
    val_idx,
    labeled_mask,
    val_detectors,
    split_path,
    ledger: dict,
    sweep: dict,
    models: dict,
    run_dir,
    val_table,
    total_seconds: float,
) -> dict:
    """The contents of training_summary.json (notebook 03).

    Args:
        run: the notebook's own settings (profile, seed, data_dir).
        train_idx, val_idx: the detector split; labeled_mask: bool[N] (False = unlabeled).
        val_detectors, split_path: the validation detectors and where the split was written.
        ledger: what `labeled_mask_from_ledger` reported.
        sweep: grid, n_samples, epochs, table (DataFrame), chosen, seconds of the eps/alpha sweep.
        models: {name: (TrainConfig, history, train seconds)}.
        run_dir, val_table: where the models are, the validation table (`validation_table`).
        total_seconds: the notebook's run time.
    """
    return {
        **run,
        "n_train": int(len(train_idx)),
        "n_val": int(len(val_idx)),
        "n_unlabeled_in_train": int((~np.asarray(labeled_mask)[train_idx]).sum()),
        "validation_detectors": list(val_detectors),
        "validation_split": str(split_path),
        "ledger": ledger,
        "sweep": {**sweep, "table": sweep["table"].to_dict(orient="records")},
        "models": {
            name: model_summary(name, config, history, seconds, run_dir, val_table)
            for name, (config, history, seconds) in models.items()
        },
        "total_seconds": total_seconds,
    }


def write_split(path, params: pd.DataFrame, val_idx) -> Path:
    """Write the validation split (id, detector_id, label) for the later notebooks."""
    split = params.iloc[np.asarray(val_idx)][["id", "detector_id", "label"]]
    return write_csv_atomic(path, split, index=False)


def write_summary(path, summary: dict) -> Path:
    """Write `summary` as JSON (atomically)."""
    return write_json_atomic(path, summary, indent=2, default=_json_default)


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serializable: {type(x)}")


__all__ = [
    "MODEL_NAMES",
    "Subset",
    "labeled_mask_from_ledger",
    "sweep_grid",
    "notebook_settings",
    "run_sweep",
    "choose_from_sweep",
    "train_model",
    "best_epoch_row",
    "validation_scores",
    "validation_table",
    "model_summary",
    "training_summary",
    "write_split",
    "write_summary",
    "detector_validation_split",
]
