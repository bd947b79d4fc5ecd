"""Evaluation on the test set (notebook 04): the talk's table, completeness, calibration.

Modules:
    table: the talk's table with stratified bootstrap intervals, metrics.json, the test
        logits cached.
    completeness: completeness against magnitude and S/N, false-positive rate by bogus
        category, rates with binomial intervals, the validation split.
    calibration: reliability, ECE, NLL, Brier, temperature scaling, prior shift.
    readme: the README's results section from metrics.json
        (`python -m rbcore.evaluation.readme`).
"""

from rbcore.evaluation.calibration import (
    brier,
    calibration_summary,
    calibration_variants,
    expected_calibration_error,
    fit_temperature,
    logit,
    nll,
    prior_shift,
    reliability_table,
    sigmoid,
)
from rbcore.evaluation.completeness import (
    binned_rate,
    completeness_by_model,
    completeness_vs,
    flagged_by_category,
    fpr_by_category,
    has_columns,
    magnitude_and_snr_bins,
    rate_by_group,
    read_validation_split,
)
from rbcore.evaluation.table import (
    DISPLAY_NAMES,
    MODEL_NAMES,
    ORACLE,
    TABLE_METRICS,
    TARGET_TPR,
    bootstrap_samples,
    cached_logits,
    evaluated_models,
    file_fingerprint,
    metrics_results,
    metrics_table,
    read_metrics,
    validate_metrics,
    write_metrics,
)

__all__ = [
    "DISPLAY_NAMES",
    "ORACLE",
    "evaluated_models",
    "MODEL_NAMES",
    "TABLE_METRICS",
    "TARGET_TPR",
    "binned_rate",
    "bootstrap_samples",
    "brier",
    "cached_logits",
    "calibration_summary",
    "calibration_variants",
    "completeness_by_model",
    "completeness_vs",
    "expected_calibration_error",
    "file_fingerprint",
    "fit_temperature",
    "flagged_by_category",
    "fpr_by_category",
    "has_columns",
    "logit",
    "magnitude_and_snr_bins",
    "metrics_results",
    "metrics_table",
    "nll",
    "prior_shift",
    "rate_by_group",
    "read_metrics",
    "read_validation_split",
    "reliability_table",
    "sigmoid",
    "validate_metrics",
    "write_metrics",
]
