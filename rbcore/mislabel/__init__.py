"""Mislabel discovery: out-of-fold scores, flags, the ledger and its review."""

from rbcore.mislabel.ledger import (  # noqa: F401
    LEDGER_COLUMNS,
    METHODS,
    PROFILES,
    TrainFn,
    assign_folds,
    build_ledger,
    cleanlab_flags,
    cnn_trainer,
    detection_metrics,
    flag_disagreements,
    insample_logits,
    margin_rank,
    mislabel_metrics,
    out_of_fold_logits,
    profile_settings,
    read_ledger,
    sigmoid,
    write_ledger,
    write_metrics,
    wrong_side_margin,
)
