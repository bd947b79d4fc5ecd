"""Survey presets: the simulated Tomo-e Gozen survey (default) and a ZTF-like survey.

`survey_preset("tomoe")` is `SurveyConfig()`, the survey of Takahashi et al. (2022).
`survey_preset("ztf")` observes the same sky with the Zwicky Transient Facility: 1.01" pixels,
~2.4" seeing, 30 s visits reaching ~20.5 mag, a ZTF reference coadd instead of Pan-STARRS1,
masked pixels stored as NaN, and cutouts of 35x35 native pixels, the smallest odd stamp that
holds the 29 x 1.19" = 34.5" footprint of the model grid (`rbcore.ztf.alerts`), so that
simulated cutouts and real alert stamps go through the same resampling onto the model grid.

Labelling schemes (`LABEL_SCHEMES`): which categories a survey's training labels call real.
In the Tomo-e scheme (Takahashi et al. 2022) only injected stars are labelled real; variable
stars and supernovae of the detection sample carry a bogus label (label noise) and moving
objects are bogus. In ZTF's scheme (braai, Duev et al. 2019, MNRAS 489, 3582, Sect. 2.1)
variable stars, transients (also on a galaxy core) and asteroids are real.
"""

from __future__ import annotations

from rbcore.simulation.config import REAL_CATEGORIES, SurveyConfig, _bogus_mix

PRESET_NAMES = ("tomoe", "ztf")

# Categories labelled real in each scheme's training data (see the module docstring).
LABEL_SCHEMES = {
    "tomoe": ("rand", "galx"),  # injections only; the matching decides (issue 12)
    "ztf": (*REAL_CATEGORIES, "asteroid"),  # braai: variables, transients, asteroids real
}

# Share of fading candidates (`isdiffpos` 'f': detected on ref - sci, a source fainter than in
# the reference) among the ZTF developer alerts' adaptation half (`split_alerts`, seed 0):
# 90 / 343 = 0.262 +- 0.024 (all 750 alerts: 197 = 0.263), printed by
# `benchmarks/ztf_seeing.py`. `rbcore.ztf.simulated.add_fading` draws this share.
ZTF_FADING_FRACTION = 0.262
# Share of the simulated ZTF variable stars fainter in the science image than in the reference
# ("variable_fading"): the reference is a coadd of 15-40 epochs (Masci et al. 2019), close to
# the star's mean flux, so at a random later epoch a variable is about as often fainter than
# it as brighter (a symmetric light curve about its mean; our choice, no census used).
ZTF_VARIABLE_FADING_SHARE = 0.5
# Variables and transients among the non-injection rows of the ZTF-like training set (see
# `ztf_config`'s train_astro_fraction).
ZTF_TRAIN_ASTRO_FRACTION = 0.3


def _ztf_bogus_mix() -> dict[str, float]:
    # The Tomo-e mix (rbcore.simulation.config._bogus_mix) without the calibration that cut
    # the look-alikes Tomo-e labels bogus: noise peaks and masked-reference stars back at the
    # census values the Tomo-e calibration started from (config.py: 0.12 and 0.08), and
    # asteroids, real in ZTF's scheme, at 0.1 of the mix (~10 % of the non-injection rows,
    # ~5 % of the reals after relabelling; braai's reals include known asteroids, Duev et
    # al. 2019, Sect. 2.1; the share is an assumption).
    mix = _bogus_mix()
    mix.update(asteroid=0.1, noise=0.12, mask_ref=0.08)
    # Negative dips (`scene.build_negative_dip`), found on ref - new as ZTF's isdiffpos 'f'
    # candidates: the non-injection rows stand for ZTF's alert stream, so the dips take the
    # share of 'f' candidates among them that the fading variables leave, to reach the
    # alerts' `ZTF_FADING_FRACTION` (0.262) in all: d = (0.262 - astro * var * fading) /
    # (1 - astro) of the bogus rows (astro 0.3, variables 0.6 of it, half of those fading:
    # d = 0.246), i.e. a weight d / (1 - d) times the other classes' sum.
    c = SurveyConfig()
    fading_var = ZTF_TRAIN_ASTRO_FRACTION * c.bogus_noise_causes[0] * ZTF_VARIABLE_FADING_SHARE
    d = (ZTF_FADING_FRACTION - fading_var) / (1 - ZTF_TRAIN_ASTRO_FRACTION)
    mix["negative_dip"] = d / (1 - d) * sum(mix.values())
    return mix


def ztf_config() -> SurveyConfig:
    """The ZTF-like survey: every number with its source (see also the module docstring).

    Seeing comes from the developer alerts' own `fwhm` (SExtractor FWHM in 1.01" pixels) of
    the 119 asteroid matches, isolated point sources by a criterion independent of any model:
    percentiles 5/50/95 = 1.86"/2.41"/5.34", lognormal sigma 0.295 (measured with
    `benchmarks/ztf_seeing.py`); Bellm et al. (2019) quote a median 2.0" in r.
    """
    return SurveyConfig(
        pixel_scale=1.01,  # arcsec/pixel, ZTF camera (Bellm et al. 2019, PASP 131, 018002)
        cutout_size=35,  # smallest odd stamp holding the 34.17 px model footprint (see above)
        n_detectors=64,  # 16 CCDs x 4 readout quadrants, processed per quadrant (Masci 2019)
        detector_shape=(3080, 3072),  # pixels of a quadrant image (Masci et al. 2019, PASP 131)
        seeing_median=2.4,  # arcsec, median fwhm of the asteroid-matched alerts (2.41")
        seeing_min=1.8,  # arcsec, their 5th percentile (1.86")
        seeing_max=5.3,  # arcsec, their 95th percentile (5.34")
        seeing_night_scatter=0.28,  # with the chip and exposure terms: total 0.295, the
        #                             lognormal sigma of the asteroid matches' fwhm
        limiting_mag=20.5,  # 5-sigma in 30 s, r ~20.6 / g ~20.8 (Bellm et al. 2019)
        sky_mag=20.5,  # mag/arcsec^2, r-band Palomar sky at median lunar phase (assumption)
        exposure_s=30.0,  # s per visit (Bellm et al. 2019)
        n_frames=1,  # one CCD read per visit
        read_noise_e=8.0,  # e-, ZTF CCD read noise < 10 e- (Dekany et al. 2020, PASP 132)
        saturation_mag=12.5,  # mag, stars brighter saturate in 30 s (Masci et al. 2019)
        reference="ztf",  # ZTF's own reference coadd (Masci et al. 2019, Sect. 3.5)
        tomoe_ref_depth_gain=1.5,  # mag: >= 15 coadded epochs, 2.5 log10(sqrt(15)) = 1.47
        #                            (Masci et al. 2019: references from 15-40 frames)
        ref_mask_nan_fraction=1.0,  # ZTF stamps carry masked pixels as NaN (shared data README)
        template_on_science_scale=True,  # ZTF's alert template is the reference resampled,
        #   gain-matched and background-matched to the science image for the subtraction
        #   (Masci et al. 2019, PASP 131, 018003, image differencing); measured on the 750
        #   developer alerts: template median / science median 0.998 (5-95 %: 0.978-1.009),
        #   template noise / science noise 0.25 (`benchmarks/ztf_braai.py stamps`)
        masks_shared=True,  # ZTF's three stamps carry one mask: 43,060 of the 44,136 NaN
        #   pixels of the developer alerts are NaN in all three stamps, the rest belong to the
        #   one alert whose template holds the blank value there (`ztf_braai.py stamps`)
        bogus_mix=_ztf_bogus_mix(),
        train_astro_fraction=ZTF_TRAIN_ASTRO_FRACTION,  # variables and transients among the
        #   non-injection rows: real in ZTF's scheme, a sizeable real population as in
        #   braai's training set, whose reals are mostly such sources (Duev et al. 2019,
        #   Sect. 2.1; share: assumption)
        variable_fading_share=ZTF_VARIABLE_FADING_SHARE,  # ZTF also detects on ref - sci
        #   (isdiffpos 'f'; Masci et al. 2019): half the variables fade (see the constant)
    )


def survey_preset(name: str) -> SurveyConfig:
    """The `SurveyConfig` of a preset: "tomoe" (default, `SurveyConfig()`) or "ztf"."""
    if name == "tomoe":
        return SurveyConfig()
    if name == "ztf":
        return ztf_config()
    raise ValueError(f"unknown survey preset {name!r}; expected one of {PRESET_NAMES}")
