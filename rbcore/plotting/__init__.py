"""Figures of the notebooks: one function per figure, each taking data and returning a Figure.

Modules (the notebook each serves):
    common: the headless backend, `save_figure` (PDF and PNG), the zscale of a cutout.
    data: cutout triplets, category counts, magnitudes (01).
    mislabel: output distributions, mislabel ratio, detection precision-recall (02).
    training: training curves, the eps/alpha sweep (03).
    evaluation: distributions, confusion matrices, ROC, PR, completeness, FPR by
        category, reliability (04); our scores against ZTF's drb (06).
    deploy: registered candidates per night, the budget curves (05).
    study: the noise-rate sweep, the ablation, the decomposition steps and memorization (07).

`common` is imported first: it selects the non-interactive backend in headless runs.
"""

from rbcore.plotting.common import save_figure, use_headless_backend
from rbcore.plotting.data import CHANNEL_NAMES, category_counts, real_magnitudes, triplet_gallery
from rbcore.plotting.deploy import budget_threshold_curves, registered_per_night_bars
from rbcore.plotting.evaluation import (
    completeness_curves,
    confusion_matrices,
    fpr_by_category_plot,
    output_distributions,
    pr_curves,
    reliability_diagram,
    roc_curves,
    score_vs_drb,
)
from rbcore.plotting.mislabel import (
    detection_pr,
    mislabel_output_distribution,
    mislabel_ratio,
    mislabel_recall,
)
from rbcore.plotting.study import (
    ablation_fpr,
    decomposition_steps,
    memorization_curves,
    noise_sweep,
)
from rbcore.plotting.training import training_curves, vat_sweep

__all__ = [
    "CHANNEL_NAMES",
    "ablation_fpr",
    "budget_threshold_curves",
    "category_counts",
    "completeness_curves",
    "confusion_matrices",
    "decomposition_steps",
    "detection_pr",
    "fpr_by_category_plot",
    "memorization_curves",
    "mislabel_output_distribution",
    "mislabel_ratio",
    "mislabel_recall",
    "noise_sweep",
    "output_distributions",
    "pr_curves",
    "real_magnitudes",
    "registered_per_night_bars",
    "reliability_diagram",
    "roc_curves",
    "save_figure",
    "score_vs_drb",
    "training_curves",
    "triplet_gallery",
    "use_headless_backend",
    "vat_sweep",
]
