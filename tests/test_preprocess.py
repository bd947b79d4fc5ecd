"""Min-max normalization per cutout and channel, NaN and flat-channel handling."""

import numpy as np
import pytest

from rbcore.preprocess import as_pixels, count_nan, normalize, normalize_jax


def _raw(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(100, 30, (n, 29, 29, 3)) * rng.uniform(0.1, 50, (n, 1, 1, 3))).astype(
        np.float32
    )


def test_range_and_extremes_per_cutout_and_channel():
    y = normalize(_raw())
    assert y.dtype == np.float32 and y.shape == (6, 29, 29, 3)
    np.testing.assert_allclose(y.min(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(y.max(axis=(1, 2)), 1.0, atol=1e-6)


def test_matches_direct_formula():
    x = _raw(3, seed=1)
    lo = x.min(axis=(1, 2), keepdims=True)
    hi = x.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(normalize(x), (x - lo) / (hi - lo), rtol=1e-5, atol=1e-6)


def test_nan_pixels_become_zero_and_do_not_affect_others():
    x = _raw(2, seed=2)
    ref = normalize(x)
    y = x.copy()
    # Mask pixels that are neither the min nor the max of their channel.
    y[0, 10:13, 10:13, 1] = np.nan
    assert count_nan(y) == 9
    out = normalize(y)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[0, 10:13, 10:13, 1], 0.0)
    keep = np.isfinite(y)
    mm_changed = (np.nanmin(y[0, :, :, 1]) != x[0, :, :, 1].min()) or (
        np.nanmax(y[0, :, :, 1]) != x[0, :, :, 1].max()
    )
    if not mm_changed:
        np.testing.assert_allclose(out[keep], ref[keep], atol=1e-6)


def test_flat_and_all_nan_channels_give_zeros():
    x = _raw(2, seed=3)
    x[0, :, :, 2] = 7.0
    x[1, :, :, 0] = np.nan
    out = normalize(x)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[0, :, :, 2], 0.0)
    np.testing.assert_array_equal(out[1, :, :, 0], 0.0)


def test_input_not_modified_and_inf_rejected():
    x = _raw(1)
    x[0, 0, 0, 0] = np.nan
    before = x.copy()
    normalize(x)
    np.testing.assert_array_equal(x, before)
    x[0, 1, 1, 1] = np.inf
    with pytest.raises(ValueError, match="inf"):
        normalize(x)
    with pytest.raises(ValueError, match="shape"):
        normalize(np.zeros(5))


def test_jax_version_agrees():
    x = _raw(4, seed=4)
    x[1, 3:6, 3:6, 0] = np.nan
    x[2, :, :, 1] = 3.0
    np.testing.assert_allclose(np.asarray(normalize_jax(x)), normalize(x), atol=1e-6)


def test_pixel_rule_nan_masked_inf_and_float32_overflow_are_errors():
    x = _raw(4).astype(np.float64)
    x[1, 2, 3, 0] = np.nan
    out = as_pixels(x)
    assert out.dtype == np.float32 and np.isnan(out[1, 2, 3, 0])
    big = x.copy()
    big[2, 0, 0, 1] = 1e39  # finite in float64, inf in float32
    with pytest.raises(
        ValueError, match=r"^f.npy: triplet 2: pixel value 1e\+39 is beyond float32"
    ):
        as_pixels(big, lambda row: f"f.npy: triplet {row}")
    for dtype in (np.float32, np.float64):
        inf = x.astype(dtype)
        inf[3, 5, 5, 2] = -np.inf
        with pytest.raises(ValueError, match=r"^triplet 3 has infinite pixels"):
            as_pixels(inf)
