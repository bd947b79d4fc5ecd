"""Input normalization of cutout triplets, as in the paper's code (Takahashi et al. 2022).

Each cutout and each channel (ref, new, sub) is scaled independently to [0, 1] by its own
minimum and maximum. Real cutouts carry masked pixels as NaN (ZTF marks ~1.4 % of pixels;
Tomo-e masks saturated and bad pixels): the min and max are taken over the finite pixels,
and NaN pixels then become 0.0, the value of the channel minimum, so that a masked region
looks like the darkest pixel rather than a bright artifact. A flat channel (max == min, or
no finite pixel at all) becomes all zeros instead of dividing by zero.

One rule for pixel values, everywhere cutouts enter (the command-line scorer, training and
every inference pass, through `as_pixels`): NaN means masked; +-inf is an error naming the
file and triplet; so is a finite value beyond float32's range (it would become inf).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)


def as_pixels(x, where=None) -> np.ndarray:
    """`x` as float32 pixels, refusing values that are not pixels (the one rule, see above).

    Args:
        x: float[N, ...] cutouts (any float or integer dtype).
        where: callable row -> str naming a row of `x` for the message (a file and triplet);
            default "triplet <row>".

    Returns:
        float32 array of `x` (no copy when `x` is already float32).

    Raises:
        ValueError: a +-inf pixel, or a finite one beyond float32's range, naming the row.
    """
    x = np.asarray(x)
    where = where or (lambda row: f"triplet {row}")
    if x.dtype.itemsize > 4 or x.dtype.kind not in "f":
        with np.errstate(invalid="ignore"):
            big = np.abs(x) > FLOAT32_MAX  # inf too; NaN compares False
        if big.any():
            pos = np.unravel_index(int(np.argmax(big)), x.shape)
            value = x[pos]
            if np.isfinite(value):
                raise ValueError(
                    f"{where(int(pos[0]))}: pixel value {value:.6g} is beyond float32's range "
                    f"(+-{FLOAT32_MAX:.4g})"
                )
        x = x.astype(np.float32)
    inf = np.isinf(x)
    if inf.any():
        pos = np.unravel_index(int(np.argmax(inf)), x.shape)
        raise ValueError(f"{where(int(pos[0]))} has infinite pixels ({x[pos]}); masked = NaN")
    return x


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
    b, h, w, c = x.shape
    # Pixels in one axis: XLA:CPU reduces [B, H*W, C] over axis 1 about 1.5x faster than
    # [B, H, W, C] over two axes (same values; issue "every stage near the compute bound").
    flat = x.reshape(b, h * w, c)
    finite = jnp.isfinite(flat)
    lo = jnp.min(jnp.where(finite, flat, jnp.inf), axis=1, keepdims=True)
    hi = jnp.max(jnp.where(finite, flat, -jnp.inf), axis=1, keepdims=True)
    span = hi - lo
    ok = jnp.isfinite(span) & (span > 0)
    out = (jnp.where(finite, flat, 0.0) - jnp.where(ok, lo, 0.0)) / jnp.where(ok, span, 1.0)
    return jnp.where(finite & ok, out, 0.0).reshape(b, h, w, c)


def count_nan(images: np.ndarray) -> int:
    """Number of NaN (masked) pixels in `images`."""
    return int(np.isnan(np.asarray(images)).sum())
