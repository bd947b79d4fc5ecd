"""braai as the judge of the simulated ZTF-like survey, and as a peer on the real alerts.

braai (`rbcore.ztf.braai`) was trained by others on human-labelled real ZTF cutouts, so its
verdicts on simulated cutouts say where the simulator's classes look unlike real ones: a
simulated bogus class it calls real far more often than its published 2.9 % false-positive
rate, or simulated reals it rejects far more than its 1.1 % false-negative rate (threshold
0.5; Duev et al. 2019, MNRAS 489, 3582; shared braai README). It is a measurement, never a
loss: no simulator parameter is fitted to its scores.

`simulate_for_braai` renders the ZTF-like survey on braai's native grid (63x63 at 1.01"/px,
`rbcore.ztf.simulated.simulate_ztf_stamps`: the same scene, noise and pipeline as the
training set, only a larger stamp); `braai_on_simulation` summarizes braai's scores per
simulated category and its FNR/FPR against the simulator's truth in ZTF's labelling;
`strongest_misses` picks the gallery of the largest disagreements. `braai_peer_report`
scores the held-out real alerts with a braai version, as a peer of our models in notebook
06's transfer table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rbcore.ztf.alerts import agreement_with_drb
from rbcore.ztf.braai import BRAAI_SIZE, Braai, braai_inputs, braai_logits

# braai's published rates at its threshold 0.5 on its labelled test set (Duev et al. 2019;
# shared braai README, from braai's `doc/fig-perf_d6_m7.png`).
PUBLISHED_FNR = 0.011
PUBLISHED_FPR = 0.029
BRAAI_THRESHOLD = 0.5  # braai's decision threshold (Duev et al. 2019)


def simulate_for_braai(n: int, *, seed: int, n_threads: int = 1) -> tuple[np.ndarray, pd.DataFrame]:
    """`n` ZTF-like candidates as 63x63 stamps at 1.01"/px (braai's grid), ZTF labels.

    Returns:
        stamps float32[n, 63, 63, 3] (ref, new, sub) and the table of
        `rbcore.ztf.simulated.simulate_ztf_stamps` (`category`, `is_real_true` in ZTF's scheme).
    """
    from rbcore.ztf.simulated import simulate_ztf_stamps

    return simulate_ztf_stamps(n, seed=seed, stamp_size=BRAAI_SIZE, n_threads=n_threads)


def braai_on_simulation(scores, table: pd.DataFrame, *, threshold: float = BRAAI_THRESHOLD) -> dict:
    """braai's verdicts on simulated candidates, per category and overall.

    Args:
        scores: float[N] braai probabilities (`braai_scores`).
        table: N rows with `category` and `is_real_true` (1 = real in ZTF's labelling).
        threshold: braai's decision threshold.

    Returns:
        {category: {"n", "mean_score", "pass_rate", "truth_real"}, ..., "fnr" (share of
        simulated reals with score < threshold), "fpr" (share of simulated bogus with score
        >= threshold), "n_real", "n_bogus", "threshold", "published": {"fnr", "fpr"}}.
        `truth_real` is the share of the category that is real in ZTF's labelling.
    """
    s = np.asarray(scores, np.float64)
    if s.shape != (len(table),) or not np.isfinite(s).all():
        raise ValueError(f"scores must be {len(table)} finite values, got shape {s.shape}")
    real = table["is_real_true"].to_numpy() == 1
    passed = s >= threshold
    out: dict = {}
    for cat, idx in table.groupby("category").indices.items():
        out[str(cat)] = {
            "n": int(len(idx)),
            "mean_score": float(s[idx].mean()),
            "pass_rate": float(passed[idx].mean()),
            "truth_real": float(real[idx].mean()),
        }
    out.update(
        fnr=float((~passed[real]).mean()) if real.any() else None,
        fpr=float(passed[~real].mean()) if (~real).any() else None,
        n_real=int(real.sum()),
        n_bogus=int((~real).sum()),
        threshold=float(threshold),
        published={"fnr": PUBLISHED_FNR, "fpr": PUBLISHED_FPR},
    )
    return out


def category_table(summary: dict) -> pd.DataFrame:
    """The per-category part of `braai_on_simulation` as a table (bogus classes first)."""
    rows = {k: v for k, v in summary.items() if isinstance(v, dict) and "pass_rate" in v}
    frame = pd.DataFrame(rows).T[["n", "truth_real", "mean_score", "pass_rate"]]
    frame["n"] = frame["n"].astype(int)
    return frame.sort_values(["truth_real", "pass_rate"], ascending=[True, False])


def strongest_misses(scores, truth_real, *, real: bool, k: int) -> np.ndarray:
    """Indices of the k simulated candidates where braai and the truth disagree most.

    Args:
        scores: float[N] braai probabilities. truth_real: int/bool[N] (ZTF's labelling).
        real: True -> simulated reals braai rejects (score < 0.5), lowest score first;
            False -> simulated bogus braai accepts (score >= 0.5), highest first.
        k: at most this many.
    """
    s = np.asarray(scores, np.float64)
    t = np.asarray(truth_real).astype(bool)
    if real:
        idx = np.flatnonzero(t & (s < BRAAI_THRESHOLD))
        return idx[np.argsort(s[idx], kind="stable")][:k]
    idx = np.flatnonzero(~t & (s >= BRAAI_THRESHOLD))
    return idx[np.argsort(-s[idx], kind="stable")][:k]


def load_stamps(alerts_path) -> tuple[np.ndarray, np.ndarray | None]:
    """The raw 63x63 stamps of an alert file (ref, new, sub) and its `padded` flags."""
    with np.load(alerts_path, allow_pickle=False) as d:
        images = d["images"]
        padded = d["padded"] if "padded" in d.files else None
    if images.shape[1:] != (BRAAI_SIZE, BRAAI_SIZE, 3):
        raise ValueError(f"{alerts_path}: braai needs 63x63 stamps, got {images.shape[1:]}")
    return images, padded


def braai_peer_report(
    braai: Braai, stamps, padded, drb, weak, *, n_boot: int = 1000, seed: int = 0
) -> tuple[dict, np.ndarray]:
    """braai on (held-out) real alerts, measured as our models are (`agreement_with_drb`).

    Args:
        braai: a loaded braai version. stamps: float[N, 63, 63, 3] raw alert stamps;
        padded: bool[N] or None. drb, weak: float[N], int[N] of the same alerts.
        n_boot, seed: bootstrap of the AUC interval.

    Returns:
        (summary in `rbcore.ztf.compare`'s row format, float32[N] logits). braai's own
        threshold 0.5 is its registration threshold.
    """
    from rbcore.ztf.compare import _summary

    logits = braai_logits(braai, braai_inputs(stamps, version=braai.version, padded=padded))
    a = agreement_with_drb(logits, drb, weak, threshold=BRAAI_THRESHOLD, n_boot=n_boot, seed=seed)
    return _summary(a), logits


def braai_missing(weights_dir) -> str:
    """ "" when both braai versions' weights are in `weights_dir`, else one line saying why."""
    from rbcore.ztf.braai import weights_path

    try:
        for version in ("d6_m7", "d6_m9"):
            weights_path(weights_dir, version)
    except FileNotFoundError as err:
        return f"braai skipped: {err} (the shared folder ../shared/data/braai holds them)"
    return ""
