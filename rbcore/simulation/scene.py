"""What sits in each candidate's patch: one builder per category of issue 3.

A builder draws the physical scene of `m` candidates of one category: point sources (with
their fluxes in new and in the reference), an optional galaxy, additive artifacts in new,
masks, and changes to the subtraction's imperfections. `rbcore.simulation` then renders the
three images and runs the detection. Fluxes are in new-image electrons (`f_new`) and in
reference counts (`f_ref`); magnitudes convert through each candidate's zero points.
"""

from __future__ import annotations

import numpy as np

from rbcore.simulation.render import SERSIC_GRID


def mag_to_flux(mag, zp):
    """Flux (counts) of magnitude `mag` for zero point `zp` (the magnitude giving 1 count)."""
    return np.power(10.0, -0.4 * (np.asarray(mag, np.float64) - zp))


def power_law_mags(rng, m, lo, hi, slope):
    """Magnitudes with dN/dm ∝ 10^(slope m) on [lo, hi] (inverse CDF); lo, hi scalars or [m]."""
    a, b = 10 ** (slope * np.asarray(lo, float)), 10 ** (slope * np.asarray(hi, float))
    return np.log10(a + rng.uniform(size=m) * (b - a)) / slope


class Scene:
    """Scene of m candidates: arrays the renderer reads (see module docstring).

    Attributes:
        x, y, f_new, f_ref: float64[m, S] point sources (background stars + central objects).
        gal: dict of float[m] galaxy parameters (x, y, mag, re_pix, q, theta, sidx) and
            `has` bool[m], or None.
        art_new: float32[m, G, G] additive artifacts in new (e-), or None.
        ref_mask, new_mask, sub_mask: bool[m, G, G] masked pixels, or None.
        streak: (length_pix float[m], angle float[m]) PSF elongation in new, or None.
        negative: bool[m] candidates the pipeline finds on ref - new (their stored sub is
            ref - new, as ZTF stores an isdiffpos 'f' candidate's `refmsci` stamp), or None.
        truth: dict of per-candidate truth columns.
    """

    def __init__(self, m, size):
        self.m, self.size = m, size
        self.c = (size - 1) / 2.0
        self.x = np.zeros((m, 0))
        self.y = np.zeros((m, 0))
        self.f_new = np.zeros((m, 0))
        self.f_ref = np.zeros((m, 0))
        self.gal = None
        self.art_new = self.ref_mask = self.new_mask = self.sub_mask = None
        self.streak = None
        self.negative = None
        self.truth = {
            "mag": np.full(m, np.nan),
            "central_flux": np.zeros(m),
            "host_mag": np.full(m, np.nan),
            "src_x": np.full(m, np.nan),  # position of the central transient (patch pixels)
            "src_y": np.full(m, np.nan),
        }

    def add_points(self, x, y, f_new, f_ref):
        """Append one source slot per candidate (arrays float[m] or [m, k])."""
        cols = [np.asarray(v, float).reshape(self.m, -1) for v in (x, y, f_new, f_ref)]
        self.x, self.y, self.f_new, self.f_ref = (
            np.concatenate([a, b], axis=1)
            for a, b in zip((self.x, self.y, self.f_new, self.f_ref), cols, strict=True)
        )

    def grid(self):
        g = np.arange(self.size, dtype=np.float32)
        return g[None, None, :], g[None, :, None]  # xx [1,1,G], yy [1,G,1]

    def add_mask(self, name, mask):
        old = getattr(self, name)
        setattr(self, name, mask if old is None else (old | mask))

    def add_art(self, img):
        self.art_new = img.astype(np.float32) if self.art_new is None else self.art_new + img


def background_stars(rng, sc, cond, cfg):
    """Field stars: Poisson number per patch from the star counts, uniform positions."""
    area_deg2 = (sc.size * cfg.pixel_scale / 3600.0) ** 2
    lo, hi = cfg.field_star_mag_range
    # counts normalized at 21 mag: N(<21) = star_density, dlogN/dm = star_count_slope
    n_lt_hi = cfg.star_density * 10 ** (cfg.star_count_slope * (hi - 21.0)) * area_deg2
    k = np.minimum(rng.poisson(n_lt_hi, size=sc.m), cfg.max_background_stars)
    slots = cfg.max_background_stars
    mags = power_law_mags(rng, (sc.m, slots), lo, hi, cfg.star_count_slope)
    on = np.arange(slots)[None, :] < k[:, None]
    x = rng.uniform(-0.5, sc.size - 0.5, (sc.m, slots))
    y = rng.uniform(-0.5, sc.size - 0.5, (sc.m, slots))
    sc.add_points(
        x,
        y,
        on * mag_to_flux(mags, cond["zp"][:, None]),
        on * mag_to_flux(mags, cond["zp_ref"][:, None]),
    )


def _centre(rng, sc):
    return sc.c + rng.uniform(-0.5, 0.5, sc.m), sc.c + rng.uniform(-0.5, 0.5, sc.m)


def _star(rng, sc, cond, mag, x=None, y=None, new_factor=1.0):
    x0, y0 = _centre(rng, sc) if x is None else (x, y)
    sc.add_points(
        x0, y0, mag_to_flux(mag, cond["zp"]) * new_factor, mag_to_flux(mag, cond["zp_ref"])
    )
    return x0, y0


def _transient(rng, sc, cond, mag, x=None, y=None):
    """A point source in new only (supernova, injection, asteroid, noise peak)."""
    x0, y0 = _centre(rng, sc) if x is None else (x, y)
    f = mag_to_flux(mag, cond["zp"])
    sc.add_points(x0, y0, f, np.zeros(sc.m))
    sc.truth["mag"] = np.asarray(mag, float)
    sc.truth["central_flux"] = f
    sc.truth["src_x"], sc.truth["src_y"] = x0, y0
    return x0, y0


def _galaxy(rng, sc, cond, cfg, mag, re_arcsec, x0, y0, sidx=None):
    sc.gal = {
        "x": x0,
        "y": y0,
        "mag": mag,
        "re_pix": re_arcsec / cfg.pixel_scale,
        "q": rng.uniform(*cfg.galaxy_q_range, sc.m),
        "theta": rng.uniform(0, np.pi, sc.m),
        "sidx": rng.integers(0, len(SERSIC_GRID), sc.m) if sidx is None else sidx,
    }
    sc.truth["host_mag"] = mag


def _host(rng, sc, cond, cfg, bright=0.0):
    """A host galaxy near the candidate: offset ~ its half-light radius (exponential discs)."""
    re = cfg.galaxy_re_median * np.exp(rng.normal(0, cfg.galaxy_re_scatter, sc.m))
    mag = rng.uniform(*cfg.galaxy_mag_range, sc.m) - bright
    r = rng.exponential(cfg.host_offset_scale, sc.m) * re / cfg.pixel_scale
    phi = rng.uniform(0, 2 * np.pi, sc.m)
    _galaxy(rng, sc, cond, cfg, mag, re, sc.c + r * np.cos(phi), sc.c + r * np.sin(phi))


def _rect_mask(rng, sc, half_lo, half_hi, cover_centre=True):
    """Random rectangles (one per candidate); covering the centre or with an edge next to it."""
    xx, yy = sc.grid()
    hw = rng.uniform(half_lo, half_hi, (2, sc.m))
    if cover_centre:
        cx = sc.c + rng.uniform(-1, 1, sc.m) * hw[0] * 0.5
        cy = sc.c + rng.uniform(-1, 1, sc.m) * hw[1] * 0.5
    else:  # the rectangle's near edge 1-3 px from the centre, on a random side
        side = rng.integers(0, 4, sc.m)
        gap = rng.uniform(1, 3, sc.m)
        cx = sc.c + np.select([side == 0, side == 1], [gap + hw[0], -(gap + hw[0])], 0.0)
        cy = sc.c + np.select([side == 2, side == 3], [gap + hw[1], -(gap + hw[1])], 0.0)
    return (np.abs(xx - cx[:, None, None]) <= hw[0][:, None, None]) & (
        np.abs(yy - cy[:, None, None]) <= hw[1][:, None, None]
    )


def _line(sc, x0, y0, angle, sigma):
    """Gaussian-profile line through (x0, y0): float32[m, G, G] with peak 1."""
    xx, yy = sc.grid()
    d = (xx - x0[:, None, None]) * np.sin(angle)[:, None, None] - (yy - y0[:, None, None]) * np.cos(
        angle
    )[:, None, None]
    return np.exp(-0.5 * (d / sigma[:, None, None]) ** 2).astype(np.float32)


# ----------------------------------------------------------------------------------------
# Builders: build_<category>(rng, sc, cond, cfg). `cond` holds per-candidate conditions and
# the pipeline's imperfections, which a builder may change (copies, see rbcore.simulation).
# ----------------------------------------------------------------------------------------


def build_star_residual(rng, sc, cond, cfg):
    # Stars whose subtraction failed: worse PSF and flux match than average (assumption:
    # the tails of the pipeline's error distributions are what makes these candidates).
    # Fainter than PS1 saturation (brighter ones are "bright_star"/"mask_ref"-like).
    _star(rng, sc, cond, rng.uniform(cfg.ref_saturation_mag, 16.5, sc.m))
    cond["seeing_err"] = cond["seeing_err"] * 4.0
    cond["scale_err"] = cond["scale_err"] * 4.0
    cond["beta_err"] = cond["beta_err"] * 2.0


def build_dipole(rng, sc, cond, cfg):
    _star(rng, sc, cond, rng.uniform(cfg.ref_saturation_mag - 1.0, 17.0, sc.m))
    r, phi = rng.uniform(*cfg.dipole_offset_range, sc.m), rng.uniform(0, 2 * np.pi, sc.m)
    cond["dx"], cond["dy"] = r * np.cos(phi), r * np.sin(phi)


def build_bright_star(rng, sc, cond, cfg):
    # Saturated in new (and in PS1, whose core is masked); a CMOS bleed-like column for some.
    x0, y0 = _star(rng, sc, cond, rng.uniform(cfg.saturation_mag - 3.0, cfg.saturation_mag, sc.m))
    bleed = rng.uniform(size=sc.m) < 0.3  # share with a bleed trail (assumption)
    xx, yy = sc.grid()
    length = rng.uniform(4, 12, sc.m)[:, None, None]
    col = (np.abs(xx - np.round(x0)[:, None, None]) < 0.5) & (
        np.abs(yy - y0[:, None, None]) < length
    )
    sc.add_art(col * bleed[:, None, None] * cond["sat_level"][:, None, None])


def build_cosmic_ray(rng, sc, cond, cfg):
    # 1-4 connected pixels (random walk from the centre), 10-300 sigma of the sky noise.
    art = np.zeros((sc.m, sc.size, sc.size), np.float32)
    px = np.full(sc.m, int(sc.c)) + rng.integers(-1, 2, sc.m)
    py = np.full(sc.m, int(sc.c)) + rng.integers(-1, 2, sc.m)
    npix = rng.integers(1, 5, sc.m)
    sig = np.sqrt(cond["sky_var"])
    for k in range(4):
        on = k < npix
        art[np.arange(sc.m)[on], py[on], px[on]] += (
            np.exp(rng.uniform(np.log(10), np.log(300), sc.m)) * sig
        )[on]
        step = rng.integers(0, 4, sc.m)
        px = np.clip(px + np.select([step == 0, step == 1], [1, -1], 0), 0, sc.size - 1)
        py = np.clip(py + np.select([step == 2, step == 3], [1, -1], 0), 0, sc.size - 1)
    sc.add_art(art)


def build_hot_pixel(rng, sc, cond, cfg):
    # A hot pixel (70 %) or a bad column segment (30 %) (shares: assumption).
    xx, yy = sc.grid()
    px = int(sc.c) + rng.integers(-1, 2, sc.m)
    py = int(sc.c) + rng.integers(-1, 2, sc.m)
    col = rng.uniform(size=sc.m) < 0.3
    sig = np.sqrt(cond["sky_var"])
    amp_hot = np.exp(rng.uniform(np.log(8), np.log(200), sc.m)) * sig
    amp_col = rng.uniform(2, 8, sc.m) * sig
    hot = (xx == px[:, None, None]) & (yy == py[:, None, None])
    column = (xx == px[:, None, None]) & (
        yy >= py[:, None, None] - rng.integers(3, 30, sc.m)[:, None, None]
    )
    sc.add_art(
        np.where(col[:, None, None], column * amp_col[:, None, None], hot * amp_hot[:, None, None])
    )


def build_mask_ref(rng, sc, cond, cfg):
    # A star on a masked (zero/NaN) block of the reference: sub shows the whole star.
    _star(rng, sc, cond, rng.uniform(11.5, 17.5, sc.m))
    sc.add_mask("ref_mask", _rect_mask(rng, sc, 3, 12, cover_centre=True))


def build_mask_sub(rng, sc, cond, cfg):
    # A bright star's residual next to a masked block of sub (the pipeline's bad-pixel mask).
    _star(rng, sc, cond, rng.uniform(10.0, 14.0, sc.m))
    cond["scale_err"] = cond["scale_err"] * 2.0
    sc.add_mask("sub_mask", _rect_mask(rng, sc, 2, 10, cover_centre=False))


def build_trail(rng, sc, cond, cfg):
    # Satellite/aircraft trail: a line of the PSF's width, 1.5-15 sigma per pixel.
    amp = rng.uniform(1.5, 15, sc.m) * np.sqrt(cond["sky_var"])
    x0, y0 = _centre(rng, sc)
    sigma = cond["psf_sigma_eq"] * rng.uniform(0.8, 1.5, sc.m)
    sc.add_art(_line(sc, x0, y0, rng.uniform(0, np.pi, sc.m), sigma) * amp[:, None, None])


def build_tracking_error(rng, sc, cond, cfg):
    # Elongated PSF in new for every source of the patch (telescope tracking error).
    _star(rng, sc, cond, rng.uniform(11.0, 16.0, sc.m))
    sc.streak = (rng.uniform(1.5, 6.0, sc.m), rng.uniform(0, np.pi, sc.m))


def build_noise(rng, sc, cond, cfg):
    # "Low S/N": a noise peak above threshold. The mean field around a peak of height nu of a
    # Gaussian random field is nu times the filter's autocorrelation (Bardeen et al. 1986):
    # a PSF-like bump; nu from the Gaussian tail above the threshold (~ t + Exp(1/t)).
    t = cfg.detection_threshold
    nu = t + rng.exponential(1.0 / t, sc.m)
    f = nu * np.sqrt(cond["sky_var"] / cond["psf_ss"])
    x0, y0 = _centre(rng, sc)
    sc.add_points(x0, y0, f, np.zeros(sc.m))
    sc.truth["central_flux"] = f


def build_asteroid(rng, sc, cond, cfg):
    _transient(rng, sc, cond, rng.uniform(13.0, 1.0 * cond["m_lim"], sc.m))


def build_galaxy_nucleus(rng, sc, cond, cfg):
    # Compact bright bulge at the centre; PSF mismatch leaves a residual at the nucleus.
    x0, y0 = _centre(rng, sc)
    sidx = rng.integers(3, len(SERSIC_GRID), sc.m)  # n >= 2: concentrated profiles
    re = np.exp(rng.uniform(np.log(1.0), np.log(4.0), sc.m))
    _galaxy(rng, sc, cond, cfg, rng.uniform(12.0, 16.0, sc.m), re, x0, y0, sidx=sidx)
    cond["seeing_err"] = cond["seeing_err"] * 2.5
    cond["scale_err"] = cond["scale_err"] * 2.0


def build_ghost(rng, sc, cond, cfg):
    # Optical ghost of a bright star off the patch: a faint ring passing through the centre.
    xx, yy = sc.grid()
    radius = rng.uniform(4, 12, sc.m)
    phi = rng.uniform(0, 2 * np.pi, sc.m)
    gx, gy = sc.c + radius * np.cos(phi), sc.c + radius * np.sin(phi)
    r = np.hypot(xx - gx[:, None, None], yy - gy[:, None, None])
    width = rng.uniform(1.0, 3.0, sc.m)[:, None, None]
    amp = (rng.uniform(1.5, 5, sc.m) * np.sqrt(cond["sky_var"]))[:, None, None]
    sc.add_art(amp * np.exp(-0.5 * ((r - radius[:, None, None]) / width) ** 2))


def build_rand(rng, sc, cond, cfg, mag):
    _transient(rng, sc, cond, mag)


def build_galx(rng, sc, cond, cfg, mag):
    _host(rng, sc, cond, cfg)
    _transient(rng, sc, cond, mag)


def build_variable_star(rng, sc, cond, cfg):
    # A star brightened by 0.2-2 mag between the reference and new epochs (assumption).
    m0 = rng.uniform(12.0, 19.0, sc.m)
    dm = rng.uniform(*cfg.variable_dm_range, sc.m)
    _star(rng, sc, cond, m0, new_factor=10 ** (0.4 * dm))
    sc.truth["mag"] = m0 - dm
    sc.truth["central_flux"] = mag_to_flux(m0, cond["zp"]) * (10 ** (0.4 * dm) - 1)


def build_variable_fading(rng, sc, cond, cfg):
    # A variable star fainter in new than in the reference by the variables' 0.2-2 mag: ZTF
    # detects it on ref - new and alerts it with isdiffpos 'f' (Masci et al. 2019, PASP 131,
    # 018003: detection on both the positive and the negative difference), and braai's
    # training set labels variable stars real (Duev et al. 2019, MNRAS 489, 3582, Sect. 2.1).
    # Unlike a time-reversed brightening candidate (`rbcore.ztf.fading`), the star is in both
    # epochs, ref keeps the coadd's depth and PSF, new its single-epoch noise.
    m0 = rng.uniform(12.0, 19.0, sc.m)  # reference magnitude, as build_variable_star's
    dm = rng.uniform(*cfg.variable_dm_range, sc.m)
    _star(rng, sc, cond, m0, new_factor=10 ** (-0.4 * dm))
    sc.truth["mag"] = m0 + dm
    sc.truth["central_flux"] = mag_to_flux(m0, cond["zp"]) * (1 - 10 ** (-0.4 * dm))
    sc.negative = np.ones(sc.m, bool)


def build_negative_dip(rng, sc, cond, cfg):
    # Pixels below the sky in new, which the pipeline finds on ref - new (isdiffpos 'f';
    # Masci et al. 2019) and braai's training labels bogus (Duev et al. 2019, Sect. 2.1:
    # bogus are detector defects and bad subtractions). Two physical causes, half each
    # (shares: assumption): (a) dead or low-response pixels and column segments that the
    # bad-pixel mask missed: a science pixel collects a share u of the sky, depth (1 - u) of
    # the sky, at most the whole sky (a dead pixel reads ~0 e-); 1-4 connected pixels
    # (70 %) or a 3-30 px column segment (30 %), the shapes of build_hot_pixel; (b) a star
    # over-subtracted: the reference scaled too high (flux-scale error of positive sign, 4x
    # the pipeline's as in build_star_residual) leaves a negative star in new - ref.
    xx, yy = sc.grid()
    px = int(sc.c) + rng.integers(-1, 2, sc.m)
    py = int(sc.c) + rng.integers(-1, 2, sc.m)
    depth = rng.uniform(0.3, 1.0, sc.m) * cond["sky_e"]  # (1 - u) sky, u in [0, 0.7]
    col = rng.uniform(size=sc.m) < 0.3
    column = (xx == px[:, None, None]) & (
        yy >= py[:, None, None] - rng.integers(3, 30, sc.m)[:, None, None]
    ) & (yy <= py[:, None, None])  # fmt: skip
    cluster = (np.abs(xx - px[:, None, None]) + np.abs(yy - py[:, None, None])) <= (
        rng.integers(0, 2, sc.m)[:, None, None]
    )  # one pixel or a plus of 5 (a cluster of connected defects)
    defect = np.where(col[:, None, None], column, cluster)
    star = rng.uniform(size=sc.m) < 0.5
    sc.add_art(-(np.where(defect & ~star[:, None, None], depth[:, None, None], 0.0)))
    mag = np.where(star, rng.uniform(cfg.ref_saturation_mag, 16.5, sc.m), 99.0)
    _star(rng, sc, cond, mag)
    cond["scale_err"] = np.where(star, np.abs(cond["scale_err"]) * 4.0, cond["scale_err"])
    cond["seeing_err"] = np.where(star, cond["seeing_err"] * 4.0, cond["seeing_err"])
    sc.negative = np.ones(sc.m, bool)


def sn_mags(rng, m, cond, cfg):
    """Supernova magnitudes of a magnitude-limited search: Euclidean counts up to ~the limit."""
    return power_law_mags(
        rng, m, cfg.sn_mag_bright, cond["m_lim"] + cfg.sn_mag_beyond_limit, cfg.sn_count_slope
    )


def build_sn_host(rng, sc, cond, cfg):
    _host(rng, sc, cond, cfg)
    _transient(rng, sc, cond, sn_mags(rng, sc.m, cond, cfg))


def build_sn_hostless(rng, sc, cond, cfg):
    _transient(rng, sc, cond, sn_mags(rng, sc.m, cond, cfg))


def add_neighbour(rng, sc, cond, cfg, neighbour):
    """Put what an injection lands on or next to into its patch (before the injection).

    A bogus class of NEIGHBOUR_CLASSES is drawn by its builder at the centre (within 0.7 px
    of the injection, inside any matching radius); "masked_new" masks a block of new over the
    centre (CMOS bad pixels, the pipeline's mask).
    """
    if neighbour == "masked_new":
        sc.add_mask("new_mask", _rect_mask(rng, sc, 3, 10, cover_centre=True))
    else:
        BUILDERS[neighbour](rng, sc, cond, cfg)


BUILDERS = {
    name[len("build_") :]: fn for name, fn in globals().items() if name.startswith("build_")
}
