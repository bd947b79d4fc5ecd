"""The ZTF-like survey preset, its simulation on the model grid, the alert split, VADA."""

import warnings

import numpy as np
import pandas as pd
import pytest

from rbcore.simulation import SurveyConfig, simulate_candidates
from rbcore.simulation.presets import (
    LABEL_SCHEMES,
    ZTF_FADING_FRACTION,
    survey_preset,
    ztf_config,
)
from rbcore.ztf import alerts as za
from rbcore.ztf import compare, simulated
from rbcore.ztf import fading as fading_mod


def test_presets_tomoe_is_default_and_ztf_differs_where_the_issue_says():
    assert survey_preset("tomoe") == SurveyConfig()
    z = survey_preset("ztf")
    z.validate()
    assert z.pixel_scale == za.ZTF_PIXEL_SCALE and z.reference == "ztf"
    assert 2.0 <= z.seeing_median <= 2.5 and 20.0 <= z.limiting_mag <= 21.0
    # the 35x35 stamp holds the model grid's footprint (29 x 1.19 / 1.01 = 34.2 px)
    assert z.cutout_size >= 29 * za.TOMOE_PIXEL_SCALE / za.ZTF_PIXEL_SCALE
    assert "asteroid" in LABEL_SCHEMES["ztf"] and "asteroid" not in LABEL_SCHEMES["tomoe"]
    with pytest.raises(ValueError, match="unknown survey preset"):
        survey_preset("lsst")


def test_ztf_simulation_uses_the_alerts_resampling_and_ztf_labels():
    images, table = simulated.simulate_ztf_training(400, seed=3, n_detectors=4, n_nights=4,
                                                    fading_fraction=ZTF_FADING_FRACTION)  # fmt: skip
    assert images.shape == (400, 29, 29, 3) and images.dtype == np.float32
    # same stamps through the alerts' resampling give the same cutouts
    cfg = ztf_config().replace(n_detectors=4)
    stamps, _ = simulate_candidates(100, kind="train", seed=3, config=cfg, night=0)
    assert stamps.shape[1:] == (35, 35, 3)
    # rows reversed in time by add_fading (the classes found on ref - sci are rendered so)
    negative = table["category"].isin(simulated.NEGATIVE_CATEGORIES).to_numpy()[:100]
    fading = (table["is_fading"].to_numpy()[:100] == 1) & ~negative
    assert fading.any() and (~fading).any()
    swapped = stamps.copy()
    swapped[fading, ..., :2] = stamps[fading][..., ::-1][..., 1:]  # (ref, new) -> (new, ref)
    np.testing.assert_array_equal(images[:100], za.resample_to_tomoe(swapped))
    astro = table["category"].isin(("variable_star", "sn_host", "sn_hostless", "asteroid"))
    assert astro.any() and (table.loc[astro, "label"] == 1).all()
    assert (table.loc[table["category"] == "star_residual", "label"] == 0).all()
    assert table["seeing_new"].nunique() > 100 and table["night"].nunique() == 4
    again, t_again = simulated.simulate_ztf_training(400, seed=3, n_detectors=4, n_nights=4,
                                                     fading_fraction=ZTF_FADING_FRACTION)  # fmt: skip
    np.testing.assert_array_equal(np.nan_to_num(images), np.nan_to_num(again))
    pd.testing.assert_frame_equal(table, t_again)


def test_fading_share_matches_the_preset_within_binomial_error():

    n = 1200
    _, table = simulated.simulate_ztf_training(n, seed=5, n_detectors=4, n_nights=2,
                                               fading_fraction=ZTF_FADING_FRACTION)  # fmt: skip
    negative = table["category"].isin(simulated.NEGATIVE_CATEGORIES).to_numpy()
    assert (table.loc[negative, "is_fading"] == 1).all()
    fading = table["is_fading"].to_numpy() * ~negative  # reversed in time by add_fading
    eligible = table["category"].isin(fading_mod.FADING_CATEGORIES).to_numpy()
    p = ZTF_FADING_FRACTION / eligible.mean()
    se = np.sqrt(eligible.sum() * p * (1 - p)) / n
    assert abs(fading.mean() - ZTF_FADING_FRACTION) < 4 * se
    assert not fading[~eligible].any()  # asteroids, cosmic rays... never fade
    assert not table.loc[table["category"] == "asteroid", "is_fading"].any()
    _, none = simulated.simulate_ztf_training(200, seed=5, n_detectors=4, n_nights=1)
    none_negative = none["category"].isin(simulated.NEGATIVE_CATEGORIES)
    assert none.loc[~none_negative, "is_fading"].sum() == 0


def test_negative_subtraction_classes_share_and_labels():
    # presets: half the variables fade; negative dips bring the share of candidates found on
    # ref - sci among the non-injection rows to the alerts' ZTF_FADING_FRACTION
    from rbcore.simulation import labels

    n = 200_000
    cat, *_ = labels.plan_rows(np.random.default_rng(0), n, "train", ztf_config(), 1.0, None)
    rest = ~np.isin(cat, ("rand", "galx"))
    f = np.isin(cat[rest], simulated.NEGATIVE_CATEGORIES).mean()
    assert abs(f - ZTF_FADING_FRACTION) < 4 * np.sqrt(f * (1 - f) / rest.sum())
    var = np.isin(cat, ("variable_star", "variable_fading"))
    assert abs((cat[var] == "variable_fading").mean() - 0.5) < 4 * np.sqrt(0.25 / var.sum())
    # the Tomo-e survey has neither class
    tomoe, *_ = labels.plan_rows(
        np.random.default_rng(0), 20_000, "train", SurveyConfig(), 1.0, None
    )
    assert not np.isin(tomoe, simulated.NEGATIVE_CATEGORIES).any()
    assert "variable_fading" in LABEL_SCHEMES["ztf"] and "negative_dip" not in LABEL_SCHEMES["ztf"]


def test_negative_subtraction_classes_are_rendered_as_ztf_stores_them():
    # found on ref - sci: the stored sub is ref - sci, positive at the centre; a fading
    # variable is brighter in ref than in new, a dip in new lies below its sky
    stamps, table = simulated.simulate_ztf_stamps(600, seed=6, n_detectors=4, n_nights=2)
    c = stamps.shape[1] // 2
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a fully masked core is NaN
        core = np.nanmean(stamps[:, c - 1 : c + 2, c - 1 : c + 2], axis=(1, 2))  # [n, 3]
    sky = np.nanmedian(stamps, axis=(1, 2))
    cats = table["category"].to_numpy()
    fade, dip = cats == "variable_fading", cats == "negative_dip"
    assert fade.sum() >= 5 and dip.sum() >= 5
    assert (table.loc[fade, "label"] == 1).all() and (table.loc[dip, "label"] == 0).all()
    assert (table.loc[fade | dip, "is_fading"] == 1).all()
    detected = table["detected"].to_numpy() == 1
    assert (core[fade & detected, 2] > 0).all() and (core[dip & detected, 2] > 0).all()
    assert (core[fade, 0] - sky[fade, 0] > core[fade, 1] - sky[fade, 1]).mean() > 0.9
    assert (core[dip & detected, 1] < core[dip & detected, 0]).mean() > 0.9
    defect = dip & detected & (core[:, 0] - sky[:, 0] < 20.0)  # no star in ref: a CCD defect
    assert defect.sum() >= 3 and (core[defect, 1] < sky[defect, 1]).all()


def test_fading_row_has_the_source_in_ref_and_a_positive_sub():
    cfg = ztf_config().replace(n_detectors=4)
    stamps, table = simulate_candidates(300, kind="test", seed=2, config=cfg, night=0,
                                        real_fraction=0.5)  # fmt: skip
    out, tab = fading_mod.add_fading(stamps, table, fraction=0.4, seed=7)
    assert stamps is not out and tab is not table and "is_fading" not in table
    f = tab["is_fading"].to_numpy() == 1
    sn = table["category"].isin(("sn_host", "sn_hostless")).to_numpy()
    bright = sn & (table["mag"] < 19.5).to_numpy()
    rows = np.flatnonzero(f & bright)
    assert len(rows) > 3
    c = cfg.cutout_size // 2
    for i in rows:
        ref, new, sub = (np.nan_to_num(out[i, ..., k]) for k in range(3))
        core = (slice(c - 1, c + 2), slice(c - 1, c + 2))
        # 3x3 sums at > 3 sigma (a sum of 9 pixels has 3 x the pixel noise, robust: MAD)
        for img in (sub, ref):  # stored ref - sci positive at the source; the source in ref
            med = np.median(img)
            sigma = 1.4826 * np.median(np.abs(img - med))
            assert (img[core] - med).sum() > 3 * 3 * sigma
        np.testing.assert_array_equal(out[i, ..., 0], stamps[i, ..., 1])  # ref = the SN epoch
        np.testing.assert_array_equal(out[i, ..., 1], stamps[i, ..., 0])  # new = without it
    np.testing.assert_array_equal(out[~f], stamps[~f])
    again, tab2 = fading_mod.add_fading(stamps, table, fraction=0.4, seed=7)
    np.testing.assert_array_equal(np.nan_to_num(out), np.nan_to_num(again))
    assert not np.array_equal(tab2["is_fading"], fading_mod.add_fading(
        stamps, table, fraction=0.4, seed=8)[1]["is_fading"])  # fmt: skip
    with pytest.raises(ValueError, match="fraction"):
        fading_mod.add_fading(stamps, table, fraction=1.0, seed=0)


def test_relabel_tomoe_keeps_injection_labels_and_marks_astro_bogus():
    t = pd.DataFrame(
        {
            "category": ["rand", "variable_star", "asteroid", "dipole"],
            "label": [1, 0, 0, 0],
            "is_real_true": [1, 1, 0, 0],
            "noise_cause": ["", "astrophysical", "", ""],
        }
    )
    z = simulated.relabel(t, "ztf")
    assert z["label"].tolist() == [1, 1, 1, 0] and z["label_is_wrong"].sum() == 0
    with pytest.raises(ValueError, match="labelling scheme"):
        simulated.relabel(t, "lsst")


def test_split_alerts_keeps_objects_on_one_side():
    ids = np.array([f"ZTF18a{i % 37:04d}" for i in range(300)])
    adapt = simulated.split_alerts(ids, fraction=0.5, seed=0)
    assert set(ids[adapt]).isdisjoint(ids[~adapt])
    assert 0.25 < adapt.mean() < 0.75
    assert not np.array_equal(adapt, simulated.split_alerts(ids, fraction=0.5, seed=1))
    with pytest.raises(ValueError):
        simulated.split_alerts(ids, fraction=1.0)


def test_registration_threshold_passes_the_fpr_of_simulated_bogus():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=10_000)
    labels = np.zeros(10_000, int)
    thr = simulated.registration_threshold(logits, labels, fpr=0.029)
    p = 1 / (1 + np.exp(-logits))
    assert abs((p >= thr).mean() - 0.029) < 0.002
    with pytest.raises(ValueError, match="no bogus"):
        simulated.registration_threshold(logits, np.ones(10_000, int))


def test_train_and_compare_on_held_out_alerts(tmp_path):
    from rbcore.train.config import TrainConfig

    images, table = simulated.simulate_ztf_training(600, seed=1, n_detectors=5, n_nights=2)
    rng = np.random.default_rng(0)
    n = 40
    alert_images = images[rng.choice(600, n)]
    cfg = TrainConfig(epochs=1, batch_size=32, unlabeled_batch_size=32, patience=0)
    vada = TrainConfig(epochs=1, batch_size=32, unlabeled_batch_size=32, patience=0, alpha=1.0,
                       unlabeled_pool="unlabeled")  # fmt: skip
    with pytest.raises(ValueError, match="unlabeled_pool"):
        simulated.train_ztf_models(images, table, alert_images, config=cfg, vada_config=cfg,
                                   run_dir=tmp_path)  # fmt: skip
    res = simulated.train_ztf_models(
        images, table, alert_images, config=cfg, vada_config=vada, run_dir=tmp_path
    )
    assert set(res) == {"ztf_sim", "ztf_vada"}
    assert all(0 < r["threshold"] < 1 for r in res.values())
    loaded = compare.load_ztf_models(tmp_path / "models")
    assert loaded["ztf_vada"][1] == pytest.approx(res["ztf_vada"]["threshold"])
    meta = pd.DataFrame(
        {
            "drb": np.r_[np.full(20, 0.9), np.full(15, 0.1), np.full(5, np.nan)],
            "rb": np.linspace(0, 1, n),
            "weak_labels": np.r_[np.ones(10, int), -np.ones(30, int)],
            "objectId": [f"o{i}" for i in range(n)],
        }
    )
    alerts = za.AlertSet(alert_images, meta, tmp_path / "x.npz", False, 0)
    ev = np.arange(n) % 2 == 0
    report, logits = compare.held_out_report(loaded, alerts, ev, n_boot=20)
    assert set(report["models"]) == {"ztf_sim", "ztf_vada"}
    r = report["models"]["ztf_sim"]
    assert r["n_alerts"] == ev.sum() and len(logits["ztf_sim"]) == ev.sum()
    assert set(r) >= {"auc_vs_drb", "auc_ci", "spearman", "asteroid_recall"}
    assert report["rb_reference"]["n_alerts"] == ev.sum()
    assert report["split"]["n_eval"] == ev.sum()


def test_ztf_stamps_carry_the_template_and_masks_as_ztf_does():
    # presets.ztf_config: the template gain- and background-matched to the science image, one
    # NaN mask for the three stamps (measured on the developer alerts, benchmarks/ztf_braai.py)
    stamps, table = simulated.simulate_ztf_stamps(300, seed=4, n_detectors=4, n_nights=2)
    med = np.nanmedian(stamps, axis=(1, 2))
    noise = 1.4826 * np.nanmedian(np.abs(stamps - med[:, None, None, :]), axis=(1, 2))
    assert 0.97 < np.median(med[:, 0] / med[:, 1]) < 1.03  # real alerts: 0.998
    assert 0.15 < np.median(noise[:, 0] / noise[:, 1]) < 0.4  # real alerts: 0.25
    nan = np.isnan(stamps)
    assert nan.any() and (nan.any(-1) == nan.all(-1)).all()
    # the Tomo-e survey keeps its PS1 reference in its own units, masks per stamp
    assert not SurveyConfig().template_on_science_scale and not SurveyConfig().masks_shared
