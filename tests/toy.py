"""Toy cutouts shared by the training and inference tests."""

import jax
import numpy as np
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
