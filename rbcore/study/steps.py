"""The gain of each step of the decomposition (issue 22): a ratio, its interval, its power.

A step compares two rows of the decomposition (`rbcore.study.decomposition`) by their FPR at
TPR 0.9 on the study's test set. Every row is trained at several seeds; every model is scored
on the same test set, so one set of bootstrap resamples of the test set serves every model
(a paired bootstrap: the resample's luck is shared by the two rows of a step, as it is in
the one test set we have).

The ratio (`step_ratio`): with f_{r,s} the FPR at TPR 0.9 of row r at seed s,

    L = mean_s log f_{a,s} - mean_s log f_{b,s},   ratio = exp(L)

(the geometric means' ratio; > 1: row b has fewer false positives). Its variance has two
parts, added:

    v_test  = the variance of L over the paired bootstrap resamples of the test set
              (L recomputed on each resample from every seed's model),
    v_seed  = var_s(log f_a) / n_a + var_s(log f_b) / n_b   (training luck; sample variances
              over seeds; a row trained at one seed takes the pooled variance of the rows
              with several, our assumption that training luck is a property of the training
              rather than of the row; without any such row v_seed is unknown and no claim
              is made),

    SE = sqrt(v_test + v_seed),   ratio_ci = exp(L -+ z_{0.975} SE)  (normal approximation).

The claims test: a step passes when its 95 % interval excludes 1. The detectable ratio is
the smallest true ratio that this design detects with probability 0.8 at that level:

    detectable_ratio = exp((z_{0.975} + z_{0.8}) SE) = exp(2.80 SE)

so that "no difference" reads "no effect larger than the detectable ratio" (the standard
power calculation for a normal test statistic, e.g. Cohen 1988, ch. 12). An FPR of 0 (no
bogus above the threshold) is taken as half a bogus, 0.5 / n_bogus, so the logarithm stays
finite; such a step is marked `floored` (its ratio is bounded by the test size).

An A/A check (`aa_check`) compares one row with itself at two disjoint sets of seeds: it
must not pass the claims test (tests/test_study_decomposition.py checks this on synthetic
scores, and that a real effect of the same design does pass).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = [
    "Z_LEVEL",
    "Z_POWER",
    "fpr_at_tpr_sorted",
    "paired_bootstrap_fpr",
    "pooled_seed_variance",
    "step_ratio",
    "aa_check",
]

Z_LEVEL = float(stats.norm.ppf(0.975))  # two-sided 95 % (the study's intervals)
Z_POWER = float(stats.norm.ppf(0.8))  # power 0.8 for the detectable ratio (convention)


def fpr_at_tpr_sorted(real_scores, bogus_scores, tpr: float = 0.9) -> float:
    """FPR at TPR `tpr`, as `rbcore.metrics.fpr_at_tpr` (ties counted as real), from two arrays.

    The highest threshold reaching `tpr` is the k-th largest real score, k = ceil(tpr * P);
    the FPR is the share of bogus scoring at or above it.
    """
    r = np.sort(np.asarray(real_scores, np.float64))
    b = np.sort(np.asarray(bogus_scores, np.float64))
    k = int(np.ceil(tpr * r.size - 1e-12))
    thr = r[r.size - k]
    return float((b.size - np.searchsorted(b, thr, side="left")) / b.size)


def paired_bootstrap_fpr(labels, logits: dict, *, n_boot: int, seed: int, tpr: float = 0.9) -> dict:
    """FPR at TPR `tpr` of every model on the same `n_boot` stratified resamples of a test set.

    Args:
        labels: int[N] 0/1 of the test set.
        logits: {key: float[N] scores of one model on that test set}.
        n_boot, seed: resamples and their seed.

    Returns:
        {key: float[n_boot]}: resample b draws the same reals and the same bogus for every
        model (reals and bogus resampled separately, keeping their counts).
    """
    y = np.asarray(labels)
    real, bogus = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if real.size == 0 or bogus.size == 0:
        raise ValueError("paired_bootstrap_fpr: the test set needs reals and bogus")
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2, got {n_boot}")
    k = int(np.ceil(tpr * real.size - 1e-12))
    prepared = {}
    for key, z in logits.items():
        z = np.asarray(z, np.float64)
        if z.shape != y.shape:
            raise ValueError(f"logits of {key!r}: shape {z.shape}, expected {y.shape}")
        zr, zb = z[real], z[bogus]
        # Only bogus above a low real quantile can pass a resample's threshold: keep those,
        # sorted, with their positions (the full set is the fallback below).
        floor = np.quantile(zr, max(0.0, 1.0 - tpr - 0.05))
        top = np.flatnonzero(zb >= floor)
        order = top[np.argsort(zb[top])]
        prepared[key] = (zr, zb, order, zb[order], floor)
    rng = np.random.default_rng(seed)
    out = {key: np.empty(n_boot) for key in logits}
    for b in range(n_boot):
        ri = rng.integers(0, real.size, real.size)
        mult = np.bincount(rng.integers(0, bogus.size, bogus.size), minlength=bogus.size)
        for key, (zr, zb, order, sorted_top, floor) in prepared.items():
            thr = np.partition(zr[ri], real.size - k)[real.size - k]
            if thr >= floor:
                start = np.searchsorted(sorted_top, thr, side="left")
                n_fp = mult[order[start:]].sum()
            else:  # a resample far below the floor: count over every bogus
                n_fp = mult[zb >= thr].sum()
            out[key][b] = n_fp / bogus.size
    return out


def _logs(values, n_bogus: int) -> tuple[np.ndarray, bool]:
    v = np.asarray(values, np.float64)
    floor = 0.5 / n_bogus
    return np.log(np.maximum(v, floor)), bool((v < floor).any())


def pooled_seed_variance(seed_values: dict, n_bogus: int) -> float | None:
    """The pooled within-row variance of log FPR over seeds, of the rows with >= 2 seeds.

    Args:
        seed_values: {row: [FPR at each seed]}.

    Returns:
        sum over rows of (n - 1) var / sum over rows of (n - 1); None without such a row.
    """
    num = den = 0.0
    for values in seed_values.values():
        if len(values) > 1:
            logs, _ = _logs(values, n_bogus)
            num += float(np.var(logs, ddof=1)) * (len(values) - 1)
            den += len(values) - 1
    return num / den if den else None


def step_ratio(
    a_seeds, b_seeds, a_boot, b_boot, *, n_bogus: int, pooled_var: float | None = None
) -> dict:
    """The FPR ratio a / b of a step with its 95 % interval and detectable ratio (module doc).

    Args:
        a_seeds, b_seeds: FPR at TPR 0.9 of rows a and b at each of their seeds.
        a_boot, b_boot: float[n_seeds, n_boot] the same models' FPR on the paired resamples
            (`paired_bootstrap_fpr`; resample b the same for every model).
        n_bogus: bogus in the test set (the floor of an FPR of 0).
        pooled_var: the seed variance of log FPR for a row trained at one seed
            (`pooled_seed_variance`); None: unknown.

    Returns:
        {"ratio", "ratio_ci", "log_ratio", "se_log", "se_test", "se_seed",
         "detectable_ratio", "passes", "floored", "n_seeds": [n_a, n_b]}; ratio_ci,
        detectable_ratio and passes are None when the seed variance is unknown.
    """
    la, fa = _logs(a_seeds, n_bogus)
    lb, fb = _logs(b_seeds, n_bogus)
    ba, fba = _logs(a_boot, n_bogus)
    bb, fbb = _logs(b_boot, n_bogus)
    if ba.ndim != 2 or bb.ndim != 2 or ba.shape[1] != bb.shape[1]:
        raise ValueError(
            f"bootstrap arrays must be [n_seeds, n_boot] alike: {ba.shape}, {bb.shape}"
        )
    if ba.shape[0] != la.size or bb.shape[0] != lb.size:
        raise ValueError("one row of bootstrap values per seed is needed")
    log_ratio = float(la.mean() - lb.mean())
    v_test = float(np.var(ba.mean(axis=0) - bb.mean(axis=0), ddof=1))
    parts = []
    for logs in (la, lb):
        var = float(np.var(logs, ddof=1)) if logs.size > 1 else pooled_var
        parts.append(None if var is None else var / logs.size)
    out = {
        "ratio": float(np.exp(log_ratio)),
        "log_ratio": log_ratio,
        "se_test": float(np.sqrt(v_test)),
        "floored": bool(fa or fb or fba or fbb),
        "n_seeds": [int(la.size), int(lb.size)],
    }
    if None in parts:
        return {**out, "ratio_ci": None, "se_seed": None, "se_log": None,
                "detectable_ratio": None, "passes": None}  # fmt: skip
    v_seed = float(sum(parts))
    se = float(np.sqrt(v_test + v_seed))
    lo, hi = np.exp(log_ratio - Z_LEVEL * se), np.exp(log_ratio + Z_LEVEL * se)
    return {
        **out,
        "ratio_ci": [float(lo), float(hi)],
        "se_seed": float(np.sqrt(v_seed)),
        "se_log": se,
        "detectable_ratio": float(np.exp((Z_LEVEL + Z_POWER) * se)),
        "passes": bool(lo > 1.0 or hi < 1.0),
    }


def aa_check(seed_values, boot, *, n_bogus: int) -> dict:
    """The A/A check: one row's seeds split into two disjoint halves, compared as a step.

    Args:
        seed_values: FPR at each of the row's 2m seeds (first half against second half).
        boot: float[2m, n_boot] its models' paired bootstrap FPRs.

    Returns:
        `step_ratio` of the first m seeds against the last m (must not pass).
    """
    v = np.asarray(seed_values, np.float64)
    boot = np.asarray(boot, np.float64)
    if v.size < 4 or v.size % 2:
        raise ValueError(f"aa_check needs an even number >= 4 of seeds, got {v.size}")
    m = v.size // 2
    return step_ratio(v[:m], v[m:], boot[:m], boot[m:], n_bogus=n_bogus)
