"""The label ledger: one row per training sample with its scores and flags, and its metrics.

The flagged samples of the ledger (`run_dir/label_ledger.csv`, written by notebook 02) become
"unlabeled" for VAT (notebook 03). Its scores come from `rbcore.mislabel.folds`, its flags
from `rbcore.mislabel.flags`; the review of the flags (inspection-sample estimates, recall by
group, galleries) is in `rbcore.mislabel.review`.

Scores: the ledger's `*_score` columns are probabilities (sigmoid of the logit), the
`*_logit` columns the CNN's raw output (the talk's "prediction: -2.19").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.files import write_csv_atomic, write_json_atomic
from rbcore.mislabel.flags import (
    cleanlab_flags,
    detection_metrics,
    flag_disagreements,
    margin_rank,
    sigmoid,
    wrong_side_margin,
)

__all__ = [
    "LEDGER_COLUMNS",
    "METHODS",
    "build_ledger",
    "write_ledger",
    "read_ledger",
    "mislabel_metrics",
    "write_metrics",
]


# The ledger contract read by the VAT notebook (issue 5): these columns, one row per sample.
LEDGER_COLUMNS = (
    "id",
    "detector_id",
    "fold",
    "label",
    "oof_score",
    "insample_score",
    "flagged",
    "rule",
)
METHODS = ("insample", "oof", "cleanlab")


def build_ledger(
    params: pd.DataFrame,
    folds,
    oof_logits,
    insample_logits,
    *,
    threshold: float = 0.5,
    flag_method: str = "oof",
    cleanlab_kwargs: dict | None = None,
) -> pd.DataFrame:
    """One row per training sample: scores, flags of every method, and the chosen flag.

    Args:
        params: the training table with `id`, `detector_id`, `label` (TrainingSet.params).
        folds: int[N] out-of-fold fold per sample.
        oof_logits, insample_logits: float[N].
        threshold: probability threshold of the disagreement rule (the paper: 0.5).
        flag_method: which method sets `flagged` ("oof": the paper's; "insample": the
            talk's; "cleanlab").
        cleanlab_kwargs: passed to `cleanlab_flags`.

    Returns:
        DataFrame with LEDGER_COLUMNS (`*_score` are probabilities) plus oof_logit,
        insample_logit, oof_flag, insample_flag, cleanlab_flag, margin (logit units on the
        wrong side of the threshold, OOF) and margin_rank (1 = worst).
    """
    for col in ("id", "detector_id", "label"):
        if col not in params.columns:
            raise ValueError(
                f"training params lack the column {col!r} (have {list(params.columns)[:12]})"
            )
    if flag_method not in METHODS:
        raise ValueError(f"flag_method must be one of {METHODS}, got {flag_method!r}")
    n = len(params)
    arrays = {"folds": folds, "oof_logits": oof_logits, "insample_logits": insample_logits}
    for name, a in arrays.items():
        if np.shape(a) != (n,):
            raise ValueError(f"{name} has shape {np.shape(a)}, expected ({n},) like params")
    labels = params["label"].to_numpy()
    oof_p, ins_p = sigmoid(oof_logits), sigmoid(insample_logits)
    flags = {
        "oof": flag_disagreements(labels, oof_p, threshold),
        "insample": flag_disagreements(labels, ins_p, threshold),
        "cleanlab": cleanlab_flags(labels, oof_p, **(cleanlab_kwargs or {})),
    }
    margin = wrong_side_margin(labels, oof_logits, threshold)
    chosen = flags[flag_method]
    direction = np.where(labels == 1, f"<{threshold:g}", f">={threshold:g}")
    rule = np.where(
        chosen,
        np.char.add(f"{flag_method}: label=", labels.astype(str)),
        "none",
    )
    if flag_method != "cleanlab":
        rule = np.where(
            chosen, np.char.add(np.char.add(rule, f", {flag_method} p"), direction), rule
        )
    return pd.DataFrame(
        {
            "id": params["id"].to_numpy(),
            "detector_id": params["detector_id"].to_numpy(),
            "fold": np.asarray(folds, dtype=np.int64),
            "label": labels.astype(np.int64),
            "oof_score": oof_p,
            "insample_score": ins_p,
            "flagged": chosen.astype(np.int64),
            "rule": rule,
            "oof_logit": np.asarray(oof_logits, dtype=np.float64),
            "insample_logit": np.asarray(insample_logits, dtype=np.float64),
            "oof_flag": flags["oof"].astype(np.int64),
            "insample_flag": flags["insample"].astype(np.int64),
            "cleanlab_flag": flags["cleanlab"].astype(np.int64),
            "margin": margin,
            "margin_rank": margin_rank(margin),
        }
    )


def write_ledger(ledger: pd.DataFrame, run_dir) -> Path:
    """Write run_dir/label_ledger.csv atomically."""
    missing = [c for c in LEDGER_COLUMNS if c not in ledger.columns]
    if missing:
        raise ValueError(f"ledger lacks the columns {missing}")
    path = Path(run_dir) / "label_ledger.csv"
    return write_csv_atomic(path, ledger, index=False, float_format="%.7g")


def read_ledger(path) -> pd.DataFrame:
    """Read and check a label ledger (the input of the VAT notebook).

    Raises:
        FileNotFoundError: no ledger at `path`.
        ValueError: a missing column, a duplicate id, or a flag that is not 0/1.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "label_ledger.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no label ledger (run notebook 02_mislabel_discovery)")
    ledger = pd.read_csv(path, keep_default_na=False, na_values=[""])
    missing = [c for c in LEDGER_COLUMNS if c not in ledger.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected {list(LEDGER_COLUMNS)}")
    if ledger["id"].duplicated().any():
        raise ValueError(f"{path}: column 'id' has duplicates; one row per sample expected")
    if not ledger["flagged"].isin([0, 1]).all():
        raise ValueError(f"{path}: column 'flagged' must be 0/1")
    return ledger


def mislabel_metrics(ledger: pd.DataFrame, label_is_wrong=None, *, threshold: float = 0.5) -> dict:
    """Per method (insample, oof, cleanlab): number flagged and, with truth, precision/recall.

    Args:
        ledger: from `build_ledger`.
        label_is_wrong: int[N] truth in ledger order, or None (real data: no truth).
        threshold: the disagreement threshold used (recorded).

    Returns:
        dict {"insample": {...}, "oof": {...}, "cleanlab": {...}, "n_samples", "threshold",
        "has_truth"}; each method has n_flagged, fraction_flagged, n_flagged_label_real,
        n_flagged_label_bogus and, with truth, the `detection_metrics` fields.
    """
    out = {"n_samples": int(len(ledger)), "threshold": float(threshold)}
    out["has_truth"] = label_is_wrong is not None
    labels = ledger["label"].to_numpy()
    methods = {}
    for m in METHODS:
        f = ledger[f"{m}_flag"].to_numpy().astype(bool)
        d = {
            "n_flagged": int(f.sum()),
            "fraction_flagged": float(f.mean()) if f.size else 0.0,
            "n_flagged_label_real": int((f & (labels == 1)).sum()),
            "n_flagged_label_bogus": int((f & (labels == 0)).sum()),
        }
        if label_is_wrong is not None:
            d.update(detection_metrics(f, label_is_wrong))
        methods[m] = d
    out.update(methods)
    return out


def write_metrics(metrics: dict, run_dir, name: str = "mislabel_metrics.json") -> Path:
    """Write the metrics JSON atomically to run_dir/name."""
    return write_json_atomic(
        Path(run_dir) / name, metrics, indent=2, sort_keys=True, allow_nan=False
    )
