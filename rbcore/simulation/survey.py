"""Simulated Tomo-e Gozen transient survey: a vectorized forward model of candidate triplets.

For each candidate a patch of the sky is drawn (field stars from star counts, Sérsic host
galaxies, the category's object: see `rbcore.simulation.scene`), then observed twice:

1. reference: Pan-STARRS1-like, deep and sharp (1.0-1.4" seeing), resampled to 1.19"/pix,
   saturated cores masked (or a Tomo-e stack, `SurveyConfig.reference = "tomoe"`);
2. new: Tomo-e-like, Moffat PSF of 2.5-6" seeing, bright sky, limit ~18 mag, Poisson + read
   noise, per-detector zero point and seeing, saturation;
3. subtraction: the reference is convolved to the *estimated* new PSF, scaled by the
   *estimated* flux ratio and subtracted at the *estimated* registration, so seeing-estimate,
   wing (beta), flux-scale and astrometric errors leave residuals (dipoles, rings);
4. detection: the PSF-filtered sub's peak within +-2 px of the candidate; the 29x29 cutout is
   centred on it. Bogus and real transients are kept only when detected (redrawn otherwise);
   injections are forced in by the catalogue, detected or not;
5. labels (training): the pipeline labels real the detection matching each injected position
   (within `match_radius`), whatever the cutout shows, and bogus every unmatched detection;
   the wrong labels and their causes come out of this matching (`_match_injections`).

Every source is a mixture of Gaussians, so the matching convolution is exact and rendering is
a batched matrix product (`rbcore.simulation.render`). Approximations, stated: Poisson noise
is Gaussian with the Poisson variance (sky >> 100 e-); the reference's own noise after
convolution is neglected in sub (it is ~5 mag deeper); gain 1 e-/count.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from rbcore.simulation import scene
from rbcore.simulation.config import (
    REAL_CATEGORIES,
    SurveyConfig,
)
from rbcore.simulation.labels import (
    INJECTION_CATEGORIES,
    match_injections,
    plan_rows,
)
from rbcore.simulation.render import (
    FWHM_PER_SIGMA,
    convolve_mog,
    detection_snr,
    galaxy_covariances,
    moffat_components,
    psf_sum_sq,
    render_gaussians2d,
    render_points,
)

KINDS = ("train", "test", "stream")
CHUNK = 8192  # rows simulated per independent random stream (results do not depend on threads)
MAX_REDRAWS = 12  # attempts to obtain a detection before keeping an undetected candidate
REF_ZP = 25.0  # PS1 stack zero point (Chambers et al. 2016; Magnier et al. 2020)
MEDIAN_BETA = 3.5  # middle of SurveyConfig.moffat_beta_range
TRUTH_COLUMNS = (
    "mag",
    "snr",
    "det_snr",
    "detected",
    "seeing_new",
    "seeing_ref",
    "beta",
    "m_lim",
    "zp_new",
    "host_mag",
    "peak_dx",
    "peak_dy",
    "src_dx",
    "src_dy",
)


def _survey_constants(cfg: SurveyConfig) -> dict:
    """Derived photometry: zero point from the limiting magnitude, ref noise, saturation."""
    key = repr(cfg)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = _derive_constants(cfg)
    return _CONSTANTS[key]


_CONSTANTS: dict[str, dict] = {}


def _derive_constants(cfg: SurveyConfig) -> dict:
    fwhm = np.array([cfg.seeing_median / cfg.pixel_scale])
    w, s = moffat_components(fwhm, np.array([MEDIAN_BETA]))
    ss = psf_sum_sq(w, s)[0]  # 1 / noise-equivalent area
    pix_area = cfg.pixel_scale**2
    rn_var = cfg.n_frames * cfg.read_noise_e**2
    # Solve F(m_lim) = 5 sqrt(NEA (sky + rn)) for u = 10^(0.4 zp) (F = u 10^(-0.4 m)).
    a, b, nea = 10 ** (-0.4 * cfg.limiting_mag), 10 ** (-0.4 * cfg.sky_mag) * pix_area, 1 / ss
    u = (25 * nea * b + np.sqrt((25 * nea * b) ** 2 + 4 * a * a * 25 * nea * rn_var)) / (2 * a * a)
    zp = 2.5 * np.log10(u)
    peak = 10 ** (-0.4 * (cfg.saturation_mag - zp)) * float(
        (w / (2 * np.pi * (s**2 + 1 / 12))).sum()
    )
    sky_e = 10 ** (-0.4 * (cfg.sky_mag - zp)) * pix_area
    if cfg.reference == "ps1":
        rf = np.array([np.mean(cfg.ref_seeing_range) / cfg.pixel_scale])
        rw, rs = np.ones((1, 1)), rf[:, None] / FWHM_PER_SIGMA
        ref_lim = cfg.ref_limiting_mag
    else:
        rw, rs, ref_lim = w, s, cfg.limiting_mag + cfg.tomoe_ref_depth_gain
    rss = psf_sum_sq(rw, rs)[0]
    sigma_ref = 10 ** (-0.4 * (ref_lim - REF_ZP)) / (5 * np.sqrt(1 / rss))
    ref_sat_mag = cfg.ref_saturation_mag if cfg.reference == "ps1" else cfg.saturation_mag
    ref_peak = 10 ** (-0.4 * (ref_sat_mag - REF_ZP)) * float(
        (rw / (2 * np.pi * (rs**2 + 1 / 12))).sum()
    )
    rng = np.random.default_rng(np.random.SeedSequence([cfg.survey_seed, 0]))
    return {
        "zp": zp,
        "sky_e": sky_e,
        "rn_var": rn_var,
        "sat_level": sky_e + peak,
        "sigma_ref": sigma_ref,
        "ref_sat_level": ref_peak,
        "det_zp": rng.normal(0, cfg.zp_detector_scatter, cfg.n_detectors),
        "det_seeing": np.exp(rng.normal(0, cfg.seeing_detector_scatter, cfg.n_detectors)),
    }


def night_seeing(cfg: SurveyConfig, night: int) -> float:
    """Median seeing (arcsec FWHM) of a night, fixed by the survey seed."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.survey_seed, 1, int(night)]))
    return float(cfg.seeing_median * np.exp(rng.normal(0, cfg.seeing_night_scatter)))


def _conditions(rng, cfg: SurveyConfig, detector_id: np.ndarray, night: int) -> dict:
    """Per-candidate observing conditions and pipeline errors (float64 arrays [m])."""
    k = _survey_constants(cfg)
    m = len(detector_id)
    seeing = (
        night_seeing(cfg, night)
        * k["det_seeing"][detector_id]
        * np.exp(rng.normal(0, cfg.seeing_exposure_scatter, m))
    )
    seeing = np.clip(seeing, cfg.seeing_min, cfg.seeing_max)  # the survey's seeing cut (issue 3)
    beta = rng.uniform(*cfg.moffat_beta_range, m)
    fwhm = seeing / cfg.pixel_scale
    psf_w, psf_s = moffat_components(fwhm, beta)
    zp = k["zp"] + k["det_zp"][detector_id]
    sky_e = 10 ** (-0.4 * (cfg.sky_mag - zp)) * cfg.pixel_scale**2
    psf_ss = psf_sum_sq(psf_w, psf_s)
    sky_var = sky_e + k["rn_var"]
    if cfg.reference == "ps1":
        ref_seeing = rng.uniform(*cfg.ref_seeing_range, m)
        ref_w, ref_s = (
            np.ones((m, 1), np.float32),
            (ref_seeing / cfg.pixel_scale / FWHM_PER_SIGMA)[:, None],
        )
    else:  # a Tomo-e stack taken in better-than-median seeing
        ref_seeing = np.clip(
            cfg.seeing_median * np.exp(rng.normal(-0.1, 0.08, m)), cfg.seeing_min, None
        )
        ref_w, ref_s = moffat_components(ref_seeing / cfg.pixel_scale, np.full(m, MEDIAN_BETA))
    return {
        "detector_id": detector_id,
        "seeing": seeing,
        "ref_seeing": ref_seeing,
        "beta": beta,
        "fwhm": fwhm,
        "psf_w": psf_w,
        "psf_s": psf_s,
        "psf_ss": psf_ss,
        "psf_sigma_eq": fwhm / FWHM_PER_SIGMA,
        "ref_w": ref_w,
        "ref_s": ref_s.astype(np.float32),
        "zp": zp,
        "zp_ref": np.full(m, REF_ZP),
        "sky_e": sky_e,
        "sky_var": sky_var,
        "m_lim": zp - 2.5 * np.log10(5 * np.sqrt(sky_var / psf_ss)),
        "sat_level": np.full(m, k["sat_level"]) * sky_e / k["sky_e"],
        "sigma_ref": np.full(m, k["sigma_ref"]),
        "ref_sat_level": np.full(m, k["ref_sat_level"]),
        "dx": rng.normal(0, cfg.astrometric_error, m),
        "dy": rng.normal(0, cfg.astrometric_error, m),
        "seeing_err": rng.normal(0, cfg.seeing_estimate_error, m),
        "beta_err": rng.normal(0, cfg.beta_estimate_error, m),
        "scale_err": rng.normal(0, cfg.flux_scale_error, m),
    }


def _galaxy_image(gal, sigma_psf, flux, dx=0.0, dy=0.0, size=33):
    """Sérsic MoG convolved with a Gaussian PSF of the given sigma (pixels).

    The PSF's Moffat wings are left out for galaxies (their light is already extended);
    this keeps a galaxy at 4 components per image.
    """
    gw, cxx, cxy, cyy = galaxy_covariances(
        gal["re_pix"], gal["q"], gal["theta"], gal["sidx"], sigma_psf**2
    )
    return render_gaussians2d(gal["x"] + dx, gal["y"] + dy, flux[:, None] * gw, cxx, cxy, cyy, size)


def _render(sc: scene.Scene, cond: dict, cfg: SurveyConfig, rng):
    """Observe a scene: new, matched reference, sub and its variance on the G x G patch."""
    m, g = sc.m, sc.size
    x, y, f = sc.x, sc.y, sc.f_new
    if sc.streak is not None:  # tracking error: each source smeared along a line in new
        length, ang = sc.streak
        t = np.linspace(-0.5, 0.5, 7)[None, None, :] * length[:, None, None]
        x = (x[:, :, None] + t * np.cos(ang)[:, None, None]).reshape(m, -1)
        y = (y[:, :, None] + t * np.sin(ang)[:, None, None]).reshape(m, -1)
        f = np.repeat(f / 7.0, 7, axis=1)
    new = render_points(x, y, f, cond["psf_w"], cond["psf_s"], g)
    new += cond["sky_e"][:, None, None].astype(np.float32)
    est_w, est_s = moffat_components(
        cond["fwhm"] * (1 + cond["seeing_err"]), cond["beta"] + cond["beta_err"]
    )
    xr, yr = sc.x + cond["dx"][:, None], sc.y + cond["dy"][:, None]
    ref = render_points(xr, yr, sc.f_ref, cond["ref_w"], cond["ref_s"], g)
    matched = render_points(xr, yr, sc.f_ref, est_w, est_s, g)
    if sc.gal is not None:
        gal = sc.gal
        f_new = scene.mag_to_flux(gal["mag"], cond["zp"])
        f_ref = scene.mag_to_flux(gal["mag"], cond["zp_ref"])
        ref_sigma = np.sqrt((cond["ref_w"] * cond["ref_s"].astype(np.float64) ** 2).sum(1))
        new += _galaxy_image(gal, cond["psf_sigma_eq"], f_new, size=g)
        ref += _galaxy_image(gal, ref_sigma, f_ref, cond["dx"], cond["dy"], g)
        est_sigma = cond["psf_sigma_eq"] * (1 + cond["seeing_err"])
        matched += _galaxy_image(gal, est_sigma, f_ref, cond["dx"], cond["dy"], g)
    if sc.art_new is not None:
        new += sc.art_new
    f32 = np.float32
    np.minimum(new, cond["sat_level"][:, None, None].astype(f32), out=new)  # saturation
    var = new + f32(_survey_constants(cfg)["rn_var"])  # Poisson (gain 1) + read noise
    noise = rng.standard_normal((m, g, g), dtype=f32)
    noise *= np.sqrt(var)
    new += noise
    scale = 10 ** (-0.4 * (cond["zp_ref"] - cond["zp"])) * (1 + cond["scale_err"])
    matched *= scale[:, None, None].astype(f32)
    # saturated PS1 cores are masked
    ref_mask = ref > cond["ref_sat_level"][:, None, None].astype(f32)
    if sc.ref_mask is not None:
        ref_mask |= sc.ref_mask
    has = np.flatnonzero(ref_mask.reshape(m, -1).any(axis=1))
    if len(has):  # the pipeline convolves the zero-filled reference: remove K * (masked light)
        ref_var = (cond["ref_w"][has] * cond["ref_s"][has].astype(np.float64) ** 2).sum(1)
        k_sig = np.sqrt(np.maximum(est_s[has].astype(np.float64) ** 2 - ref_var[:, None], 0.05))
        lost = np.where(ref_mask[has], ref[has], f32(0.0))
        matched[has] -= scale[has, None, None].astype(f32) * convolve_mog(lost, est_w[has], k_sig)
    matched += cond["sky_e"][:, None, None].astype(f32)
    sub = np.subtract(new, matched, out=matched)
    if sc.new_mask is not None:
        new[sc.new_mask] = np.nan
        sub[sc.new_mask] = np.nan
    if sc.sub_mask is not None:
        sub[sc.sub_mask] = np.nan
    return ref, ref_mask, new, sub, var


def _observe(sc, cond, cfg, rng):
    """Render, detect and cut out: images float32[m, 29, 29, 3] and detection columns."""
    ref, ref_mask, new, sub, var = _render(sc, cond, cfg, rng)
    r, n_out, m = cfg.search_radius, cfg.cutout_size, sc.m
    if sc.negative is not None:  # found on ref - new: ZTF detects on both subtractions and
        sub[sc.negative] *= np.float32(-1.0)  # stores the one it found the source on
        #   (isdiffpos 'f', a `refmsci` stamp; Masci et al. 2019, PASP 131, 018003)
    snr = detection_snr(sub, var, cond["psf_sigma_eq"], r).reshape(m, -1)
    best = snr.argmax(axis=1)
    det_snr = snr[np.arange(m), best]
    detected = det_snr >= cfg.detection_threshold
    oy = np.where(detected, best // (2 * r + 1), r)  # undetected: the catalogue position
    ox = np.where(detected, best % (2 * r + 1), r)
    i = np.arange(m)
    cut = np.empty((m, 3, n_out, n_out), np.float32)  # channel-first: contiguous gathers
    for ch, arr in enumerate((ref, new, sub)):
        cut[:, ch] = np.lib.stride_tricks.sliding_window_view(arr, (n_out, n_out), axis=(1, 2))[
            i, oy, ox
        ]
    noise = rng.standard_normal((m, n_out, n_out), dtype=np.float32)
    noise *= cond["sigma_ref"][:, None, None].astype(np.float32)
    cut[:, 0] += noise
    if cfg.template_on_science_scale:  # the ref as ZTF distributes it (presets.ztf_config)
        scale = 10 ** (-0.4 * (cond["zp_ref"] - cond["zp"])) * (1 + cond["scale_err"])
        cut[:, 0] *= scale[:, None, None].astype(np.float32)  # the subtraction's gain match
        cut[:, 0] += cond["sky_e"][:, None, None].astype(np.float32)  # the science's sky
    mask_c = np.lib.stride_tricks.sliding_window_view(ref_mask, (n_out, n_out), axis=(1, 2))[
        i, oy, ox
    ]
    if mask_c.any():
        use_nan = rng.uniform(size=m) < cfg.ref_mask_nan_fraction  # PS1 masks: NaN or zero
        fill = np.where(use_nan, np.float32(np.nan), np.float32(0.0))
        cut[:, 0] = np.where(mask_c, fill[:, None, None], cut[:, 0])
    if cfg.masks_shared:  # one mask for the three cutouts (presets.ztf_config)
        cut[np.broadcast_to(np.isnan(cut).any(axis=1, keepdims=True), cut.shape)] = np.nan
    images = cut.transpose(0, 2, 3, 1)  # [m, 29, 29, 3] view; copied once into the output
    return images, det_snr, detected, ox - r, oy - r


def _simulate_group(rng, cat, neighbour, det_ids, night, cfg, forced, out, rows):
    """Simulate rows of one category (+ the injection's neighbour) into out[rows]; redraw
    until detected unless forced (injections: the catalogue forces them in)."""
    m = len(det_ids)
    cols: dict[str, np.ndarray] = {}
    todo = np.arange(m)
    for attempt in range(MAX_REDRAWS):
        cond = _conditions(rng, cfg, det_ids[todo], night)
        sc = scene.Scene(len(todo), cfg.cutout_size + 2 * cfg.search_radius)
        scene.background_stars(rng, sc, cond, cfg)
        if cat in INJECTION_CATEGORIES:
            lo = np.full(len(todo), cfg.inject_mag_bright)
            mag = rng.uniform(lo, cond["m_lim"] + cfg.inject_mag_beyond_limit)
            if neighbour:
                scene.add_neighbour(rng, sc, cond, cfg, neighbour)
            scene.BUILDERS[cat](rng, sc, cond, cfg, mag)
        else:
            scene.BUILDERS[cat](rng, sc, cond, cfg)
        img, det_snr, detected, ox, oy = _observe(sc, cond, cfg, rng)
        ok = np.ones(len(todo), bool) if (forced or attempt == MAX_REDRAWS - 1) else detected
        sel = todo[ok]
        if ok.all():
            out[rows[todo]] = img
        else:
            out[rows[sel]] = img[ok]
        # point-source S/N with the noise-equivalent area (sky + read + the source's Poisson)
        flux = sc.truth["central_flux"]
        snr = flux / np.sqrt(cond["sky_var"] / cond["psf_ss"] + np.maximum(flux, 0))
        new_cols = {
            "mag": sc.truth["mag"],
            "snr": np.where(sc.truth["central_flux"] > 0, snr, np.nan),
            "det_snr": det_snr,
            "detected": detected.astype(np.int8),
            "seeing_new": cond["seeing"],
            "seeing_ref": cond["ref_seeing"],
            "beta": cond["beta"],
            "m_lim": cond["m_lim"],
            "zp_new": cond["zp"],
            "host_mag": sc.truth["host_mag"],
            "peak_dx": ox,
            "peak_dy": oy,
            "src_dx": sc.truth["src_x"] - sc.c,
            "src_dy": sc.truth["src_y"] - sc.c,
        }
        for k, v in new_cols.items():
            cols.setdefault(k, np.full(m, np.nan))[sel] = np.asarray(v, float)[ok]
        todo = todo[~ok]
        if len(todo) == 0:
            break
    return cols


def _simulate_chunk(seq, images, kind, cfg, night, detector_id, boost, real_fraction, n_det=None):
    """Simulate len(images) candidates into `images` (a view); return their table."""
    n = len(images)
    rng = np.random.Generator(np.random.SFC64(seq))  # SFC64: ~2x faster normals than PCG64
    n_det = cfg.n_detectors if n_det is None else n_det
    det = rng.integers(0, n_det, n) if detector_id is None else np.full(n, int(detector_id))
    cat, otype, cause, label, weight, neighbour = plan_rows(rng, n, kind, cfg, boost, real_fraction)
    table = pd.DataFrame(
        {
            "object_type": otype,
            "category": cat,
            "is_real_true": np.isin(cat, REAL_CATEGORIES).astype(np.int8),  # injections: below
            "noise_cause": cause,  # cause of a wrong label ("" if right), WRONG_LABEL_CAUSES
            "neighbour": neighbour,  # what an injection was placed on or next to
            "match_dist": np.full(n, np.nan),  # px, detected peak to injected position
            "detector_id": det,
            "night": np.full(n, int(night)),
            "x": rng.uniform(0, cfg.detector_shape[1], n).round(2),
            "y": rng.uniform(0, cfg.detector_shape[0], n).round(2),
            "weight": weight,
        }
    )
    table["label"] = label
    cols = {k: np.full(n, np.nan) for k in TRUTH_COLUMNS}
    keys = pd.Series(list(zip(cat, neighbour, strict=True)), dtype=object)
    for (c, nb), idx in keys.groupby(keys).indices.items() if n else []:
        forced = kind == "train" and c in INJECTION_CATEGORIES
        group_cols = _simulate_group(rng, c, nb, det[idx], night, cfg, forced, images, idx)
        for k, v in group_cols.items():
            cols[k][idx] = v
    for k in TRUTH_COLUMNS:
        table[k] = cols[k]
    for k in ("detected", "peak_dx", "peak_dy"):
        table[k] = table[k].astype(np.int8)
    if kind == "train":
        match_injections(table, images, cfg)
        table["object_type"] = np.where(
            (table["label"] == 0) & table["category"].isin(INJECTION_CATEGORIES),
            "artifact",  # an unmatched injection is one more unmatched detection
            table["object_type"],
        )
    table["label_is_wrong"] = (table["is_real_true"] != table["label"]).astype(np.int8)
    return table


def simulate_candidates(
    n: int,
    *,
    kind: str,
    seed: int | np.random.SeedSequence,
    config: SurveyConfig | None = None,
    night: int = 0,
    detector_id: int | None = None,
    boost: float = 1.0,
    real_fraction: float | None = None,
    n_threads: int = 1,
    n_detectors: int | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Simulate `n` candidate triplets of the Tomo-e Gozen survey.

    Args:
        n: number of candidates.
        kind: "train" (bogus detections labelled artifact + injected reals rand/galx, with
            label noise from its causes), "test" (clean labels; real = supernovae on hosts and
            hostless; ~1 real per 700 bogus by default) or "stream" (one night of the
            pipeline: nearly all bogus, supernovae and variable stars at their rates).
        seed: int or SeedSequence; the same seed gives the same output.
        config: survey configuration (default `SurveyConfig()`).
        night: night index (sets the night's seeing).
        detector_id: detector of all candidates (default: uniform over the 84 detectors).
        boost: stream only: oversampling factor of the rare real classes; the `weight` column
            (p/q) restores the natural rates.
        real_fraction: train/test: share of real candidates (default 0.5 / 1:700); train:
            the share of injections, before unmatched ones join the bogus sample.
        n_threads: worker threads (output does not depend on it).
        n_detectors: without `detector_id`, candidates fall on detectors 0..n_detectors-1
            (default all of the config's): a test set for a training set written on fewer
            detectors, so that every test candidate has its detector's model (treatment
            `each`, `rbcore.train.treatments`).

    Returns:
        images: float32[n, 29, 29, 3] raw pixel values (ref, new, sub); NaN = masked.
        params: DataFrame, one row per image: object_type (artifact / rand_artificial_real /
            galx_artificial_real; "transient" for test/stream reals), label (the label the
            data carry; stream: the truth), category, is_real_true, label_is_wrong,
            noise_cause (the cause of a wrong label, "" where right: WRONG_LABEL_CAUSES),
            neighbour (what an injection was placed on or next to), match_dist (px from the
            detected peak to the injected position), mag (true magnitude of the central
            source, NaN if none), snr (its point-source S/N), det_snr (peak S/N found in
            sub), detected, seeing_new, seeing_ref (arcsec), beta, m_lim (5-sigma limit of
            the exposure), zp_new, host_mag, peak_dx, peak_dy (cutout shift to the peak),
            src_dx, src_dy (central transient's offset from the candidate position), detector_id, night, x, y (pixel on the detector), weight (stream: p/q).

    Notes:
        Forward model of Takahashi et al. (2022)'s data (issue 3); see the module docstring.
    """
    if kind not in KINDS:
        raise ValueError(f"simulate_candidates: kind must be one of {KINDS}, got {kind!r}")
    if n < 0:
        raise ValueError(f"simulate_candidates: n must be >= 0, got {n}")
    cfg = SurveyConfig() if config is None else config
    cfg.validate()
    base = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    kind_code = KINDS.index(kind)
    starts = list(range(0, n, CHUNK)) or [0]
    seqs = [
        np.random.SeedSequence(base.entropy, spawn_key=(*base.spawn_key, kind_code, int(night), i))
        for i in range(len(starts))
    ]
    images = np.empty((n, cfg.cutout_size, cfg.cutout_size, 3), np.float32)
    rest = (detector_id, boost, real_fraction, n_detectors)
    args = [
        (q, images[st : st + CHUNK], kind, cfg, night, *rest)
        for q, st in zip(seqs, starts, strict=True)
    ]
    if n_threads > 1 and len(args) > 1:
        with ThreadPoolExecutor(n_threads) as ex:
            tables = list(ex.map(lambda a: _simulate_chunk(*a), args))
    else:
        tables = [_simulate_chunk(*a) for a in args]
    return images, pd.concat(tables, ignore_index=True)
