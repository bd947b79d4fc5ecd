"""Calibration of the probabilities: reliability, ECE, NLL, Brier, temperature, prior shift.

The talk (Takahashi 2021) thresholds the probability at 0.5; whether that probability means
what it says is measured here: reliability tables and the expected calibration error,
negative log-likelihood and Brier score, temperature scaling fitted on the validation split
(Guo et al. 2017) and the shift of the logits to another prevalence of reals (Saerens et al.
2002). Also the conversions between logits and probabilities used by the evaluation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, special

from rbcore.evaluation.completeness import rate_frame
from rbcore.inference import sigmoid
from rbcore.metrics import _check

__all__ = [
    "sigmoid",
    "logit",
    "reliability_table",
    "expected_calibration_error",
    "nll",
    "brier",
    "fit_temperature",
    "prior_shift",
    "calibration_variants",
    "calibration_summary",
]


def logit(p: float) -> float:
    """log(p / (1 - p)) of a probability threshold in (0, 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability threshold must be in (0, 1), got {p}")
    return float(special.logit(p))


def reliability_table(labels, probs, *, n_bins: int = 10) -> pd.DataFrame:
    """Reliability-diagram data: observed fraction of reals against mean predicted probability.

    Args:
        labels: int[N] 0/1.
        probs: float[N] predicted probability of real.
        n_bins: equal-width probability bins on [0, 1].

    Returns:
        DataFrame, one row per bin: bin_lo, bin_hi, n, k (reals), rate (observed fraction),
        ci_lo, ci_hi (Clopper-Pearson), mean_prob (NaN in empty bins).
    """
    labels, probs = _check(labels, probs, need_both=False)
    if probs.min() < 0 or probs.max() > 1:
        raise ValueError(f"probs must lie in [0, 1], got [{probs.min()}, {probs.max()}]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, probs, side="right") - 1, 0, n_bins - 1)
    n = np.bincount(which, minlength=n_bins)
    k = np.bincount(which, weights=labels, minlength=n_bins).astype(np.int64)
    s = np.bincount(which, weights=probs, minlength=n_bins)
    table = rate_frame(k, n, bin_lo=edges[:-1], bin_hi=edges[1:])
    table["mean_prob"] = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return table


def expected_calibration_error(table: pd.DataFrame) -> float:
    """Sum over bins of (n_bin / N) |observed - predicted| of a `reliability_table`."""
    m = table["n"] > 0
    w = table.loc[m, "n"] / table.loc[m, "n"].sum()
    return float((w * (table.loc[m, "rate"] - table.loc[m, "mean_prob"]).abs()).sum())


def nll(labels, logits) -> float:
    """Mean binary cross-entropy (negative log-likelihood, nats) of logits, overflow-free."""
    labels, logits = _check(labels, logits, need_both=False)
    return float(np.mean(np.logaddexp(0.0, np.where(labels == 1, -logits, logits))))


def brier(labels, probs) -> float:
    """Mean squared error of the predicted probability of real."""
    labels, probs = _check(labels, probs, need_both=False)
    return float(np.mean((probs - labels) ** 2))


def fit_temperature(labels, logits, *, bounds: tuple[float, float] = (1e-2, 1e2)) -> float:
    """Temperature T minimizing the NLL of sigmoid(logits / T) (temperature scaling).

    Args:
        labels: int[N] 0/1 of a validation split (training data, never the test set).
        logits: float[N] the model's logits on it.
        bounds: search range of T.

    Returns:
        T > 0; calibrated probability = sigmoid(logits / T). T > 1 softens overconfident
        outputs. A warning is raised if the optimum sits on a bound.

    Notes:
        Guo et al. (2017), "On Calibration of Modern Neural Networks", Sec. 4.2: one scalar
        fitted on held-out data; it leaves the ranking (AUC, FPR@TPR) and the decision at
        probability 0.5 (logit 0) unchanged, only the probabilities move.
    """
    labels, logits = _check(labels, logits)
    lo, hi = bounds
    if not 0 < lo < hi:
        raise ValueError(f"bounds must satisfy 0 < lo < hi, got {bounds}")
    res = optimize.minimize_scalar(
        lambda log_t: nll(labels, logits / np.exp(log_t)),
        bounds=(np.log(lo), np.log(hi)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    t = float(np.exp(res.x))
    if min(abs(res.x - np.log(lo)), abs(res.x - np.log(hi))) < 1e-3:
        warnings.warn(f"fitted temperature {t:.4g} sits on the bound {bounds}", stacklevel=2)
    return t


def prior_shift(logits, *, train_prior: float, target_prior: float) -> np.ndarray:
    """Logits re-weighted from the training prevalence of reals to a target prevalence.

    Args:
        logits: float[N] logits of a model trained with a fraction `train_prior` of reals.
        train_prior: fraction of reals in the training labels.
        target_prior: fraction of reals where the model is used (e.g. the survey's stream).

    Returns:
        float64[N] logits + log-odds(target_prior) - log-odds(train_prior).

    Notes:
        Bayes' rule with class-conditional likelihoods unchanged (Saerens, Latinne & Decaestecker
        2002, Neural Computation 14, 21, Eq. 2.4): a calibrated classifier trained at one
        prevalence is calibrated at another after this shift. Unlike temperature scaling it
        moves the decision at probability 0.5.
    """
    for name, p in (("train_prior", train_prior), ("target_prior", target_prior)):
        if not 0.0 < p < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {p}")
    return np.asarray(logits, dtype=np.float64) + logit(target_prior) - logit(train_prior)


def calibration_variants(
    logits, *, temperature: float, train_prior: float, target_prior: float
) -> dict[str, np.ndarray]:
    """The logits as scored, temperature-scaled, and temperature-scaled plus prior-shifted.

    Args:
        logits: float[N] test logits.
        temperature: from `fit_temperature` on the validation split.
        train_prior, target_prior: see `prior_shift`.

    Returns:
        {"as scored", "temperature scaled", "temperature + prior shift"} -> float[N] logits.
    """
    z_t = np.asarray(logits, dtype=np.float64) / temperature
    return {
        "as scored": np.asarray(logits),
        "temperature scaled": z_t,
        "temperature + prior shift": prior_shift(
            z_t, train_prior=train_prior, target_prior=target_prior
        ),
    }


def calibration_summary(labels, logits, *, temperature: float = 1.0, n_bins: int = 10) -> dict:
    """NLL, Brier score and ECE of sigmoid(logits / temperature) on (labels, logits)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = sigmoid(z)
    return {
        "temperature": float(temperature),
        "nll": nll(labels, z),
        "brier": brier(labels, p),
        "ece": expected_calibration_error(reliability_table(labels, p, n_bins=n_bins)),
    }
