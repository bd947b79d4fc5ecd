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
    decomposition: issue 22's rows (talk_current ... complex_oracle) as TrainConfigs, the
        study's split, training with the memorization hook.
    decomp_run: the study's test set, every row at every seed, scores, steps, A/A check.
    steps: the step ratio, its interval (paired bootstrap + seeds), the detectable ratio.
    decomp_report: the decomposition's JSON schema and markdown tables.
"""

from rbcore.study.ablation import StudyData, load_study_data, subsample_train
from rbcore.study.decomp_report import decomposition_markdown, validate_decomposition
from rbcore.study.decomp_run import run_decomposition
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
    "decomposition_markdown",
    "load_study_data",
    "notebook03_settings",
    "read_study",
    "row_inputs",
    "run_decomposition",
    "run_point",
    "score_ablation",
    "study_markdown",
    "study_results",
    "study_settings",
    "subsample_train",
    "train_ablation",
    "validate_decomposition",
    "validate_study",
    "write_study",
]
