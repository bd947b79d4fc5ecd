"""Who is what, and how the pipeline labels it: the candidate mix and injection matching.

`bogus_probabilities` and `plan_rows` decide each row's class (the talk's look-alike rates in
the test set and the stream); `match_injections` labels the injected stars as a real
injection pipeline does, by matching detections to injected positions, so that label noise
comes out of the scene instead of being drawn at a rate (issue 12; benchmarks/CALIBRATION.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rbcore.simulation.config import (
    BOGUS_CATEGORIES,
    NEIGHBOUR_CLASSES,
    SurveyConfig,
)

INJECTION_CATEGORIES = ("rand", "galx")
# Causes of a wrong label (column noise_cause; "" where the label is right). Real labels:
# a neighbour class (NEIGHBOUR_CLASSES) that outshines or hides the injection, "undetected"
# (too faint, no neighbour), "noise_peak" (a noise fluctuation dominates the matched peak),
# "host_core" (the host's core residual dominates, galx). Bogus labels: "astrophysical" (a
# variable or supernova of the sample), "unmatched_injection" (an injection detected beyond
# the matching radius).
WRONG_LABEL_CAUSES = (
    *NEIGHBOUR_CLASSES,
    "undetected",
    "noise_peak",
    "host_core",
    "astrophysical",
    "unmatched_injection",
)


def bogus_probabilities(cfg: SurveyConfig, kind: str) -> np.ndarray:
    """Probability of each BOGUS_CATEGORIES class among a kind's bogus candidates.

    Training: `bogus_mix` normalized. Test and stream: the look-alike classes at their fixed
    `lookalike_rates` (the talk's week), the others share the rest as in `bogus_mix`.
    """
    mix = np.array([cfg.bogus_mix.get(c, 0.0) for c in BOGUS_CATEGORIES], float)
    if kind == "train":
        return mix / mix.sum()
    fixed = np.array([c in cfg.lookalike_rates for c in BOGUS_CATEGORIES])
    rates = np.array([cfg.lookalike_rates.get(c, 0.0) for c in BOGUS_CATEGORIES])
    rest = np.where(fixed, 0.0, mix)
    return np.where(fixed, rates, rest / rest.sum() * (1 - rates.sum()))


def plan_rows(rng, n, kind, cfg, boost, real_fraction):
    """Category, object_type, wrong-label cause, label, weight and neighbour of each row.

    Training rows get their final labels later from the matching (`match_injections`);
    here only the astrophysical sources of the bogus sample are placed.
    """
    mix = bogus_probabilities(cfg, kind)
    none = np.full(n, "", dtype=object)
    if kind == "stream":
        p_sn, p_var = cfg.stream_sn_rate, cfg.stream_variable_rate
        p = np.concatenate(
            [
                mix * (1 - p_sn - p_var),
                [p_sn * (1 - cfg.sn_hostless_fraction), p_sn * cfg.sn_hostless_fraction, p_var],
            ]
        )
        q = p * np.concatenate([np.ones(len(mix)), np.full(3, boost)])
        q = q / q.sum()
        cats = np.array(
            list(BOGUS_CATEGORIES) + ["sn_host", "sn_hostless", "variable_star"], dtype=object
        )
        k = rng.choice(len(q), size=n, p=q)
        cat = cats[k]
        label = np.isin(cat, ("sn_host", "sn_hostless", "variable_star")).astype(np.int8)
        otype = np.where(label == 1, "transient", "artifact").astype(object)
        w = np.divide(p, q, out=np.ones_like(p), where=q > 0)  # a class of rate 0: never drawn
        return cat, otype, none, label, w[k], none.copy()
    frac = (
        (0.5 if kind == "train" else cfg.test_real_per_bogus / (1 + cfg.test_real_per_bogus))
        if real_fraction is None
        else real_fraction
    )
    is_real = rng.uniform(size=n) < frac
    cat = np.array(BOGUS_CATEGORIES, dtype=object)[rng.choice(len(mix), size=n, p=mix)]
    otype = np.full(n, "artifact", dtype=object)
    cause = np.full(n, "", dtype=object)
    neighbour = np.full(n, "", dtype=object)
    if kind == "test":
        hostless = rng.uniform(size=n) < cfg.sn_hostless_fraction
        cat[is_real] = np.where(hostless, "sn_hostless", "sn_host")[is_real]
        otype[is_real] = "transient"
    else:
        galx = rng.uniform(size=n) < cfg.real_galx_fraction
        cat[is_real] = np.where(galx, "galx", "rand")[is_real]
        otype[is_real] = np.where(galx, "galx_artificial_real", "rand_artificial_real")[is_real]
        # what each injection lands on or next to (within the matching radius)
        share = np.array([cfg.neighbour_share.get(c, 0.0) for c in NEIGHBOUR_CLASSES])
        nb = np.array((*NEIGHBOUR_CLASSES, ""), dtype=object)[
            rng.choice(len(share) + 1, size=n, p=np.append(share, 1 - share.sum()))
        ]
        neighbour[is_real] = nb[is_real]
        # astrophysical sources among the unmatched detections (the bogus sample)
        astro = ~is_real & (rng.uniform(size=n) < cfg.train_astro_fraction)
        sn = np.where(rng.uniform(size=n) < cfg.sn_hostless_fraction, "sn_hostless", "sn_host")
        bc = np.where(rng.choice(2, size=n, p=cfg.bogus_noise_causes) == 0, "variable_star", sn)
        if cfg.variable_fading_share > 0:  # drawn only then: Tomo-e's stream is unchanged
            fade = rng.uniform(size=n) < cfg.variable_fading_share
            bc = np.where((bc == "variable_star") & fade, "variable_fading", bc)
        cat[astro] = bc[astro]
        cause[astro] = "astrophysical"
    return cat, otype, cause, is_real.astype(np.int8), np.ones(n), neighbour


def match_injections(table: pd.DataFrame, images: np.ndarray, cfg: SurveyConfig) -> None:
    """Label the injections as the pipeline's matching does; set truth and causes in place.

    An injection is what its cutout shows (is_real_true = 1) when its own point-source S/N is
    at least half the matched peak's (or of the threshold, if undetected) and its centre is
    not masked in new. The pipeline labels the detection within `match_radius` of the
    injected position real, whatever it shows (undetected injections: the catalogue
    position); a detection beyond the radius is unmatched and joins the bogus sample.
    """
    inj = table["category"].isin(INJECTION_CATEGORIES).to_numpy()
    if not inj.any():
        return
    t = table.loc[inj]
    c = cfg.cutout_size // 2
    own = np.nan_to_num(t["snr"].to_numpy(float))
    det = t["det_snr"].to_numpy(float)
    detected = t["detected"].to_numpy(bool)
    masked = np.isnan(images[inj, c, c, 1])
    visible = (own >= 0.5 * np.maximum(det, cfg.detection_threshold)) & ~masked
    dist = np.hypot(
        t["peak_dx"].to_numpy(float) - t["src_dx"].to_numpy(float),
        t["peak_dy"].to_numpy(float) - t["src_dy"].to_numpy(float),
    )
    matched = ~detected | (dist <= cfg.match_radius)
    nb = t["neighbour"].to_numpy(object)
    why = np.where(
        nb != "",
        nb,
        np.where(
            masked,
            "masked_new",
            np.where(
                ~detected,
                "undetected",
                np.where(t["category"].to_numpy(object) == "galx", "host_core", "noise_peak"),
            ),
        ),
    )
    label = matched.astype(np.int8)
    cause = np.where(
        matched & ~visible, why, np.where(~matched & visible, "unmatched_injection", "")
    )
    table.loc[inj, "is_real_true"] = visible.astype(np.int8)
    table.loc[inj, "label"] = label
    table.loc[inj, "noise_cause"] = cause.astype(object)
    table.loc[inj, "match_dist"] = np.where(detected, dist, np.nan)
