"""The rows of the label-noise ablation (issue 13): which labels each model trains on.

Takahashi et al. (2022) change two things at once: the samples their CNN flags lose their
labels, and the model trains with Virtual Adversarial Training. The rows below separate the
two, and bracket them with what clean labels and perfect flags would give (the simulator
knows every wrong label):

| row | labels | samples trained on | unlabeled | loss |
|---|---|---|---|---|
| oracle | true | all | none | CE |
| current | given | all | none | CE |
| drop_flagged | given | unflagged only | none | CE |
| vat_only | given | all | none | CE + VAT |
| two_stage | given | all | flagged (notebook 02) | CE + VAT |
| cleanlab_vat | given | all | cleanlab's flags | CE + VAT |
| oracle_flags_vat | given | all | truly wrong labels | CE + VAT |

`oracle`, `current` and `two_stage` are notebook 03's `oracle`, `current` and `vat` models.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["ROWS", "SEED_ROWS", "VAT_ROWS", "NOTEBOOK03_NAMES", "RowSpec", "SPECS", "row_inputs"]


@dataclasses.dataclass(frozen=True)
class RowSpec:
    """How one ablation row is trained."""

    labels: str  # "given" (the noisy labels) or "true" (the simulator's is_real_true)
    drop: str  # samples left out of training: "none" or "flagged" (notebook 02's flags)
    unlabeled: str  # samples whose label VAT ignores: "none", "flagged", "cleanlab", "wrong"
    vat: bool  # trained with the LDS term (eps, alpha from the validation sweep)
    description: str  # one line for tables


SPECS = {
    "oracle": RowSpec("true", "none", "none", False, "true labels (upper bound, never a method)"),
    "current": RowSpec("given", "none", "none", False, "all noisy labels, cross-entropy"),
    "drop_flagged": RowSpec("given", "flagged", "none", False, "flagged samples removed"),
    "vat_only": RowSpec("given", "none", "none", True, "VAT on all noisy labels, nothing flagged"),
    "two_stage": RowSpec("given", "none", "flagged", True, "flagged unlabeled + VAT (the paper)"),
    "cleanlab_vat": RowSpec("given", "none", "cleanlab", True, "cleanlab's flags unlabeled + VAT"),
    "oracle_flags_vat": RowSpec(
        "given", "none", "wrong", True, "truly wrong labels unlabeled + VAT (perfect flags)"
    ),
}
#: The rows in the order of issue 13's table.
ROWS = tuple(SPECS)
#: The rows trained with VAT: each gets its eps and alpha from the validation sweep.
VAT_ROWS = tuple(r for r, s in SPECS.items() if s.vat)
#: The rows trained with several training seeds (issue 13, item 2).
SEED_ROWS = ("current", "two_stage", "oracle")
#: Notebook 03's name of the rows it already trains (same data, split, config and seed).
NOTEBOOK03_NAMES = {"current": "current", "two_stage": "vat", "oracle": "oracle"}


def row_inputs(
    row: str, *, labels, true_labels, flagged, cleanlab_flagged, label_is_wrong
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The labels, training-sample mask and labeled mask of one row, over the whole training set.

    Args:
        row: one of `ROWS`.
        labels: int[N] given (noisy) labels; true_labels: int[N] the simulator's truth.
        flagged: bool[N] notebook 02's flags (the ledger's `flagged`).
        cleanlab_flagged: bool[N] cleanlab's flags (the ledger's `cleanlab_flag`).
        label_is_wrong: bool[N] the simulator's truth: the given label is wrong.

    Returns:
        (labels int[N], keep bool[N] (trained on), labeled bool[N] (False: only the LDS sees it)).

    Raises:
        ValueError: an unknown row, or arrays of different lengths.
    """
    if row not in SPECS:
        raise ValueError(f"unknown ablation row {row!r}; expected one of {ROWS}")
    arrays = {
        "labels": labels,
        "true_labels": true_labels,
        "flagged": flagged,
        "cleanlab_flagged": cleanlab_flagged,
        "label_is_wrong": label_is_wrong,
    }
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    n = len(arrays["labels"])
    for k, v in arrays.items():
        if v.shape != (n,):
            raise ValueError(f"row_inputs: {k} has shape {v.shape}, expected ({n},)")
    spec = SPECS[row]
    y = arrays["true_labels"] if spec.labels == "true" else arrays["labels"]
    keep = ~arrays["flagged"].astype(bool) if spec.drop == "flagged" else np.ones(n, bool)
    unlabeled = {
        "none": np.zeros(n, bool),
        "flagged": arrays["flagged"].astype(bool),
        "cleanlab": arrays["cleanlab_flagged"].astype(bool),
        "wrong": arrays["label_is_wrong"].astype(bool),
    }[spec.unlabeled]
    return y.astype(np.int64), keep, ~unlabeled
