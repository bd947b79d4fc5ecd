"""Vectorized rendering for the survey simulator: PSFs and galaxies as Gaussian mixtures.

Every source in a patch is a mixture of Gaussians (MoG): a Moffat PSF is a 3-component MoG,
a Sérsic galaxy is a 4-component MoG (Hogg & Lang 2013, PASP 125, 719), so a convolution
(seeing, PSF matching) is exact and cheap: variances add. Circular components are separable,
``image = Gy^T diag(a) Gx``, one small batched matrix product per patch; elliptical galaxy
components are evaluated directly. Pixel integration is approximated by adding 1/12 px^2 to
each variance (the variance of a unit box).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import optimize, special

PIXEL_VAR = 1.0 / 12.0  # variance of a uniform 1-pixel box: pixel integration of a Gaussian
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))  # Gaussian FWHM / sigma = 2.3548

BETA_GRID = np.round(np.arange(2.5, 4.51, 0.25), 2)  # Moffat betas with precomputed MoG fits
SERSIC_GRID = np.array([0.7, 1.0, 1.5, 2.0, 3.0, 4.0])  # Sérsic indices with MoG fits


def _exp(arg: np.ndarray) -> np.ndarray:
    """exp(arg) with arg floored at -40 (e^-40 = 4e-18): tiny Gaussian tails would otherwise
    be float32 subnormals, which make BLAS matrix products ~15x slower."""
    return np.exp(np.maximum(arg, np.float32(-40.0)))


def _fit_mog(radius, profile, n_comp, init_sigma):
    """Least-squares MoG fit (flux-weighted) of a circular unit-flux profile I(r)."""
    w_r = np.sqrt(2 * np.pi * radius * np.gradient(radius))  # weight by annulus area

    def model(p):
        a, s = np.exp(p[:n_comp]), np.exp(p[n_comp:])
        g = np.exp(-0.5 * (radius[:, None] / s) ** 2) / (2 * np.pi * s**2)
        return g @ a

    p0 = np.concatenate([np.log(np.full(n_comp, 1.0 / n_comp)), np.log(init_sigma)])
    res = optimize.least_squares(lambda p: w_r * (model(p) - profile), p0, method="lm")
    a, s = np.exp(res.x[:n_comp]), np.exp(res.x[n_comp:])
    order = np.argsort(s)
    return (a / a.sum())[order], s[order]


@functools.cache
def moffat_mog_table() -> tuple[np.ndarray, np.ndarray]:
    """3-Gaussian fits of unit-FWHM Moffat profiles on `BETA_GRID`.

    Returns:
        weights: float64[len(BETA_GRID), 3] (sum 1); sigmas: float64[len(BETA_GRID), 3] in
        units of the FWHM.

    Notes:
        Moffat (1969): I(r) ∝ (1 + r^2/alpha^2)^-beta, FWHM = 2 alpha sqrt(2^(1/beta) - 1).
    """
    r = np.linspace(1e-3, 6.0, 600)
    ws, ss = [], []
    for beta in BETA_GRID:
        alpha = 0.5 / np.sqrt(2 ** (1 / beta) - 1)
        prof = (beta - 1) / (np.pi * alpha**2) * (1 + (r / alpha) ** 2) ** (-beta)
        w, s = _fit_mog(r, prof, 3, np.array([0.3, 0.5, 1.2]))
        ws.append(w)
        ss.append(s)
    return np.array(ws), np.array(ss)


@functools.cache
def sersic_mog_table() -> tuple[np.ndarray, np.ndarray]:
    """4-Gaussian fits of unit-flux Sérsic profiles with r_e = 1 on `SERSIC_GRID`.

    Returns:
        weights: float64[len(SERSIC_GRID), 4]; sigmas: float64[len(SERSIC_GRID), 4] in r_e.

    Notes:
        Sérsic (1963) I(r) ∝ exp(-b_n (r^(1/n) - 1)), b_n from gammaincinv(2n, 0.5)
        (Ciotti & Bertin 1999); MoG approximation after Hogg & Lang (2013).
    """
    r = np.geomspace(1e-3, 8.0, 800)
    ws, ss = [], []
    for n in SERSIC_GRID:
        b = special.gammaincinv(2 * n, 0.5)
        prof = np.exp(-b * (r ** (1 / n) - 1))
        prof /= np.sum(prof * 2 * np.pi * r * np.gradient(r))
        w, s = _fit_mog(r, prof, 4, np.array([0.05, 0.2, 0.6, 1.5]))
        ws.append(w)
        ss.append(s)
    return np.array(ws), np.array(ss)


def moffat_components(fwhm_pix: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MoG of Moffat PSFs with the nearest tabulated beta.

    Args:
        fwhm_pix: float[n] PSF FWHM in pixels.
        beta: float[n] Moffat beta.

    Returns:
        weights float32[n, 3], sigmas float32[n, 3] in pixels.
    """
    w_tab, s_tab = moffat_mog_table()
    i = np.abs(np.asarray(beta)[:, None] - BETA_GRID[None]).argmin(1)
    return w_tab[i].astype(np.float32), (s_tab[i] * np.asarray(fwhm_pix)[:, None]).astype(
        np.float32
    )


def psf_sum_sq(weights: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Integral of PSF^2 for a circular MoG PSF (1/NEA, the noise-equivalent area).

    Args:
        weights, sigmas: float[n, J] (sigmas in pixels, pixel variance added inside).

    Returns:
        float64[n] = sum_ij w_i w_j / (2 pi (s_i^2 + s_j^2)).
    """
    v = sigmas.astype(np.float64) ** 2 + PIXEL_VAR
    w = weights.astype(np.float64)
    return np.einsum("ni,nj,nij->n", w, w, 1.0 / (2 * np.pi * (v[:, :, None] + v[:, None, :])))


def render_points(x, y, flux, psf_w, psf_s, size: int) -> np.ndarray:
    """Render circular point sources convolved with per-patch circular MoG PSFs.

    Args:
        x, y: float[n, S] positions in pixels (pixel centres at 0..size-1).
        flux: float[n, S] total fluxes (0 for empty slots).
        psf_w, psf_s: float[n, J] PSF weights and sigmas (pixels).
        size: patch side G.

    Returns:
        float32[n, G, G] image, rows = y, columns = x.
    """
    n, s = flux.shape
    j = psf_w.shape[1]
    grid = np.arange(size, dtype=np.float32)
    var = (psf_s.astype(np.float32) ** 2 + PIXEL_VAR)[:, None, :]  # [n, 1, J]
    inv = (-0.5 / var)[..., None]
    norm = 1.0 / (2 * np.pi * var)
    amp = (
        flux.astype(np.float32)[:, :, None] * psf_w.astype(np.float32)[:, None, :] * norm
    ).reshape(n, s * j)
    gx = _exp(inv * (grid - x.astype(np.float32)[:, :, None, None]) ** 2).reshape(n, s * j, size)
    gy = _exp(inv * (grid - y.astype(np.float32)[:, :, None, None]) ** 2).reshape(n, s * j, size)
    # a contiguous left operand keeps numpy's matmul on BLAS (a strided one is ~10x slower)
    return np.matmul(np.ascontiguousarray((gy * amp[:, :, None]).transpose(0, 2, 1)), gx)


def render_gaussians2d(x0, y0, amp, cxx, cxy, cyy, size: int) -> np.ndarray:
    """Render general (elliptical) 2-D Gaussians, M per patch.

    Args:
        x0, y0: float[n] centres; amp: float[n, M] fluxes; cxx, cxy, cyy: float[n, M]
            covariance entries (pixels^2, pixel variance added inside).
        size: patch side G.

    Returns:
        float32[n, G, G].
    """
    grid = np.arange(size, dtype=np.float32)
    dx = (grid[None, :] - np.asarray(x0, np.float32)[:, None])[:, None, None, :]  # [n,1,1,G]
    dy = (grid[None, :] - np.asarray(y0, np.float32)[:, None])[:, None, :, None]  # [n,1,G,1]
    a, b, c = (np.asarray(v, np.float32) for v in (cxx + PIXEL_VAR, cxy, cyy + PIXEL_VAR))
    det = a * c - b * b
    ia, ib, ic = c / det, -b / det, a / det
    q = (
        ia[..., None, None] * dx**2
        + 2 * ib[..., None, None] * dx * dy
        + ic[..., None, None] * dy**2
    )
    g = _exp(-0.5 * q) * (amp / (2 * np.pi * np.sqrt(det)))[..., None, None]
    return g.sum(axis=1, dtype=np.float32)


def galaxy_covariances(re_pix, q, theta, sersic_idx, psf_sigma2):
    """Covariances of a Sérsic galaxy MoG convolved with a Gaussian PSF term.

    Args:
        re_pix, q, theta: float[n] half-light radius (pixels), axis ratio, position angle.
        sersic_idx: int[n] index into `SERSIC_GRID`.
        psf_sigma2: float[n] PSF variance (pixels^2) added to each component.

    Returns:
        weights float32[n, 4], cxx, cxy, cyy float32[n, 4].
    """
    w_tab, s_tab = sersic_mog_table()
    w = w_tab[sersic_idx]
    s2 = (s_tab[sersic_idx] * re_pix[:, None]) ** 2  # major-axis variance
    q2 = (q**2)[:, None]
    ct, st = np.cos(theta)[:, None], np.sin(theta)[:, None]
    cxx = s2 * (ct**2 + q2 * st**2) + psf_sigma2[:, None]
    cyy = s2 * (st**2 + q2 * ct**2) + psf_sigma2[:, None]
    cxy = s2 * (1 - q2) * ct * st
    return tuple(v.astype(np.float32) for v in (w, cxx, cxy, cyy))


def gaussian_rows(centres: np.ndarray, sigma: np.ndarray, size: int) -> np.ndarray:
    """Rows of Gaussian weights: float32[n, len(centres), size] (unnormalized)."""
    grid = np.arange(size, dtype=np.float32)
    d = grid[None, None, :] - centres[None, :, None].astype(np.float32)
    return _exp(-0.5 * d**2 / (sigma.astype(np.float32)[:, None, None] ** 2 + PIXEL_VAR))


def convolve_mog(img: np.ndarray, weights: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Convolve each patch with its own circular MoG kernel (separable matrix products).

    Args:
        img: float32[n, G, G]; weights, sigmas: float[n, J] kernel components (pixels).

    Returns:
        float32[n, G, G] (zero padding outside the patch).
    """
    g = img.shape[1]
    out = np.zeros_like(img, dtype=np.float32)
    grid = np.arange(g, dtype=np.float32)
    d2 = (grid[:, None] - grid[None, :]) ** 2
    for j in range(weights.shape[1]):
        var = (sigmas[:, j].astype(np.float32) ** 2 + PIXEL_VAR)[:, None, None]
        a = _exp(-0.5 * d2[None] / var) / np.sqrt(2 * np.pi * var)  # [n, G, G], symmetric
        out += weights[:, j].astype(np.float32)[:, None, None] * (a @ img @ a)
    return out


def detection_snr(
    sub: np.ndarray, var: np.ndarray, psf_sigma: np.ndarray, radius: int
) -> np.ndarray:
    """Matched-filter S/N of sub in the central (2r+1)^2 window.

    Args:
        sub: float32[n, G, G] difference image (NaN = masked, ignored).
        var: float32[n, G, G] per-pixel variance of sub.
        psf_sigma: float[n] Gaussian-equivalent PSF sigma (pixels) of the filter.
        radius: search radius r.

    Returns:
        float32[n, 2r+1, 2r+1] S/N = sum(k sub) / sqrt(sum(k^2 var)).

    Notes:
        The PSF-filtered image is the optimal point-source detector in white noise
        (e.g. Zackay, Ofek & Gal-Yam 2016, eq. 14's score image for a known PSF).
    """
    g = sub.shape[1]
    c = (g - 1) // 2
    k = gaussian_rows(np.arange(c - radius, c + radius + 1), psf_sigma, g)  # [n, w, G]
    ok = np.isfinite(sub)
    s = np.where(ok, sub, 0.0).astype(np.float32)
    v = np.where(ok, var, 0.0).astype(np.float32)
    num = k @ s @ k.transpose(0, 2, 1)
    k2 = k * k
    den = k2 @ v @ k2.transpose(0, 2, 1)
    return (num / np.sqrt(np.maximum(den, 1e-12))).astype(np.float32)
