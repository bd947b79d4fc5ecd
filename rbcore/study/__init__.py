"""The label-noise study (notebook 07, issue 13): which part of the two-stage method helps.

Modules:
    rows: the ablation's rows (oracle, current, drop_flagged, vat_only, two_stage,
        cleanlab_vat, oracle_flags_vat) and the labels each trains on.
    ablation: notebook 03's data, split and config for every row; training with reuse of
        notebook 03's models and resume; eps/alpha per VAT row on the validation split.
    scores: test-set logits (cached), AUC and FPR at TPR 0.9 with bootstrap intervals, the
        spread over training seeds.
    sweep: the noise-rate sweep (survey noise x0 ... x4): data, flags, three models, scores.
    report: noise_study.json (schema, the claims test) and the README block.
    run: the notebook's steps in order.
"""

from rbcore.study.ablation import StudyData, load_study_data, subsample_train
from rbcore.study.report import (
    COMPARED_PAIRS,
    comparisons,
    read_study,
    study_markdown,
    validate_study,
    write_study,
)
from rbcore.study.rows import NOTEBOOK03_NAMES, ROWS, SEED_ROWS, SPECS, VAT_ROWS, row_inputs
from rbcore.study.run import (
    notebook03_settings,
    score_ablation,
    study_results,
    study_settings,
    train_ablation,
)
from rbcore.study.sweep import SWEEP_MODELS, run_point

__all__ = [
    "COMPARED_PAIRS",
    "NOTEBOOK03_NAMES",
    "ROWS",
    "SEED_ROWS",
    "SPECS",
    "SWEEP_MODELS",
    "VAT_ROWS",
    "StudyData",
    "comparisons",
    "load_study_data",
    "notebook03_settings",
    "read_study",
    "row_inputs",
    "run_point",
    "score_ablation",
    "study_markdown",
    "study_results",
    "study_settings",
    "subsample_train",
    "train_ablation",
    "validate_study",
    "write_study",
]
