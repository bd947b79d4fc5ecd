"""The decomposition's rows (issue 22): from the talk's Current model to the paper's method.

Between the talk's Current model and the paper's classifier four things change at once: the
data treatment (one model per detector, `each`, against pooled, `all`), the network (the
talk's CNN against the paper's residual network), the loss (CE against CE + ECH + VAT) and the
handling of the flagged labels (all kept, removed, unlabeled for VAT). Each row below changes
one of them from its neighbour, on the same data, split, flags and seeds:

| row | network | treatment | labels | flagged samples | loss (TrainConfig) |
|---|---|---|---|---|---|
| talk_current | talk CNN | each | given | kept | notebook 03's Current (CE) |
| simple_all | talk CNN | all | given | kept | the same |
| simple_oracle | talk CNN | all | true | - | the same |
| complex_all | PaperResNet | all | given | kept | CE x 0.1 (the code's lambda_ce) |
| complex_all_ech | PaperResNet | all | given | kept | CE x 0.1 + ECH x 0.1 (the code's effective weights) |
| complex_removed | PaperResNet | all | given | removed | CE x 0.1 (README's removed run: lambda_vat 0) |
| complex_unlabeled_vat | PaperResNet | all | given | unlabeled | as coded: CE x 0.1 + ECH x 0.1 + VAT x 1 |
| complex_unlabeled_vat_named | PaperResNet | all | given | unlabeled | as named: CE x 0.1 + ECH x 1 + VAT x 0.1 |
| complex_oracle | PaperResNet | all | true | - | CE x 0.1 |

"simple" rows train with notebook 03's Current configuration (the talk's CNN as rbcore
trains it) at the profile's `decomp_simple_batch` (64: the paper README's Simple runs,
README:94, so that one detector's share of the data still makes several batches in `each`);
"complex" rows with the paper's stage-2 settings (`PAPER_STAGE2`: SGD lr 1e-3,
batch 256, the code's loss weights, VAT on raw pixels, flagged samples in the batch with
label -1; src/real_bogus.py, see `rbcore.train.config`) on `PaperResNet` (projection
shortcuts as coded), with the profile's epochs and early stopping on the validation loss
(real_bogus.py's Keras default). These are the fields of the recipes `paper_simple_each`,
`paper_simple_all`, `paper_complex_all`, `paper_complex_removed` and
`paper_complex_unlabeled` (`rbcore.recipes`, issue 21; tests/test_study_decomposition.py
checks the shared fields), except that every row here trains on one split (below), so that
the rows differ only where the table says, and two differences on purpose: `complex_all` is
CE only (the recipe `paper_complex_all`, README:158, keeps ECH and VAT on all labels: here
the loss and the labels change in separate steps), and the row `talk_current` is the talk's
Current model (CE, one model per detector), not the recipe `talk_current` (notebooks 02-03's
default protocol: pooled, flagged samples unlabeled for VAT).

The split (our choice, issue 22's "same data, split and seeds"): a seeded subset of the
run's training set, then within every detector a 6:1 train:validation split stratified by
label (the code's 5:1:1 split per detector, `split_dataset`, without its unused third part:
the study has its own test set). `each` trains one model per detector on that detector's
training rows and validates on its validation rows; `all` trains one model on every training
row and validates on every validation row. The flags are notebook 02's (the ledger) for every
row, so the flagger's quality is the same everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.files import write_json_atomic
from rbcore.train.config import PAPER_STAGE2, TrainConfig

__all__ = [
    "DecompRow",
    "DECOMP_ROWS",
    "DecompData",
    "load_decomp_data",
    "study_split",
    "row_config",
    "row_training",
    "MemorizationRecorder",
    "train_decomp_row",
    "config_table",
]


@dataclasses.dataclass(frozen=True)
class DecompRow:
    """How one row of the decomposition trains (see the module's table)."""

    network: str  # "simple" (notebook 03's Current config) or "complex" (PAPER_STAGE2, ResNet)
    treatment: str  # "each" (one model per detector) or "all" (pooled)
    labels: str  # "given" (noisy) or "true" (the simulator's)
    flagged: str  # notebook 02's flagged samples: "kept", "removed" or "unlabeled"
    loss: dict  # TrainConfig overrides of the loss on top of the network's base
    description: str  # one line for tables


_CE_ONLY = {"alpha": 0.0, "lambda_auc": 0.0}  # as_coded with alpha 0: CE x lambda_ce only
DECOMP_ROWS = {
    "talk_current": DecompRow("simple", "each", "given", "kept", {},
                              "the talk's CNN, one model per detector (each), CE"),
    "simple_all": DecompRow("simple", "all", "given", "kept", {}, "the talk's CNN, pooled, CE"),
    "simple_oracle": DecompRow("simple", "all", "true", "kept", {},
                               "the talk's CNN, pooled, true labels"),
    "complex_all": DecompRow("complex", "all", "given", "kept", _CE_ONLY,
                             "ResNet, pooled, CE only"),
    # The code's effective ECH weight is lambda_vat = 0.1 (real_bogus.py train_classifier);
    # as_named with lambda_auc 0.1 gives CE x 0.1 + ECH x 0.1 without the VAT term.
    "complex_all_ech": DecompRow("complex", "all", "given", "kept",
                                 {"alpha": 0.0, "lambda_auc": 0.1, "loss_weights": "as_named"},
                                 "ResNet, pooled, CE + ECH"),
    "complex_removed": DecompRow("complex", "all", "given", "removed", _CE_ONLY,
                                 "ResNet, flagged samples removed, CE"),
    "complex_unlabeled_vat": DecompRow("complex", "all", "given", "unlabeled", {},
                                       "ResNet, flagged unlabeled, CE + ECH + VAT as coded"),
    "complex_unlabeled_vat_named": DecompRow(
        "complex", "all", "given", "unlabeled", {"loss_weights": "as_named"},
        "ResNet, flagged unlabeled, CE + ECH + VAT as named"),
    "complex_oracle": DecompRow("complex", "all", "true", "kept", _CE_ONLY,
                                "ResNet, pooled, true labels, CE"),
}  # fmt: skip


@dataclasses.dataclass
class DecompData:
    """The training data every row shares (whole training set, N rows)."""

    images: object  # raw cutouts float32[N, 29, 29, 3], memory-mapped
    detector_ids: np.ndarray  # int[N]
    labels: np.ndarray  # int[N] given labels
    true_labels: np.ndarray  # int[N]
    flagged: np.ndarray  # bool[N] notebook 02's flags
    train_idx: np.ndarray  # int[M] the study's training rows
    val_idx: np.ndarray  # int[V] the study's validation rows


def study_split(detector_ids, labels, rows, seed: int, val_share: float = 1.0 / 7.0):
    """(train_idx, val_idx): within each detector, `rows` split train:validation stratified by
    label (6:1 by default: the code's 5:1:1 per detector without its test part).

    Raises:
        ValueError: a detector with fewer than 2 samples of a class (no stratified split).
    """
    from sklearn.model_selection import train_test_split

    det, y, rows = np.asarray(detector_ids), np.asarray(labels), np.asarray(rows)
    trains, vals = [], []
    for d in np.unique(det[rows]):
        members = rows[det[rows] == d]
        counts = np.bincount(y[members], minlength=2)
        if counts.min() < 2:
            raise ValueError(
                f"study_split: detector {int(d)} has {counts.tolist()} (bogus, real) samples; "
                "a stratified train/validation split needs at least 2 of each"
            )
        n_val = max(2, int(round(val_share * members.size)))
        tr, va = train_test_split(members, test_size=n_val, stratify=y[members],
                                  random_state=int(seed) + int(d))  # fmt: skip
        trains.append(tr)
        vals.append(va)
    return np.sort(np.concatenate(trains)), np.sort(np.concatenate(vals))


def load_decomp_data(run_dir, *, n_samples: int | None, seed: int, data_dir=None) -> DecompData:
    """The run's training set (notebook 01), notebook 02's flags and the study's split.

    Raises:
        FileNotFoundError: no ledger (run notebook 02 first).
        ValueError: data without truth columns (the study needs the simulator's truth).
    """
    from rbcore.datasets import load_training
    from rbcore.train.experiment import labeled_mask_from_ledger

    run_dir = Path(run_dir)
    train_dir = (Path(data_dir) if data_dir else run_dir / "data") / "train"
    ts = load_training(train_dir)
    if not ts.has_truth:
        raise ValueError(f"{train_dir}: no truth columns; the decomposition needs simulated data")
    ledger = run_dir / "label_ledger.csv"
    if not ledger.exists():
        raise FileNotFoundError(f"{ledger}: no label ledger (run notebook 02 first)")
    labeled, _ = labeled_mask_from_ledger(ledger, ts.params)
    n = len(ts.params)
    rows = np.arange(n)
    if n_samples is not None and n_samples < n:
        rows = np.sort(np.random.default_rng(seed).choice(n, int(n_samples), replace=False))
    det = ts.params["detector_id"].to_numpy().astype(np.int64)
    labels = ts.params["label"].to_numpy().astype(np.int64)
    train_idx, val_idx = study_split(det, labels, rows, seed)
    return DecompData(
        images=ts.images, detector_ids=det, labels=labels,
        true_labels=ts.params["is_real_true"].to_numpy().astype(np.int64),
        flagged=~labeled, train_idx=train_idx, val_idx=val_idx,
    )  # fmt: skip


def row_config(row: str, *, simple: TrainConfig, complex_overrides: dict, seed: int) -> TrainConfig:
    """The row's TrainConfig.

    Args:
        row: a key of `DECOMP_ROWS`.
        simple: notebook 03's Current config (epochs as the study's profile says).
        complex_overrides: the profile's sizes for the residual network (epochs, patience,
            batch_size, ...), over `PAPER_STAGE2`.
        seed: the training seed.
    """
    spec = DECOMP_ROWS[row]
    if spec.network == "simple":
        base = dataclasses.replace(simple, alpha=0.0)
    else:
        values = {**PAPER_STAGE2, "architecture": "PaperResNet",
                  "projection_shortcut": "as_coded",  # block.py as coded (TrainConfig)
                  "early_stopping_metric": "loss",  # Keras' val_loss (real_bogus.py)
                  "patience": 10,  # real_bogus.py:106
                  **complex_overrides}  # fmt: skip
        base = TrainConfig(**values)
    return dataclasses.replace(base, **spec.loss, seed=int(seed))


def row_training(data: DecompData, row: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels int[N], training rows, labeled bool[N]) of one row (module's table)."""
    spec = DECOMP_ROWS[row]
    y = data.true_labels if spec.labels == "true" else data.labels
    idx = data.train_idx
    labeled = np.ones(len(y), bool)
    if spec.labels == "given" and spec.flagged == "removed":
        idx = idx[~data.flagged[idx]]
    elif spec.labels == "given" and spec.flagged == "unlabeled":
        labeled = ~data.flagged
    return y.astype(np.int64), idx, labeled


class MemorizationRecorder:
    """`fit`'s per-epoch hook: the share of wrong and of right training labels a model fits.

    A label is fitted when the model predicts it (logit >= 0 for 1, < 0 for 0). The samples:
    every labeled training sample of the row whose given label is wrong, and a seeded subset
    of at most `max_right` whose label is right (their share is estimated, not counted). The
    counts of each epoch are summed over the models of a row (the detectors of `each`) and
    kept in a JSON file, so a resumed run keeps the epochs trained before.
    """

    def __init__(self, path, images, labels, wrong, right):
        self.path = Path(path)
        self.images, self.labels = images, np.asarray(labels)
        self.sets = {"wrong": np.asarray(wrong), "right": np.asarray(right)}
        self.counts = json.loads(self.path.read_text()) if self.path.exists() else {}

    def hook(self, part: str, members):
        """The `on_epoch_end` callback of one model (`part`: its name within the row), over
        the samples of the sets that are among its training rows `members`."""
        from rbcore.datasets import Subset

        wrong, right = (s[np.isin(s, members)] for s in (self.sets["wrong"], self.sets["right"]))
        idx = np.concatenate([wrong, right])
        n_wrong = wrong.size

        def on_epoch_end(epoch: int, predict) -> None:
            if idx.size == 0:
                return
            fit = (predict(Subset(self.images, idx)) >= 0).astype(np.int64) == self.labels[idx]
            self.counts.setdefault(part, {})[str(epoch)] = [
                int(fit[:n_wrong].sum()), int(n_wrong),
                int(fit[n_wrong:].sum()), int(idx.size - n_wrong),
            ]  # fmt: skip
            write_json_atomic(self.path, self.counts)

        return on_epoch_end

    def curve(self) -> list[dict]:
        """[{"epoch", "fit_wrong", "fit_right", "n_wrong", "n_right"}] summed over the parts;
        a share is None where it has no sample."""
        epochs = sorted({int(e) for part in self.counts.values() for e in part})
        out = []
        for e in epochs:
            c = np.sum([p[str(e)] for p in self.counts.values() if str(e) in p], axis=0)
            out.append({
                "epoch": e,
                "fit_wrong": float(c[0] / c[1]) if c[1] else None,
                "fit_right": float(c[2] / c[3]) if c[3] else None,
                "n_wrong": int(c[1]), "n_right": int(c[3]),
            })  # fmt: skip
        return out


def _memo_sets(data: DecompData, labels, idx, labeled, *, max_right: int, seed: int):
    given_idx = idx[labeled[idx]]
    wrong = given_idx[labels[given_idx] != data.true_labels[given_idx]]
    right = given_idx[labels[given_idx] == data.true_labels[given_idx]]
    if right.size > max_right:
        right = np.sort(np.random.default_rng(seed).choice(right, int(max_right), replace=False))
    return wrong, right


def train_decomp_row(
    data: DecompData, row: str, config: TrainConfig, *, study_dir, max_right: int, log=print
) -> dict:
    """Train (or resume, or reuse finished) one row at `config.seed`: one model, or one per
    detector for `each`, with the memorization hook.

    Returns:
        {"row", "seed", "checkpoints": {part: path}, "parts_detectors": {part: detector or
        None}, "n_train", "n_labeled", "seconds" (training time, summed over the parts and
        over resumed sessions), "memorization": the recorder's curve}.
    """
    from rbcore.study.ablation import _matches
    from rbcore.train.experiment import train_model

    study_dir = Path(study_dir)
    labels, idx, labeled = row_training(data, row)
    name = f"{row}_seed{int(config.seed)}"
    wrong, right = _memo_sets(data, labels, idx, labeled, max_right=max_right, seed=config.seed)
    recorder = MemorizationRecorder(study_dir / "memorization" / f"{name}.json",
                                    data.images, labels, wrong, right)  # fmt: skip
    if DECOMP_ROWS[row].treatment == "each":
        dets = np.unique(data.detector_ids[idx])
        parts = {f"detector{int(d)}": (int(d), idx[data.detector_ids[idx] == d],
                                       data.val_idx[data.detector_ids[data.val_idx] == d])
                 for d in dets}  # fmt: skip
    else:
        parts = {"all": (None, idx, data.val_idx)}
    timing_path = study_dir / "timing" / f"{name}.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    ckpts = {}
    for part, (_det, tr, va) in parts.items():
        if tr.size < config.batch_size:
            raise ValueError(
                f"{name}/{part}: {tr.size} training samples, fewer than one batch "
                f"({config.batch_size}); raise the study's decomp_samples or lower its "
                "decomp_simple_batch (rbcore.profiles, step 'study')"
            )
        model = f"{name}/{part}"
        ckpt = study_dir / "models" / model
        n_unl = int((~labeled[tr]).sum())
        if not _matches(ckpt, config, int(tr.size), n_unl):
            rec = recorder.hook(part, tr)
            t0 = time.time()
            train_model(model, data.images, labels, labeled_mask=labeled, train_idx=tr,
                        val_idx=va, config=config, run_dir=study_dir,
                        extra={"row": row, "part": part}, progress=False,
                        on_epoch_end=rec)  # fmt: skip
            timing[part] = timing.get(part, 0.0) + time.time() - t0
            write_json_atomic(timing_path, timing)
        ckpts[part] = ckpt
    seconds = float(sum(timing.get(p, 0.0) for p in parts))
    log(f"{name}: {len(parts)} model(s), {idx.size:,} samples, {seconds:.0f} s of training")
    return {
        "row": row, "seed": int(config.seed), "checkpoints": ckpts,
        "parts_detectors": {p: v[0] for p, v in parts.items()},
        "n_train": int(idx.size), "n_labeled": int(labeled[idx].sum()), "seconds": seconds,
        "memorization": recorder.curve(),
    }  # fmt: skip


def config_table(configs: dict) -> pd.DataFrame:
    """The rows' TrainConfig fields that differ between rows (for the notebook)."""
    frame = pd.DataFrame({row: c.to_dict() for row, c in configs.items()}).T
    varying = [c for c in frame.columns if frame[c].astype(str).nunique() > 1]
    return frame[varying]
