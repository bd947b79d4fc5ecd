"""The ablation of notebook 07: every row trained on notebook 03's data, split and seed.

The rows (`rbcore.study.rows`) share notebook 03's training set, its validation split
(`run_dir/models/validation_split.csv`), its training configuration and its seed; only the
labels each row sees differ. The models notebook 03 already trained (current, vat = two_stage,
oracle at its seed) are used as they are when their stored configuration and sample counts
are the ones the study would train; every other model is trained (and resumed) under
`run_dir/study/ablation/`. VAT rows take eps and alpha from a sweep on the validation split:
notebook 03's choice, or (profile setting `sweep_per_row`) the same sweep run for each row.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.checkpoint import read_config
from rbcore.datasets import load_training
from rbcore.evaluation.completeness import read_validation_split
from rbcore.study.rows import NOTEBOOK03_NAMES, SEED_ROWS, SPECS, VAT_ROWS, row_inputs
from rbcore.train.config import TrainConfig
from rbcore.train.experiment import (
    choose_from_sweep,
    labeled_mask_from_ledger,
    run_sweep,
    train_model,
)

__all__ = [
    "StudyData",
    "load_study_data",
    "subsample_train",
    "row_arrays",
    "row_config",
    "model_name",
    "reusable_checkpoint",
    "train_row",
    "choose_eps_alpha",
    "ablation_plan",
]


@dataclasses.dataclass
class StudyData:
    """Notebook 03's training data as every ablation row sees it (whole training set, N rows)."""

    images: object  # raw cutouts float32[N, 29, 29, 3], memory-mapped
    params: pd.DataFrame  # the training table (id, detector_id, label, truth columns)
    labels: np.ndarray  # int[N] given labels
    true_labels: np.ndarray  # int[N] is_real_true
    label_is_wrong: np.ndarray  # bool[N]
    flagged: np.ndarray  # bool[N] notebook 02's flags (the ledger's `flagged`)
    cleanlab_flagged: np.ndarray  # bool[N] the ledger's `cleanlab_flag`
    train_idx: np.ndarray  # int[M] notebook 03's training rows
    val_idx: np.ndarray  # int[V] notebook 03's validation rows


def load_study_data(run_dir, data_dir=None) -> StudyData:
    """Read the training set, notebook 02's ledger and notebook 03's validation split.

    Raises:
        FileNotFoundError: no ledger or split (run notebooks 02 and 03 first).
        ValueError: data without truth columns (the study needs the simulator's truth), or a
            ledger or split that belongs to other data.
    """
    run_dir = Path(run_dir)
    data_dir = Path(data_dir) if data_dir else run_dir / "data"
    ts = load_training(data_dir / "train")
    if not ts.has_truth:
        raise ValueError(
            f"{data_dir / 'train'}: no truth columns (is_real_true, label_is_wrong); the "
            "label-noise study needs simulated data"
        )
    params = ts.params
    ledger_path = run_dir / "label_ledger.csv"
    if not ledger_path.exists():
        raise FileNotFoundError(f"{ledger_path}: no label ledger (run notebook 02 first)")
    labeled, _ = labeled_mask_from_ledger(ledger_path, params)  # checks ids, detectors, labels
    ledger = pd.read_csv(ledger_path).set_index("id").reindex(params["id"].to_numpy())
    if "cleanlab_flag" not in ledger.columns or ledger["cleanlab_flag"].isna().any():
        raise ValueError(f"{ledger_path}: column 'cleanlab_flag' missing or incomplete")
    val_idx = read_validation_split(run_dir / "models" / "validation_split.csv", params)
    train_idx = np.setdiff1d(np.arange(len(params)), val_idx)
    return StudyData(
        images=ts.images,
        params=params,
        labels=params["label"].to_numpy().astype(np.int64),
        true_labels=params["is_real_true"].to_numpy().astype(np.int64),
        label_is_wrong=params["label_is_wrong"].to_numpy().astype(bool),
        flagged=~labeled,
        cleanlab_flagged=ledger["cleanlab_flag"].to_numpy().astype(bool),
        train_idx=train_idx,
        val_idx=val_idx,
    )


def subsample_train(data: StudyData, n_samples: int | None, seed: int) -> StudyData:
    """`data` with a seeded random subset of `n_samples` training rows (None: unchanged)."""
    if n_samples is None or n_samples >= len(data.train_idx):
        return data
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(data.train_idx, int(n_samples), replace=False))
    return dataclasses.replace(data, train_idx=idx)


def row_arrays(data: StudyData, row: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels int[N], training rows int[m], labeled bool[N]) of one row."""
    labels, keep, labeled = row_inputs(
        row,
        labels=data.labels,
        true_labels=data.true_labels,
        flagged=data.flagged,
        cleanlab_flagged=data.cleanlab_flagged,
        label_is_wrong=data.label_is_wrong,
    )
    return labels, data.train_idx[keep[data.train_idx]], labeled


def row_config(base: TrainConfig, row: str, seed: int, eps_alpha: dict | None) -> TrainConfig:
    """The row's TrainConfig: the base (notebook 03's) with the seed, and eps/alpha for VAT rows."""
    if SPECS[row].vat:
        if eps_alpha is None:
            raise ValueError(f"row {row!r} trains with VAT and needs an eps/alpha choice")
        return dataclasses.replace(
            base, seed=int(seed), eps=float(eps_alpha["eps"]), alpha=float(eps_alpha["alpha"])
        )
    return dataclasses.replace(base, seed=int(seed), alpha=0.0)


def model_name(row: str, seed: int) -> str:
    """Folder name of a study model: `<row>_seed<seed>`."""
    return f"{row}_seed{int(seed)}"


def _matches(ckpt: Path, config: TrainConfig, n_train: int, n_unlabeled: int) -> bool:
    """Whether the checkpoint in `ckpt` was trained with `config` on these sample counts."""
    if not (ckpt / "config.json").is_file():
        return False
    extra = read_config(ckpt).get("extra", {})
    return (
        extra.get("train_config") == config.to_dict()
        and extra.get("n_train") == n_train
        and extra.get("n_unlabeled") == n_unlabeled
    )


def reusable_checkpoint(run_dir, row: str, config: TrainConfig, n_train: int, n_unlabeled: int):
    """Notebook 03's checkpoint of `row` if it is the model the study would train, else None."""
    name = NOTEBOOK03_NAMES.get(row)
    if name is None:
        return None
    ckpt = Path(run_dir) / "models" / name
    return ckpt if _matches(ckpt, config, n_train, n_unlabeled) else None


def train_row(
    data: StudyData,
    row: str,
    config: TrainConfig,
    *,
    run_dir,
    study_dir,
    progress: bool = False,
) -> tuple[Path, dict]:
    """Train one row at `config.seed` (or reuse notebook 03's model or a finished study model).

    Args:
        data, row, config: the study data, the row, its TrainConfig (`row_config`).
        run_dir: notebook 03's run folder, whose models are reused where they are the same
            (None: reuse nothing); study_dir: where new models and their training state go
            (study_dir/models/<row>_seed<seed>/, study_dir/training/...).
        progress: progress bars.

    Returns:
        (checkpoint directory, info: row, seed, n_train, n_labeled, source, seconds).
    """
    labels, idx, labeled = row_arrays(data, row)
    n_unlabeled = int((~labeled[idx]).sum())
    info = {"row": row, "seed": int(config.seed), "n_train": int(len(idx)),
            "n_labeled": int(len(idx) - n_unlabeled)}  # fmt: skip
    t0 = time.time()
    reused = None
    if run_dir is not None:
        reused = reusable_checkpoint(run_dir, row, config, len(idx), n_unlabeled)
    if reused is not None:
        return reused, {**info, "source": f"notebook 03 ({reused.name})", "seconds": 0.0}
    name = model_name(row, config.seed)
    ckpt = Path(study_dir) / "models" / name
    if _matches(ckpt, config, len(idx), n_unlabeled):
        return ckpt, {**info, "source": "study (finished earlier)", "seconds": 0.0}
    train_model(
        name,
        data.images,
        labels,
        labeled_mask=labeled,
        train_idx=idx,
        val_idx=data.val_idx,
        config=config,
        run_dir=study_dir,
        extra={"row": row, "n_labeled": info["n_labeled"]},
        progress=progress,
    )
    return ckpt, {**info, "source": "study", "seconds": time.time() - t0}


def choose_eps_alpha(
    data: StudyData,
    row: str,
    *,
    base: TrainConfig,
    notebook03: dict,
    per_row: bool,
    grid: list[dict],
    n_samples: int | None,
    epochs: int,
    out_dir,
) -> dict:
    """eps and alpha of a VAT row, chosen on the validation split (never the test set).

    Args:
        data, row: the study data and a row of `VAT_ROWS`.
        base: notebook 03's training config (the sweep sets alpha 1 as notebook 03 does).
        notebook03: notebook 03's choice ({"eps", "alpha"}, its training_summary.json), made
            by the same sweep with the two_stage row's labeled mask.
        per_row: run the sweep with this row's own labels; False: use notebook 03's choice.
        grid, n_samples, epochs: the sweep of notebook 03 (`rbcore.train.experiment`).
        out_dir: resumable sweep runs go to out_dir/<row>/.

    Returns:
        {"eps", "alpha", "source"} and, for an own sweep, its "table" (records).
    """
    if row not in VAT_ROWS:
        raise ValueError(f"row {row!r} does not train with VAT; VAT rows: {VAT_ROWS}")
    if not per_row or row == "two_stage":
        return {"eps": float(notebook03["eps"]), "alpha": float(notebook03["alpha"]),
                "source": "notebook 03's sweep (the two_stage labels)"}  # fmt: skip
    labels, idx, labeled = row_arrays(data, row)
    table = run_sweep(
        data.images,
        labels,
        labeled_mask=labeled,
        train_idx=idx,
        val_idx=data.val_idx,
        config=dataclasses.replace(base, alpha=1.0),
        grid=grid,
        n_samples=n_samples,
        epochs=epochs,
        out_dir=Path(out_dir) / row,
    )
    return {**choose_from_sweep(table), "source": "own sweep on the validation split",
            "table": table.to_dict(orient="records")}  # fmt: skip


def ablation_plan(rows, seeds) -> list[tuple[str, int]]:
    """(row, seed) pairs to train: every row at the first seed, `SEED_ROWS` at every seed.

    The first seed's models come first (the table needs them), then the extra seeds.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    plan = [(r, seeds[0]) for r in rows]
    plan += [(r, s) for s in seeds[1:] for r in rows if r in SEED_ROWS]
    return plan
