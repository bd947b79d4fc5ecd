"""2x2 max-pooling with a fast CPU gradient, shared by the talk's CNN and the paper's ResNet.

`max_pool_2x2` is Keras' MaxPooling2D(2) with 'valid' padding (odd edges dropped), as the
talk's CNN uses it (`rbcore.model`); `max_pool_2x2_same` is the 'same' padding of the paper's
residual network (`rbcore.resnet`), where an odd edge is pooled alone.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _pool_windows(x: jax.Array) -> jax.Array:
    """float32[B, H, W, C] -> float32[B, H//2, 2, W//2, 2, C] (odd edges dropped, as Keras)."""
    b, h, w, c = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, : 2 * h2, : 2 * w2, :].reshape(b, h2, 2, w2, 2, c)


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 max-pool, stride 2, 'VALID' (Keras MaxPooling2D default: floor of odd sizes).

    Notes:
        The gradient is a custom VJP with a mask: the gradient of nnx.max_pool (XLA's
        select-and-scatter) and even of a reshape-and-max ran several times slower on CPU
        (issue 4; benchmarks/bench_training.py). Gradient of a tie: see _max_pool_bwd.
    """
    return _pool_windows(x).max(axis=(2, 4))


def _max_pool_fwd(x):
    y = max_pool_2x2(x)
    return y, (x, y)


def _max_pool_bwd(res, g):
    x, y = res
    b, h, w, c = x.shape
    hit = _pool_windows(x) == y[:, :, None, :, None, :]
    # The first maximal element of each window (row-major) takes the gradient, as in
    # XLA's select-and-scatter and TensorFlow's MaxPoolGrad.
    h00, h01, h10, h11 = (hit[:, :, i, :, j] for i in (0, 1) for j in (0, 1))
    first = (h00, h01 & ~h00, h10 & ~(h00 | h01), h11 & ~(h00 | h01 | h10))
    g00, g01, g10, g11 = (jnp.where(m, g, 0.0) for m in first)
    rows = (jnp.stack([g00, g01], axis=3), jnp.stack([g10, g11], axis=3))
    gx = jnp.stack(rows, axis=2).reshape(b, h // 2 * 2, w // 2 * 2, c)
    return (jnp.pad(gx, ((0, 0), (0, h % 2), (0, w % 2), (0, 0))),)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool_2x2_same(x: jax.Array) -> jax.Array:
    """2x2 max-pool, stride 2, 'SAME': float32[B, H, W, C] -> [B, ceil(H/2), ceil(W/2), C].

    TensorFlow's 'same' pads an odd edge at the end only (pad total max((out-1)*2 + 2 - in,
    0) = 1, of which floor(1/2) = 0 before), with -inf for a max-pool, so the last row and
    column of an odd input form windows of their own (29 -> 15, 15 -> 8).
    """
    _, h, w, _ = x.shape
    x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
    return max_pool_2x2(x)
