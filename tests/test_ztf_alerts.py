"""rbcore.ztf: resampling geometry, NaN rule, loader, the shared alert file, report."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from rbcore import ztf
from rbcore.checkpoint import save_model
from rbcore.inference import load_models
from rbcore.model import build_model

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "ztf_alerts" / "ztf_alerts_dev.npz"
RATIO = ztf.TOMOE_PIXEL_SCALE / ztf.ZTF_PIXEL_SCALE


def _write(path, n=5, size=63, seed=0, **override):
    """A synthetic alert file with the shared file's arrays (random stamps, some NaN)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(100.0, 10.0, (n, size, size, 3)).astype(np.float32)
    images[0, : size // 3, :, 1] = np.nan  # a chip edge reaching into the footprint
    images[1, size // 2, size // 2, :] = np.nan  # one masked pixel at the centre
    arrays = {
        "images": images,
        "ids": np.array([f"{i:06d}" for i in range(n)]),
        "objectId": np.array([f"ZTF00{i:07d}" for i in range(n)]),
        "drb": np.linspace(0.0, 1.0, n).astype(np.float32),
        "weak_labels": np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8),
        "jd": 2459000.5 + np.arange(n, dtype=np.float64),
        "src": np.array(["synthetic"] * n),
    }
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


# ---------------------------------------------------------------------- resampling geometry
def test_overlap_weights_cover_the_tomoe_footprint():
    w = ztf.overlap_weights(63)
    assert w.shape == (29, 63)
    np.testing.assert_allclose(w.sum(1), RATIO, rtol=1e-12)  # each output pixel is 1.178 px
    np.testing.assert_allclose(w, w[::-1, ::-1], atol=1e-12)  # symmetric about the centre
    covered = np.nonzero(w.sum(0))[0]
    # 29 x 1.178 = 34.17 px centred on pixel 31 spans pixels 14..48 (edges 13.91..48.09)
    assert (covered.min(), covered.max()) == (14, 48)


def test_point_source_at_centre_stays_centred_and_keeps_its_flux():
    img = np.zeros((1, 63, 63, 3), np.float32)
    img[0, 31, 31, :] = 1000.0
    out = ztf.resample_to_tomoe(img)
    assert out.shape == (1, 29, 29, 3)
    assert np.unravel_index(out[0, :, :, 2].argmax(), (29, 29)) == (14, 14)
    np.testing.assert_allclose(out.sum(axis=(1, 2)), 1000.0, rtol=1e-6)
    np.testing.assert_allclose(out[0, :, :, 0], out[0, ::-1, ::-1, 0], atol=1e-4)


def test_weights_match_brute_force_supersampling():
    # Independent check: drop 1000 sub-pixels per input pixel and count where they fall.
    s = 1000
    x = (np.arange(63 * s) + 0.5) / s - 0.5  # sub-pixel centres, input pixel i spans i +- 0.5
    j = np.floor((x - (31 - 29 * RATIO / 2)) / RATIO).astype(int)
    ok = (j >= 0) & (j < 29)
    brute = np.zeros((29, 63))
    np.add.at(brute, (j[ok], np.floor(x[ok] + 0.5).astype(int)), 1.0 / s)
    np.testing.assert_allclose(ztf.overlap_weights(63), brute, atol=2.0 / s)


def test_offset_gaussian_lands_where_the_pixel_scales_say():
    yy, xx = np.mgrid[0:63, 0:63]
    dx = 5.0  # ZTF pixels right of centre -> 5 / 1.178 = 4.24 Tomo-e pixels
    g = np.exp(-((xx - 31 - dx) ** 2 + (yy - 31) ** 2) / (2 * 1.5**2))
    out = ztf.resample_to_tomoe(np.repeat(g[None, :, :, None], 3, -1))[0, :, :, 0]
    cx = (out.sum(0) * np.arange(29)).sum() / out.sum()
    cy = (out.sum(1) * np.arange(29)).sum() / out.sum()
    # Rebinning treats each input pixel as uniform, which moves a centroid by a small
    # fraction of a pixel (here 0.02 Tomo-e px = 0.02"), far below ZTF's ~2" seeing.
    assert abs(cx - (14 + dx / RATIO)) < 0.05 and abs(cy - 14) < 1e-3
    np.testing.assert_allclose(out.sum(), g.sum(), rtol=1e-5)


def test_linear_gradient_is_reproduced():
    # Exact expectation for a linear sky: area x value at the output pixel centre. Rebinning a
    # piecewise-constant image departs from it by at most slope x 1/8 input pixel per
    # unit area (a box edge cutting a pixel); the fitted slope is exact on average.
    yy, xx = np.mgrid[0:63, 0:63].astype(np.float64)
    f = 50.0 + 2.0 * xx - 0.5 * yy
    out = ztf.resample_to_tomoe(np.repeat(f[None, :, :, None], 3, -1))[0, :, :, 1]
    c = 31 + (np.arange(29) - 14) * RATIO
    expect = RATIO**2 * (50.0 + 2.0 * c[None, :] - 0.5 * c[:, None])
    assert np.abs(out - expect).max() <= RATIO**2 * (2.0 + 0.5) / 8
    slope_x = np.polyfit(np.arange(29), out.mean(0), 1)[0]
    slope_y = np.polyfit(np.arange(29), out.mean(1), 1)[0]
    np.testing.assert_allclose([slope_x, slope_y], np.array([2.0, -0.5]) * RATIO**3, rtol=5e-3)
    assert abs(out.mean() - expect.mean()) < 1e-3 * expect.mean()


# ---------------------------------------------------------------------------- NaN rule
def test_nan_where_more_than_half_the_footprint_is_masked():
    img = np.full((1, 63, 63, 3), 7.0, np.float32)
    m = 25  # input columns 0..24 masked: boundary at x = 24.5
    img[0, :, :m, :] = np.nan
    out = ztf.resample_to_tomoe(img)[0, :, :, 0]
    centres = 31 + (np.arange(29) - 14) * RATIO
    expect_nan = centres < m - 0.5  # masked fraction > 0.5 <=> footprint centre in the mask
    assert expect_nan.any() and not expect_nan.all()
    np.testing.assert_array_equal(np.isnan(out), np.broadcast_to(expect_nan, (29, 29)))
    # partly masked pixels that stay finite are rescaled to the full footprint
    np.testing.assert_allclose(out[:, ~expect_nan], 7.0 * RATIO**2, rtol=1e-6)


def test_isolated_masked_pixel_does_not_spread():
    img = np.full((1, 63, 63, 3), 3.0, np.float32)
    img[0, 40, 20, :] = np.nan
    out = ztf.resample_to_tomoe(img)
    assert np.isnan(out).sum(axis=(1, 2)).max() <= 1  # at most the one pixel it dominates
    assert np.isfinite(out).sum() >= 3 * (29 * 29 - 1)
    np.testing.assert_allclose(out[np.isfinite(out)], 3.0 * RATIO**2, rtol=1e-6)


def test_each_alert_resampled_alone_matches_the_batch(tmp_path):
    alerts = ztf.load_alerts(_write(tmp_path / "a.npz", n=4))
    with np.load(tmp_path / "a.npz") as d:
        one = ztf.resample_to_tomoe(d["images"][2:3])
    np.testing.assert_array_equal(one[0], alerts.images[2])


def test_sentinel_pixels_become_masked(tmp_path):
    images = np.random.default_rng(1).normal(0, 1, (2, 63, 63, 3)).astype(np.float32)
    images[0, :, :20, 0] = np.finfo(np.float32).min  # the blank value seen in one ZTF template
    alerts = ztf.load_alerts(_write(tmp_path / "s.npz", n=2, images=images))
    assert alerts.n_sentinel_masked == 63 * 20
    assert np.isnan(alerts.images[0, :, :3, 0]).all()
    assert np.nanmax(np.abs(alerts.images)) < 1e3  # no sentinel leaked into the average


# ------------------------------------------------------------------ the shared alert file
NO_SHARED = f"shared ZTF alert file absent at {SHARED} (see data/README.md to make one)"


def test_default_alerts_path_is_the_shared_file():
    assert ztf.default_alerts_path() == SHARED.resolve()
    assert str(SHARED) in ztf.missing_alerts_message(SHARED)


@pytest.mark.skipif(not SHARED.exists(), reason=NO_SHARED)
def test_shared_file_is_complete():
    alerts = ztf.load_alerts(SHARED)
    assert alerts.images.shape == (750, 29, 29, 3) and alerts.resampled_on_load
    assert alerts.meta["ids"].is_unique
    assert (alerts.meta["weak_labels"] == 1).sum() == 119  # shared README: 119 asteroid matches
    assert np.isfinite(alerts.images).mean() > 0.98


def test_cutouts_already_on_the_grid_load_unchanged(tmp_path):
    src = ztf.load_alerts(_write(tmp_path / "big.npz", n=6))
    path = tmp_path / "small.npz"
    np.savez(path, images=src.images, pixel_scale_arcsec=np.float64(ztf.TOMOE_PIXEL_SCALE),
             **{k: np.asarray(src.meta[k].to_numpy()).astype(src.meta[k].to_numpy().dtype if k != "ids" else str) for k in ("ids", "drb", "weak_labels")})  # fmt: skip
    small = ztf.load_alerts(path)
    assert not small.resampled_on_load
    np.testing.assert_array_equal(small.images, src.images)  # NaN in the same places too


# ---------------------------------------------------------------------------- loader errors
def test_loader_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ZTF alert file"):
        ztf.load_alerts(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match=r"missing arrays \['drb'\]"):
        ztf.load_alerts(_write(tmp_path / "a.npz", drb=None))
    with pytest.raises(ValueError, match=r"'images' must be float\[N, H, H, 3\]"):
        ztf.load_alerts(_write(tmp_path / "b.npz", images=np.zeros((5, 63, 63), np.float32)))
    with pytest.raises(ValueError, match="too small"):
        ztf.load_alerts(_write(tmp_path / "c.npz", size=31))
    with pytest.raises(ValueError, match="pixel_scale_arcsec"):
        ztf.load_alerts(_write(tmp_path / "d.npz", size=29))
    with pytest.raises(ValueError, match="'drb' must be 1-D of length N = 5"):
        ztf.load_alerts(_write(tmp_path / "e.npz", drb=np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match="weak_labels"):
        ztf.load_alerts(_write(tmp_path / "f.npz", weak_labels=np.full(5, 2, np.int8)))
    bad = np.zeros((5, 63, 63, 3), np.float32)
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="inf"):
        ztf.load_alerts(_write(tmp_path / "g.npz", images=bad))


# ------------------------------------------------------------------ agreement and report
def test_agreement_with_drb_on_known_cases():
    drb = np.array([0.1, 0.2, 0.4, 0.6, 0.9, np.nan])
    weak = np.array([1, -1, -1, 1, 1, 1])
    same = np.log(np.nan_to_num(drb, nan=0.5) / (1 - np.nan_to_num(drb, nan=0.5)))
    r = ztf.agreement_with_drb(same, drb, weak, threshold=0.8, n_boot=0)
    assert r["auc_vs_drb"] == 1.0 and r["spearman_vs_drb"] == pytest.approx(1.0)
    assert (r["n_with_drb"], r["n_drb_real"], r["n_drb_bogus"], r["n_asteroids"]) == (5, 2, 3, 4)
    assert r["asteroid_recall"] == pytest.approx(1 / 4)  # only drb 0.9 clears 0.8
    r = ztf.agreement_with_drb(-same, drb, weak, threshold=0.8, n_boot=0)
    assert r["auc_vs_drb"] == 0.0 and r["spearman_vs_drb"] == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    s, d = rng.normal(size=200), rng.uniform(size=200)
    r = ztf.agreement_with_drb(s, d, np.full(200, -1), threshold=0.5, n_boot=50)
    assert r["auc_vs_drb"] == pytest.approx(roc_auc_score(d >= 0.5, s))
    assert r["spearman_vs_drb"] == pytest.approx(spearmanr(s, d).statistic)
    lo, hi = r["auc_vs_drb_ci95"]
    assert lo <= r["auc_vs_drb"] <= hi and r["asteroid_recall"] is None


def test_strongest_disagreements_both_directions():
    drb = np.array([0.05, 0.3, 0.95, 0.99, 0.6, np.nan])
    logits = np.array([3.0, 1.0, -2.0, -0.5, 2.0, 5.0])
    np.testing.assert_array_equal(
        ztf.strongest_disagreements(logits, drb, we_say_real=True, k=5), [0, 1]
    )
    np.testing.assert_array_equal(
        ztf.strongest_disagreements(logits, drb, we_say_real=False, k=1), [2]
    )


def test_report_schema_from_untrained_models(tmp_path):
    for seed, name in enumerate(("current", "vat")):
        save_model(tmp_path / "models" / name, build_model(seed=seed))
    models, _ = load_models(tmp_path / "models")
    alerts = ztf.load_alerts(_write(tmp_path / "alerts.npz", n=60))
    report, logits = ztf.real_alert_report(models, alerts, threshold=0.8, n_boot=20)
    path = ztf.write_report(tmp_path / "real_alerts.json", report, profile="smoke")
    back = json.loads(path.read_text())
    drb, weak = alerts.meta["drb"].to_numpy(), alerts.meta["weak_labels"].to_numpy()
    for name in ("current", "vat"):
        r = back[name]
        assert logits[name].shape == (60,) and np.isfinite(logits[name]).all()
        assert r["n_alerts"] == 60 and r["n_with_drb"] == int(np.isfinite(drb).sum())
        assert r["n_drb_real"] + r["n_drb_bogus"] == r["n_with_drb"]
        assert r["n_asteroids"] == int((weak == 1).sum())
        for key in ("auc_vs_drb", "spearman_vs_drb", "asteroid_recall"):
            assert key in r
        assert r["asteroid_recall"] is None or 0.0 <= r["asteroid_recall"] <= 1.0
    assert not np.allclose(logits["current"], logits["vat"])  # two models, two scorings
    assert back["data"]["n_alerts"] == 60 and back["data"]["resampled_on_load"] is True
    assert back["run"] == {"profile": "smoke"}


def test_alerts_path_resolves_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ztf.resolve_alerts_path("") == ztf.default_alerts_path()
    root = ztf.REPO_ROOT
    assert ztf.resolve_alerts_path("data/alerts.npz") == root / "data" / "alerts.npz"
    (tmp_path / "data").mkdir()
    _write(tmp_path / "data" / "alerts.npz")  # a local file wins over the repo's
    assert ztf.resolve_alerts_path("data/alerts.npz") == tmp_path / "data" / "alerts.npz"
    with pytest.raises(ValueError, match="unknown profile"):
        ztf.profile_settings("huge")
