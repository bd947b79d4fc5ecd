"""Mislabel discovery, the step of the paper that finds wrong labels in the training data.

Modules:
    folds: fold assignment and the out-of-fold / in-sample scores of the training data
        (resumable), the CNN trainer, notebook 02's profile settings.
    flags: the disagreement rule, the margin ranking, cleanlab, detection metrics.
    ledger: the label ledger (`run_dir/label_ledger.csv`) and the mislabel metrics JSON.
    review: the talk's inspection-sample estimate, recall by group, gallery rows
        (`from rbcore.mislabel import review`).
    noise: the paper code's `make_label_error`, extra label errors by stage-1 score bin
        (`from rbcore.mislabel import noise`).
"""

from rbcore.mislabel.flags import (
    cleanlab_flags,
    detection_metrics,
    flag_disagreements,
    margin_rank,
    sigmoid,
    wrong_side_margin,
)
from rbcore.mislabel.folds import (
    TrainFn,
    assign_folds,
    cnn_trainer,
    insample_logits,
    out_of_fold_logits,
    profile_settings,
)
from rbcore.mislabel.ledger import (
    LEDGER_COLUMNS,
    METHODS,
    build_ledger,
    mislabel_metrics,
    read_ledger,
    write_ledger,
    write_metrics,
)

__all__ = [
    "LEDGER_COLUMNS",
    "METHODS",
    "TrainFn",
    "assign_folds",
    "build_ledger",
    "cleanlab_flags",
    "cnn_trainer",
    "detection_metrics",
    "flag_disagreements",
    "insample_logits",
    "margin_rank",
    "mislabel_metrics",
    "out_of_fold_logits",
    "profile_settings",
    "read_ledger",
    "sigmoid",
    "write_ledger",
    "write_metrics",
    "wrong_side_margin",
]
