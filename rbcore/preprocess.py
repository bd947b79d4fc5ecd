"""Input normalization of cutout triplets, as in the paper's code (Takahashi et al. 2022).

Each cutout and each channel (ref, new, sub) is scaled independently to [0, 1] by its own
minimum and maximum. Real cutouts carry masked pixels as NaN (ZTF marks ~1.4 % of pixels;
Tomo-e masks saturated and bad pixels): the min and max are taken over the finite pixels,
and NaN pixels then become 0.0, the value of the channel minimum, so that a masked region
looks like the darkest pixel rather than a bright artifact. A flat channel (max == min, or
no finite pixel at all) becomes all zeros instead of dividing by zero.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def normalize(images: np.ndarray) -> np.ndarray:
    """Min-max normalize cutouts per cutout and per channel to [0, 1] (NumPy).

    Args:
        images: float[..., H, W, C] raw pixel values; NaN marks masked pixels; +-inf is an error.

    Returns:
        float32[..., H, W, C] in [0, 1]; NaN pixels -> 0.0; flat channels -> 0.0.

    Notes:
        Per-cutout, per-channel min-max as in Takahashi et al. (2022)'s code.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim < 3:
        raise ValueError(f"normalize expects images of shape [..., H, W, C], got {x.shape}")
    if np.isinf(x).any():
        raise ValueError("normalize: images contain +-inf; masked pixels must be NaN")
    finite = np.isfinite(x)
    lo = np.min(np.where(finite, x, np.inf), axis=(-3, -2), keepdims=True)
    hi = np.max(np.where(finite, x, -np.inf), axis=(-3, -2), keepdims=True)
    span = hi - lo
    ok = np.isfinite(span) & (span > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (x - lo) / np.where(ok, span, 1.0)
    out = np.where(finite & ok, out, 0.0)
    return out.astype(np.float32)


def normalize_jax(x):
    """`normalize` in jax.numpy (jittable, for the accelerator); same semantics.

    Args:
        x: float32[B, H, W, C].

    Returns:
        float32[B, H, W, C] in [0, 1].
    """
    x = jnp.asarray(x, jnp.float32)
    finite = jnp.isfinite(x)
    lo = jnp.min(jnp.where(finite, x, jnp.inf), axis=(-3, -2), keepdims=True)
    hi = jnp.max(jnp.where(finite, x, -jnp.inf), axis=(-3, -2), keepdims=True)
    span = hi - lo
    ok = jnp.isfinite(span) & (span > 0)
    out = (jnp.where(finite, x, 0.0) - jnp.where(ok, lo, 0.0)) / jnp.where(ok, span, 1.0)
    return jnp.where(finite & ok, out, 0.0)


def count_nan(images: np.ndarray) -> int:
    """Number of NaN (masked) pixels in `images`."""
    return int(np.isnan(np.asarray(images)).sum())
