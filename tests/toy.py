"""Toy cutouts shared by the training and inference tests."""

import jax
import numpy as np
import pandas as pd
from flax import nnx

SMALL = dict(batch_size=32, unlabeled_batch_size=32, eval_batch_size=64, epochs=2, patience=0)


def toy(n, seed, signal=1.5):
    """Cutouts of noise; 'real' ones carry a faint point source in new and sub."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int64)
    x = rng.normal(size=(n, 29, 29, 3)).astype(np.float32)
    x[y == 1, 12:17, 12:17, 1:] += signal
    return x, y


def params_of(model):
    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]


def same_params(m1, m2):
    return all(np.array_equal(a, b) for a, b in zip(params_of(m1), params_of(m2), strict=True))


def scored_candidates(seed=0):
    """Scored candidates with categories and magnitudes: (params, labels, logits)."""
    rng = np.random.default_rng(seed)
    n_real, n_bogus = 300, 900
    labels = np.r_[np.ones(n_real, int), np.zeros(n_bogus, int)]
    mag = np.r_[rng.uniform(15, 20, n_real), np.full(n_bogus, np.nan)]
    mag[5] = np.nan  # a real without magnitude must be reported, not lost
    mag[6] = 25.0  # outside the bins
    cat = np.r_[
        np.where(np.arange(n_real) % 2 == 0, "rand", "galx"),
        rng.choice(["dipole", "cosmic_ray", "hot_pixel"], n_bogus),
    ]
    logits = np.r_[(19 - mag[:n_real]) * 2, rng.normal(-3, 2, n_bogus)]
    logits[5] = 5.0
    params = pd.DataFrame({"category": cat, "mag": mag})
    return params, labels, logits
