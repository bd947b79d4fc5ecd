"""The simulated Tomo-e-like survey: a physical forward model of difference-imaging candidates.

`config` holds every physical constant with its source (`SurveyConfig`), `scene` builds what a
cutout contains per category, `render` draws it (PSFs, galaxies, noise), `survey` observes and
detects (`simulate_candidates`), and `write` stores data sets in the published Tomo-e layout.
"""

from rbcore.simulation.config import (
    ALL_CATEGORIES,
    BOGUS_CATEGORIES,
    REAL_CATEGORIES,
    TALK_FP_CATEGORY,
    SurveyConfig,
    scale_label_noise,
)
from rbcore.simulation.survey import TRUTH_COLUMNS, simulate_candidates
from rbcore.simulation.write import (
    read_survey_config,
    write_survey_config,
    write_test_set,
    write_training_set,
)

__all__ = [
    "ALL_CATEGORIES",
    "BOGUS_CATEGORIES",
    "REAL_CATEGORIES",
    "TALK_FP_CATEGORY",
    "TRUTH_COLUMNS",
    "SurveyConfig",
    "scale_label_noise",
    "simulate_candidates",
    "read_survey_config",
    "write_survey_config",
    "write_test_set",
    "write_training_set",
]
