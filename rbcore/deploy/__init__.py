"""A week in the pipeline: the simulated stream, the candidate database and the week's report.

`stream` simulates each night in chunks, scores them with both models (`rbcore.inference`) and
registers them (`run_deployment`); `db` is the candidate database (`CandidateDB`); `report`
reads the week back (confusion matrix, registrations per night, false-positive taxonomy).
"""

from rbcore.deploy.stream import (
    HIST_EDGES,
    TALK_BUDGET_PER_DAY,
    TALK_CANDIDATES_PER_NIGHT,
    TALK_NIGHTS,
    TALK_THRESHOLD,
    TALK_WEEK_CANDIDATES,
    TRANSIENT_CATEGORIES,
    TRUTH_CLASSES,
    VARIABLE_CATEGORIES,
    DeployConfig,
    candidate_ids,
    chunk_rows,
    profile_config,
    run_deployment,
    truth_class,
    write_summary,
)
from rbcore.inference import MODEL_NAMES

__all__ = [
    "HIST_EDGES",
    "MODEL_NAMES",
    "TALK_BUDGET_PER_DAY",
    "TALK_CANDIDATES_PER_NIGHT",
    "TALK_NIGHTS",
    "TALK_THRESHOLD",
    "TALK_WEEK_CANDIDATES",
    "TRANSIENT_CATEGORIES",
    "TRUTH_CLASSES",
    "VARIABLE_CATEGORIES",
    "DeployConfig",
    "candidate_ids",
    "chunk_rows",
    "profile_config",
    "run_deployment",
    "truth_class",
    "write_summary",
]
