"""What a data set holds: counts by class, the label noise against the truth, examples.

Notebook 01's `summary.json` (`write_dataset_summary`): sizes, categories, and, where the data
carry the simulator's truth columns, the measured label-noise rates and their causes
(`label_noise_summary`), compared with the talk's 1.0 % of real and 0.6 % of bogus labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rbcore.datasets import TestSet, TrainingSet, count_nan_pixels
from rbcore.files import write_json_atomic


def examples_per_group(
    params: pd.DataFrame, by: str, n: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Up to n random row positions per value of column `by` (for galleries).

    Returns:
        dict value -> int array of row positions (sorted by value name).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for key, rows in sorted(params.groupby(by).indices.items(), key=lambda kv: str(kv[0])):
        out[str(key)] = np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))
    return out


def label_noise_summary(params: pd.DataFrame) -> dict:
    """Measured label noise of a training table with truth columns (issue 12).

    Args:
        params: training params with label, is_real_true, label_is_wrong and noise_cause (the
            cause of each wrong label, "" where the label is right).

    Returns:
        dict with label_noise_rate_real (wrong among real labels), label_noise_rate_bogus
        (wrong among bogus labels), n_wrong_real, n_wrong_bogus and wrong_by_cause_real,
        wrong_by_cause_bogus (counts per cause).
    """
    missing = {"label", "is_real_true", "label_is_wrong", "noise_cause"} - set(params.columns)
    if missing:
        raise ValueError(f"label_noise_summary: params lack truth columns {sorted(missing)}")
    wrong = params["label"].to_numpy() != params["is_real_true"].to_numpy()
    if (wrong != params["label_is_wrong"].astype(bool).to_numpy()).any():
        raise ValueError("label_noise_summary: label_is_wrong disagrees with label != is_real_true")
    out: dict = {}
    for lab, name in ((1, "real"), (0, "bogus")):
        part = params[params["label"] == lab]
        bad = part[part["label_is_wrong"] == 1]
        out[f"label_noise_rate_{name}"] = float(len(bad) / len(part)) if len(part) else None
        out[f"n_wrong_{name}"] = int(len(bad))
        causes = bad["noise_cause"].fillna("").astype(str)
        out[f"wrong_by_cause_{name}"] = {k: int(v) for k, v in causes.value_counts().items()}
    return out


def dataset_summary(train: TrainingSet, test: TestSet | None = None) -> dict:
    """Counts and rates of a training (and test) set, JSON-ready.

    Returns:
        dict with n, labels, counts per object_type, per detector (train); per category and
        label, label-noise rates (`label_noise_summary`, also label_noise_rate_real/_bogus at
        the top level) and NaN-pixel counts when truth columns exist; the same for
        the test set (real, bogus, prevalence).
    """
    p = train.params
    s: dict = {
        "train": {
            "n": len(p),
            "n_detectors": int(p["detector_id"].nunique()),
            "n_label_real": int(p["label"].sum()),
            "n_label_bogus": int((p["label"] == 0).sum()),
            "object_type": {k: int(v) for k, v in p["object_type"].value_counts().items()},
            "nan_pixels": count_nan_pixels(train.images),
            "has_truth": train.has_truth,
        }
    }
    if train.has_truth:
        t = s["train"]
        t["category_by_label"] = {
            f"{c}|{lab}": int(v) for (c, lab), v in p.groupby(["category", "label"]).size().items()
        }
        for lab, name in ((1, "real"), (0, "bogus")):
            part = p[p["label"] == lab]
            t[f"label_noise_{name}"] = float(part["label_is_wrong"].mean()) if len(part) else None
            t[f"n_wrong_{name}"] = int(part["label_is_wrong"].sum())
        causes = p.loc[p["label_is_wrong"] == 1, "noise_cause"].fillna("").astype(str)
        t["wrong_by_cause"] = {k: int(v) for k, v in causes.value_counts().items()}
        t.update(label_noise_summary(p))  # label_noise_rate_real/_bogus, causes (issue 12)
        for k in ("label_noise_rate_real", "label_noise_rate_bogus"):
            s[k] = t[k]  # top level too: issue 12's checks read them from summary.json
    if test is not None:
        q = test.params
        s["test"] = {
            "n": len(test),
            "n_real": int(test.labels.sum()),
            "n_bogus": int((test.labels == 0).sum()),
            "bogus_per_real": float((test.labels == 0).sum() / max(test.labels.sum(), 1)),
            "nan_pixels": count_nan_pixels(test.images),
            "has_truth": test.has_truth,
        }
        if test.has_truth:
            s["test"]["category"] = {k: int(v) for k, v in q["category"].value_counts().items()}
            s["test"]["n_label_wrong"] = int(q["label_is_wrong"].sum())
    return s


def write_dataset_summary(path, train: TrainingSet, test: TestSet | None = None, **run) -> dict:
    """`dataset_summary` plus the run's own fields (`run`), written atomically as JSON.

    Returns:
        The summary written.
    """
    summary = {**dataset_summary(train, test), **run}
    write_json_atomic(path, summary, indent=1, default=str)
    return summary
