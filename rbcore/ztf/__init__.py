"""Real ZTF alerts: the alert file and its cutouts on the model grid, packets, agreement.

`alerts` loads an alert file and resamples its 63x63 stamps onto the 29x29 Tomo-e grid, and
measures agreement with ZTF's own classifier (notebook 06); `packets` reads ZTF alert
packets (Avro, Parquet) into that file (`python -m rbcore.ztf.packets`); `stamps` decodes one
packet's cutouts and metadata; `braai` is ZTF's own classifier (Duev et al. 2019) in Flax
with its published weights, and `judge` its verdicts on the simulated ZTF-like survey.
"""

from rbcore.ztf.alerts import (
    DEFAULT_ALERTS,
    DEFAULT_ALERTS_FILE,
    DRB_THRESHOLD,
    MAX_MASKED_FRACTION,
    REPO_ROOT,
    REQUIRED_ARRAYS,
    SENTINEL_ABS,
    TOMOE_PIXEL_SCALE,
    ZTF_PIXEL_SCALE,
    AlertSet,
    agreement_with_drb,
    default_alerts_path,
    load_alerts,
    missing_alerts_message,
    overlap_weights,
    prepare_alerts_run,
    profile_settings,
    real_alert_report,
    resample_to_tomoe,
    resolve_alerts_path,
    strongest_disagreements,
    write_report,
)

__all__ = [
    "REPO_ROOT",
    "TOMOE_PIXEL_SCALE",
    "ZTF_PIXEL_SCALE",
    "MAX_MASKED_FRACTION",
    "SENTINEL_ABS",
    "DRB_THRESHOLD",
    "REQUIRED_ARRAYS",
    "DEFAULT_ALERTS",
    "DEFAULT_ALERTS_FILE",
    "AlertSet",
    "profile_settings",
    "default_alerts_path",
    "missing_alerts_message",
    "resolve_alerts_path",
    "prepare_alerts_run",
    "overlap_weights",
    "resample_to_tomoe",
    "load_alerts",
    "agreement_with_drb",
    "strongest_disagreements",
    "write_report",
    "real_alert_report",
]
