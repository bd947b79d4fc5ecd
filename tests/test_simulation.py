"""Tests of the simulated survey (rbcore.simulation*): shapes, determinism, physics, rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rbcore import simulation
from rbcore.simulation import (
    ALL_CATEGORIES,
    BOGUS_CATEGORIES,
    TALK_FP_CATEGORY,
    SurveyConfig,
    simulate_candidates,
    write_test_set,
    write_training_set,
)
from rbcore.simulation import write as simulation_io
from rbcore.simulation.config import NEIGHBOUR_CLASSES, talk_fp_rate
from rbcore.simulation.render import moffat_mog_table, psf_sum_sq, render_points, sersic_mog_table
from rbcore.summary import label_noise_summary

TALK_LABELS = {
    "Real?",
    "Mask in ref",
    "Bogus",
    "Low S/N",
    "Moving?",
    "Mask in sub",
    "Tracking error",
    "Unclear",
}


@pytest.fixture(scope="module")
def train():
    return simulate_candidates(6000, kind="train", seed=11)


@pytest.fixture(scope="module")
def reals():
    # injections only, to test the photometry; more masked, saturated-star and undetected
    # injections than by default, to test them
    cfg = SurveyConfig(
        neighbour_share={"masked_new": 0.05, "bright_star": 0.05}, inject_mag_beyond_limit=1.5
    )
    return simulate_candidates(1500, kind="train", seed=12, real_fraction=1.0, config=cfg)


@pytest.mark.parametrize("kind", ["train", "test", "stream"])
def test_shapes_dtypes_columns(kind):
    images, params = simulate_candidates(150, kind=kind, seed=1)
    assert images.shape == (150, 29, 29, 3) and images.dtype == np.float32
    assert len(params) == 150
    for col in (
        "object_type",
        "category",
        "is_real_true",
        "label_is_wrong",
        "mag",
        "snr",
        "seeing_new",
        "detector_id",
        "night",
        "x",
        "y",
        "weight",
    ):
        assert col in params.columns, col
    assert set(params["category"]) <= set(ALL_CATEGORIES)
    assert params["detector_id"].between(0, 83).all()
    assert not np.isinf(images).any()


def test_determinism_and_thread_independence(monkeypatch):
    monkeypatch.setattr(simulation.survey, "CHUNK", 1000)
    a, pa = simulate_candidates(2500, kind="stream", seed=5, n_threads=1)
    b, pb = simulate_candidates(2500, kind="stream", seed=5, n_threads=2)  # 3 chunks
    assert np.array_equal(a, b, equal_nan=True)
    pd.testing.assert_frame_equal(pa, pb)
    c, _ = simulate_candidates(300, kind="stream", seed=6)
    assert not np.array_equal(a[:300], c, equal_nan=True)


def test_mog_fits_are_accurate():
    # The Moffat and Sérsic mixtures hold their flux and the PSF's FWHM.
    w, s = moffat_mog_table()
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    r = np.array([0.0, 0.5])[:, None, None]  # profile at r = FWHM/2 must be half the centre
    prof = (w / (2 * np.pi * s**2) * np.exp(-0.5 * (r / s) ** 2)).sum(-1)  # [2, n_beta]
    assert np.all(np.abs(prof[1] / prof[0] - 0.5) < 0.03)
    ws, _ = sersic_mog_table()
    np.testing.assert_allclose(ws.sum(1), 1.0, atol=1e-6)


def test_render_points_conserves_flux_and_nea():
    n = 4
    w, s = moffat_mog_table()
    pw, ps = np.repeat(w[:1], n, 0), np.repeat(s[:1] * 3.0, n, 0)
    img = render_points(
        np.full((n, 1), 40.0), np.full((n, 1), 40.0), np.full((n, 1), 1000.0), pw, ps, 81
    )
    np.testing.assert_allclose(img.sum((1, 2)), 1000.0, rtol=2e-3)
    psf = img[0] / 1000.0
    np.testing.assert_allclose((psf**2).sum(), psf_sum_sq(pw, ps)[0], rtol=2e-2)


def test_injected_flux_recovered_in_sub(reals):
    images, p = reals
    ok = (
        (p["noise_cause"] == "")
        & (p["neighbour"] == "")
        & (p["category"] == "rand")
        & (p["mag"] < 15.0)
    )
    assert ok.sum() > 50
    flux = 10 ** (-0.4 * (p.loc[ok, "mag"] - p.loc[ok, "zp_new"]))
    ratio = np.nansum(images[ok.to_numpy(), :, :, 2], axis=(1, 2)) / flux
    assert abs(np.median(ratio) - 1.0) < 0.05


def test_snr_falls_with_magnitude_and_threshold(reals):
    _, p = reals
    clean = p[(p["noise_cause"] == "") & (p["neighbour"] == "") & (p["category"] == "rand")]
    rho = stats.spearmanr(clean["mag"], clean["det_snr"]).statistic
    assert rho < -0.8
    ratio = (clean["det_snr"] / clean["snr"])[clean["snr"].between(10, 50)]
    assert 0.85 < ratio.median() < 1.05  # a Gaussian filter on a Moffat PSF: near-optimal
    assert clean.loc[clean["snr"] > 9, "detected"].mean() > 0.95
    faint = p[p["noise_cause"] == "undetected"]
    assert len(faint) > 50 and (faint["detected"] == 0).all()
    assert (faint["mag"] > faint["m_lim"]).all()  # lost injections lie past the 5-sigma limit
    # the limiting magnitude of the median-seeing sky is the configured one
    assert abs(p["m_lim"].median() - SurveyConfig().limiting_mag) < 0.4


def test_invisible_injections(reals):
    images, p = reals
    masked = (p["noise_cause"] == "masked_new").to_numpy()
    assert masked.sum() > 20 and np.isnan(images[masked, 14, 14, 2]).mean() > 0.9
    sat = p[p["noise_cause"] == "bright_star"]
    assert len(sat) > 10 and (sat["det_snr"] > 50).all()  # the star dominates the cutout
    # a wrong real label's cause is the neighbour the injection was placed on, if any
    nb = p[(p["label"] == 1) & (p["label_is_wrong"] == 1) & (p["neighbour"] != "")]
    assert len(nb) > 20 and (nb["noise_cause"] == nb["neighbour"]).all()


def test_bogus_are_detections(train):
    _, p = train
    bogus = p[p["object_type"] == "artifact"]
    assert bogus["detected"].mean() > 0.98
    assert (
        bogus.loc[bogus["detected"] == 1, "det_snr"] >= SurveyConfig().detection_threshold
    ).all()


def test_label_noise_columns_consistent(train):
    _, p = train
    wrong = p["label"] != p["is_real_true"]
    assert (wrong == (p["label_is_wrong"] == 1)).all()
    assert (wrong == (p["noise_cause"] != "")).all()  # a cause for every wrong label, only
    assert set(p.loc[wrong, "noise_cause"]) <= set(simulation.labels.WRONG_LABEL_CAUSES)
    real, bogus = p[p["label"] == 1], p[p["label"] == 0]
    assert set(real["category"]) <= {"rand", "galx"}  # real labels: matched injections only
    assert (real["object_type"] != "artifact").all() and (bogus["object_type"] == "artifact").all()
    astro = bogus[bogus["noise_cause"] == "astrophysical"]
    assert set(astro["category"]) <= {"variable_star", "sn_host", "sn_hostless"}
    unmatched = bogus[bogus["noise_cause"] == "unmatched_injection"]
    assert len(unmatched) > 0 and set(unmatched["category"]) <= {"rand", "galx"}
    assert (unmatched["match_dist"] > SurveyConfig().match_radius).all()
    matched = real[real["detected"] == 1]
    assert (matched["match_dist"] <= SurveyConfig().match_radius).all()


def test_label_noise_near_talk_rates(train):
    # The default survey's matching gives ~1.0 % wrong real and ~0.6 % wrong bogus labels
    # (the talk). Not drawn at these rates: they come out of the scene and the matching.
    s = label_noise_summary(train[1])
    n_real = (train[1]["label"] == 1).sum()
    n_bogus = (train[1]["label"] == 0).sum()
    for key, n, rate in (("real", n_real, 0.010), ("bogus", n_bogus, 0.006)):
        sd = np.sqrt(rate / n)  # Poisson error of the count of wrong labels
        assert abs(s[f"label_noise_rate_{key}"] - rate) < 0.3 * rate + 3 * sd, (key, s)


def test_noise_rates_come_out_of_matching():
    # Same seed, same images: only the matching radius or the scene changes the labels.
    a_img, a = simulate_candidates(
        3000, kind="train", seed=21, config=SurveyConfig(match_radius=1.0)
    )
    b_img, b = simulate_candidates(
        3000, kind="train", seed=21, config=SurveyConfig(match_radius=2.5)
    )
    assert np.array_equal(a_img, b_img, equal_nan=True)
    n_a = (a["noise_cause"] == "unmatched_injection").sum()
    n_b = (b["noise_cause"] == "unmatched_injection").sum()
    assert n_a > n_b  # a wider radius matches more injections to their detections
    # injections on cosmic rays: the ray outshines all but bright injections
    cfg = SurveyConfig(neighbour_share={"cosmic_ray": 0.5})
    _, c = simulate_candidates(2000, kind="train", seed=22, config=cfg, real_fraction=1.0)
    cr = c[c["neighbour"] == "cosmic_ray"]
    assert len(cr) > 800
    assert (cr["is_real_true"] == 0).mean() > 0.2
    bad = cr[(cr["label_is_wrong"] == 1) & (cr["label"] == 1)]
    assert (
        len(bad) > 100 and (bad["det_snr"] > 2 * bad["snr"]).all()
    )  # the matched peak is not the injection's
    clean = c[c["neighbour"] == ""]
    assert clean["label_is_wrong"].mean() < 0.03
    # no neighbours, no astrophysical sources, injections above the limit: few wrong labels
    cfg = SurveyConfig(neighbour_share={}, train_astro_fraction=0.0)
    _, d = simulate_candidates(2000, kind="train", seed=23, config=cfg)
    assert not set(d["noise_cause"]) & (set(NEIGHBOUR_CLASSES) | {"astrophysical"})


def test_train_reproducible_and_thread_independent(monkeypatch):
    monkeypatch.setattr(simulation.survey, "CHUNK", 700)
    a, pa = simulate_candidates(1500, kind="train", seed=31, n_threads=1)
    b, pb = simulate_candidates(1500, kind="train", seed=31, n_threads=2)
    assert np.array_equal(a, b, equal_nan=True)
    pd.testing.assert_frame_equal(pa, pb)


def test_lookalike_rates_from_the_talk():
    assert talk_fp_rate("Moving?") == pytest.approx(36_337 / 57_422_807 * 29 / 341)
    assert talk_fp_rate("Moving?") == pytest.approx(5.38e-5, rel=1e-2)
    rates = SurveyConfig().lookalike_rates
    assert sum(rates.values()) < 2e-4  # the floor stays below the paper's VAT FPR
    assert rates["asteroid"] == pytest.approx(talk_fp_rate("Moving?"))
    p = simulation.labels.bogus_probabilities(SurveyConfig(), "test")
    assert p.sum() == pytest.approx(1.0)
    for c, r in rates.items():
        assert p[BOGUS_CATEGORIES.index(c)] == pytest.approx(r)


def test_category_fractions_match_config():
    cfg = SurveyConfig()
    rng = np.random.default_rng(0)
    cat, *_ = simulation.labels.plan_rows(rng, 200_000, "test", cfg, 1.0, 0.0)
    counts = pd.Series(cat).value_counts()
    probs = simulation.labels.bogus_probabilities(cfg, "test")
    for c, p in zip(BOGUS_CATEGORIES, probs, strict=True):
        assert abs(counts.get(c, 0) / 200_000 - p) <= 4 * np.sqrt(p * (1 - p) / 200_000)


def test_stream_weights_restore_rates():
    cfg = SurveyConfig()
    _, p = simulate_candidates(4000, kind="stream", seed=3, boost=100.0)
    var = p["category"] == "variable_star"
    assert var.sum() > 30  # boosted from ~1 to ~80
    est = (p["weight"] * var).sum() / p["weight"].sum()
    assert abs(est / cfg.stream_variable_rate - 1) < 0.4  # Poisson error of ~80 boosted rows
    assert abs(p["weight"].mean() - 1) < 0.05
    assert (p.loc[~var & ~p["category"].str.startswith("sn_"), "weight"] > 1).all()


def test_test_kind_is_clean_and_realistic():
    _, p = simulate_candidates(400, kind="test", seed=4, real_fraction=0.5)
    assert (p["label_is_wrong"] == 0).all()
    real = p[p["label"] == 1]
    assert set(real["category"]) <= {"sn_host", "sn_hostless"}
    assert real["detected"].mean() > 0.97
    # Euclidean counts: more SNe near the limit than bright ones
    assert (real["mag"] > real["m_lim"] - 1.5).mean() > 0.5


def test_talk_fp_mapping_complete():
    assert set(TALK_FP_CATEGORY) == set(ALL_CATEGORIES)
    assert set(TALK_FP_CATEGORY.values()) <= TALK_LABELS


def test_tomoe_reference_switch():
    cfg = SurveyConfig(reference="tomoe")
    images, p = simulate_candidates(100, kind="train", seed=2, config=cfg)
    assert images.shape == (100, 29, 29, 3)
    assert p["seeing_ref"].min() >= cfg.seeing_min
    with pytest.raises(ValueError, match="reference"):
        simulate_candidates(10, kind="train", seed=2, config=SurveyConfig(reference="hst"))


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        simulate_candidates(10, kind="nightly", seed=0)
    with pytest.raises(ValueError, match="bogus_mix"):
        SurveyConfig(bogus_mix={"aliens": 1.0}).validate()


def test_writers_resume_and_are_deterministic(tmp_path, monkeypatch):
    monkeypatch.setattr(simulation_io, "WRITE_CHUNK", 64)
    out = tmp_path / "train"
    r1 = write_training_set(out, 300, seed=9, n_detectors=3)
    assert r1["written"] == [0, 1, 2]
    first = np.load(out / "images1.npy")
    table = pd.read_csv(out / "params1.csv")
    assert len(first) == len(table) == 100
    assert set(table["object_type"]) <= {"artifact", "rand_artificial_real", "galx_artificial_real"}
    (out / "images1.npy").unlink()  # an interrupted run: the pair is incomplete
    (out / "images1.npy.partial").write_bytes(b"garbage")
    r2 = write_training_set(out, 300, seed=9, n_detectors=3)
    assert r2["written"] == [1] and r2["skipped"] == [0, 2]
    assert np.array_equal(np.load(out / "images1.npy"), first, equal_nan=True)
    assert not (out / "images1.npy.partial").exists()
    t = write_test_set(tmp_path / "test", 5, 40, seed=1)
    assert t["written"] == ["test_real", "test_bogus"]
    assert np.load(tmp_path / "test" / "test_bogus.npy").shape == (40, 29, 29, 3)
    assert (pd.read_csv(tmp_path / "test" / "test_real_params.csv")["label"] == 1).all()


def test_reference_sharper_and_deeper_than_new(train):
    images, p = train
    rows = (p["category"] == "star_residual").to_numpy()
    assert rows.sum() > 50
    ref, new = images[rows, :, :, 0], images[rows, :, :, 1]
    sky = np.nanmedian(new, axis=(1, 2), keepdims=True)

    def core_fraction(x):  # share of the star's light in the central 3x3 pixels
        x = np.nan_to_num(x)
        return x[:, 13:16, 13:16].sum((1, 2)) / x[:, 7:22, 7:22].sum((1, 2))

    assert np.median(core_fraction(ref)) > 1.5 * np.median(core_fraction(new - sky))
    # PS1 seeing (1.0-1.4") is always better than Tomo-e's (2.5-6")
    assert (p["seeing_ref"] < p["seeing_new"]).all()


def test_writers_refuse_a_set_made_with_other_settings(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(simulation_io, "WRITE_CHUNK", 64)
    out = tmp_path / "train"
    write_training_set(out, 60, seed=9, n_detectors=2)
    again = write_training_set(out, 60, seed=9, n_detectors=2)
    assert again["skipped"] == [0, 1]  # the same settings: kept
    with pytest.raises(ValueError, match=rf"{out}: holds a train set .*seed 9 -> 10"):
        write_training_set(out, 60, seed=10, n_detectors=2)
    with pytest.raises(ValueError, match=r"n 60 -> 90; n_detectors 2 -> 3"):
        write_training_set(out, 90, seed=9, n_detectors=3)
    with pytest.raises(ValueError, match=r"config\.limiting_mag 18\.0 -> 17\.0"):
        write_training_set(out, 60, seed=9, n_detectors=2, config=SurveyConfig(limiting_mag=17.0))
    assert json.loads((out / "simulated_train.json").read_text())["seed"] == 9
    (out / "simulated_train.json").unlink()  # data from an older writer: no record
    with pytest.raises(ValueError, match=r"no simulated_train\.json"):
        write_training_set(out, 60, seed=9, n_detectors=2)
    test = tmp_path / "test"
    write_test_set(test, 3, 5, seed=1)
    with pytest.raises(ValueError, match=r"holds a test set .*n_bogus 5 -> 6; seed 1 -> 2"):
        write_test_set(test, 3, 6, seed=2)


def test_label_noise_summary_counts_causes(train):
    _, p = train
    s = label_noise_summary(p)
    real, bogus = p[p["label"] == 1], p[p["label"] == 0]
    assert s["n_wrong_real"] == (real["is_real_true"] == 0).sum()
    assert s["n_wrong_bogus"] == (bogus["is_real_true"] == 1).sum()
    assert sum(s["wrong_by_cause_real"].values()) == s["n_wrong_real"]
    assert sum(s["wrong_by_cause_bogus"].values()) == s["n_wrong_bogus"]
    assert s["label_noise_rate_real"] == pytest.approx(s["n_wrong_real"] / len(real))
    with pytest.raises(ValueError, match="noise_cause"):
        label_noise_summary(p.drop(columns="noise_cause"))
    broken = p.copy()
    broken.loc[broken.index[0], "label_is_wrong"] = 1 - broken["label_is_wrong"].iloc[0]
    with pytest.raises(ValueError, match="label_is_wrong"):
        label_noise_summary(broken)
