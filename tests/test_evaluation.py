"""Tests of rbcore.evaluation (table, completeness, calibration): bootstrap table,
metrics.json, binned rates, calibration, cached scoring."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from toy import scored_candidates

from rbcore import evaluation as ev
from rbcore.metrics import binomial_interval, classification_summary


def _scores(seed=0, n_real=60, n_bogus=2000, ties=False):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_real, int), np.zeros(n_bogus, int)]
    logits = np.r_[rng.normal(3.0, 1.5, n_real), rng.normal(-4.0, 1.5, n_bogus)]
    if ties:
        logits = np.round(logits)
    return labels, logits


# --- the talk's table (table.py) --------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_resampled_metrics_equal_metrics_on_explicit_resamples(ties):
    """The count-vector bootstrap gives, resample by resample, what classification_summary
    gives on the resampled arrays themselves."""
    labels, logits = _scores(1, n_real=25, n_bogus=150, ties=ties)
    r, b = np.sort(logits[labels == 1]), np.sort(logits[labels == 0])
    rng = np.random.default_rng(0)
    ir, ib = rng.integers(0, r.size, (30, r.size)), rng.integers(0, b.size, (30, b.size))
    wr = np.stack([np.bincount(i, minlength=r.size) for i in ir])
    wb = np.stack([np.bincount(i, minlength=b.size) for i in ib])
    for thr in (-1.0, 0.0, 1.0):
        got = ev.table._resampled_metrics(r, b, wr, wb, thr, 0.9)
        for k in range(30):
            y = np.r_[np.ones(r.size, int), np.zeros(b.size, int)]
            want = classification_summary(y, np.r_[r[ir[k]], b[ib[k]]], thr)
            for name in ev.TABLE_METRICS:
                assert got[name][k] == pytest.approx(want[name], abs=1e-12), (name, k)
            assert got["n_fp_at_tpr"][k] == round(want["fpr_at_tpr90"] * b.size)


def test_bootstrap_samples_deterministic_and_chunk_independent(monkeypatch):
    labels, logits = _scores(2)
    a = ev.bootstrap_samples(labels, logits, n_boot=40, seed=5)
    monkeypatch.setattr(ev.table, "_BOOT_CHUNK_ELEMENTS", 3 * labels.size)  # chunks of 3 resamples
    b = ev.bootstrap_samples(labels, logits, n_boot=40, seed=5)
    for name in ev.TABLE_METRICS:
        np.testing.assert_array_equal(a[name], b[name])
    c = ev.bootstrap_samples(labels, logits, n_boot=40, seed=6)
    assert not np.array_equal(a["auc"], c["auc"])


def test_metrics_table_values_and_intervals():
    labels, logits = _scores(3)
    t = ev.metrics_table(labels, logits, threshold=0.5, n_boot=300, seed=0)
    pred = logits >= 0.0
    assert t["accuracy"]["value"] == pytest.approx(skm.accuracy_score(labels, pred))
    assert t["precision"]["value"] == pytest.approx(skm.precision_score(labels, pred))
    assert t["auc"]["value"] == pytest.approx(skm.roc_auc_score(labels, logits))
    for name in ev.TABLE_METRICS:
        lo, hi = t[name]["ci95"]
        assert lo <= t[name]["value"] <= hi, name
    lo, hi = t["auc"]["ci95"]
    assert hi - lo > 0  # a real interval, not a point
    assert t["counts"]["n_real"] == 60 and t["counts"]["n_bogus"] == 2000
    n_above = t["tpr90"]["n_bogus_above"]
    assert n_above == int(np.sum(logits[labels == 0] >= t["tpr90"]["threshold_logit"]))
    assert n_above / 2000 == pytest.approx(t["fpr_at_tpr90"]["value"])
    # A probability threshold of 0.9 is a logit threshold of log(9).
    t9 = ev.metrics_table(labels, logits, threshold=0.9, n_boot=10)
    assert t9["counts"]["tp"] == int(np.sum(logits[labels == 1] >= np.log(9.0)))


def test_bootstrap_fast_on_large_test_set():
    import time

    rng = np.random.default_rng(0)
    n = 200_000
    labels = (rng.random(n) < 0.01).astype(int)
    logits = np.where(labels == 1, rng.normal(3, 1, n), rng.normal(-4, 1.5, n)).astype(np.float32)
    t0 = time.perf_counter()
    ev.bootstrap_samples(labels, logits, n_boot=100, seed=0)
    assert time.perf_counter() - t0 < 10.0  # ~1 s on 2 shared cores


def _metrics_doc():
    labels, logits = _scores(4)
    tables = {
        m: ev.metrics_table(labels, logits + k, n_boot=20) for k, m in enumerate(ev.MODEL_NAMES)
    }
    return {**tables, "test_counts": {"n_real": 60, "n_bogus": 2000}}


def test_write_and_read_metrics_schema(tmp_path):
    doc = _metrics_doc()
    path = ev.write_metrics(tmp_path / "run" / "metrics.json", doc)
    raw = json.loads(path.read_text())
    for model in ("current", "vat"):
        for name in ("accuracy", "precision", "recall", "f1", "auc", "fpr_at_tpr90"):
            assert set(raw[model][name]) >= {"value", "ci95"}
            assert len(raw[model][name]["ci95"]) == 2
    assert raw["test_counts"] == {"n_real": 60, "n_bogus": 2000}
    assert ev.read_metrics(path) == raw


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.pop("vat"), "'vat'"),
        (lambda d: d["current"].pop("f1"), "current.f1"),
        (lambda d: d["current"]["auc"].update(ci95=[0.1]), "current.auc"),
        (lambda d: d.pop("test_counts"), "test_counts"),
    ],
)
def test_metrics_schema_violations_raise(tmp_path, mutate, match):
    doc = _metrics_doc()
    mutate(doc)
    with pytest.raises(ValueError, match=match):
        ev.write_metrics(tmp_path / "metrics.json", doc)
    assert not (tmp_path / "metrics.json").exists()


def test_read_metrics_missing_or_damaged(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        ev.read_metrics(tmp_path / "metrics.json")
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ev.read_metrics(tmp_path / "metrics.json")


# --- binned rates (completeness.py) -----------------------------------------------------------


def test_binomial_interval_contains_estimate_and_matches_known_values():
    k, n = np.array([0, 3, 10, 0]), np.array([10, 10, 10, 0])
    lo, hi = binomial_interval(k, n)  # the 95 % interval of completeness.rate_frame
    assert lo[0] == 0.0 and hi[2] == 1.0
    assert np.isnan(lo[3]) and np.isnan(hi[3])
    assert lo[1] < 0.3 < hi[1]
    # Clopper-Pearson for 0/10: upper = 1 - 0.025**(1/10).
    assert hi[0] == pytest.approx(1 - 0.025 ** (1 / 10))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomial_interval(5, 3)


def test_binned_rate_against_direct_counts():
    rng = np.random.default_rng(0)
    values = rng.uniform(14, 20, 500)
    hits = rng.random(500) < np.clip((20 - values) / 5, 0, 1)
    bins = np.arange(14.0, 20.5, 1.0)
    t = ev.binned_rate(values, hits, bins)
    for i in range(len(bins) - 1):
        m = (values >= bins[i]) & (values < bins[i + 1])
        assert t["n"][i] == m.sum() and t["k"][i] == hits[m].sum()
        assert t["rate"][i] == pytest.approx(hits[m].mean())
        assert t["ci_lo"][i] <= t["rate"][i] <= t["ci_hi"][i]
    assert t["n"].sum() == 500
    # Bright bins are more complete than faint ones in this construction.
    assert t["rate"].iloc[0] > t["rate"].iloc[-1]


def test_binned_rate_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        ev.binned_rate([1.0, np.nan], [True, False], [0, 2])
    with pytest.raises(ValueError, match="increasing"):
        ev.binned_rate([1.0], [True], [2, 1])
    with pytest.raises(ValueError, match="same length"):
        ev.binned_rate([1.0, 2.0], [True], [0, 3])


def test_completeness_vs_magnitude_per_category():
    params, labels, logits = scored_candidates()
    bins = np.arange(15.0, 20.01, 1.0)
    table, unbinned = ev.completeness_vs(params, labels, logits, "mag", bins, threshold=0.0)
    assert set(table["category"]) == {"rand", "galx"}
    assert unbinned["rand"] + unbinned["galx"] == 2
    assert table["n"].sum() == 300 - 2
    for _, row in table.iterrows():
        m = (
            (params["category"] == row["category"]).to_numpy()
            & (params["mag"] >= row["bin_lo"]).to_numpy()
            & (params["mag"] < row["bin_hi"]).to_numpy()
        )
        assert row["n"] == m.sum() and row["k"] == np.sum(logits[m] >= 0.0)
    # Bright reals (logit > 0 when mag < 19) are detected, faint ones missed.
    rand = table[table["category"] == "rand"]
    assert rand["rate"].iloc[0] == 1.0 and rand["rate"].iloc[-1] == 0.0


def test_fpr_by_category_against_direct_counts():
    params, labels, logits = scored_candidates(1)
    t = ev.fpr_by_category(params, labels, logits, threshold=0.0)
    assert list(t["category"]) == ["cosmic_ray", "dipole", "hot_pixel"]
    for _, row in t.iterrows():
        m = (params["category"] == row["category"]).to_numpy() & (labels == 0)
        assert row["n"] == m.sum() and row["n_fp"] == np.sum(logits[m] >= 0)
        assert row["ci_lo"] <= row["fpr"] <= row["ci_hi"]


def test_truth_sections_need_truth_columns():
    _, labels, logits = scored_candidates()
    no_truth = pd.DataFrame(index=range(labels.size))
    assert not ev.has_columns(no_truth, ["category", "mag"])
    assert not ev.has_columns(None, ["category"])
    with pytest.raises(ValueError, match="truth columns"):
        ev.completeness_vs(no_truth, labels, logits, "mag", [15, 20])
    with pytest.raises(ValueError, match="truth columns"):
        ev.fpr_by_category(None, labels, logits)
    params, _, _ = scored_candidates()
    with pytest.raises(ValueError, match="rows"):
        ev.fpr_by_category(params.iloc[:10], labels, logits)


# --- calibration (calibration.py) -------------------------------------------------------------


@pytest.mark.parametrize("true_t", [0.5, 1.0, 3.0])
def test_temperature_scaling_recovers_known_temperature(true_t):
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 40_000)  # calibrated logits
    labels = (rng.random(z.size) < ev.sigmoid(z)).astype(int)
    t = ev.fit_temperature(labels, z * true_t)  # miscalibrated by a factor true_t
    assert t == pytest.approx(true_t, rel=0.05)
    before = ev.calibration_summary(labels, z * true_t)
    after = ev.calibration_summary(labels, z * true_t, temperature=t)
    assert after["nll"] <= before["nll"] + 1e-12
    if true_t != 1.0:
        assert after["ece"] < before["ece"]


def test_temperature_on_bound_warns():
    labels = np.r_[np.ones(50, int), np.zeros(50, int)]
    logits = np.r_[np.full(50, 1.0), np.full(50, -1.0)]  # separable: T -> 0 is optimal
    with pytest.warns(UserWarning, match="bound"):
        ev.fit_temperature(labels, logits)


def test_temperature_bad_input():
    with pytest.raises(ValueError, match="only one class"):
        ev.fit_temperature([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        ev.fit_temperature([0, 1], [np.nan, 0.2])
    with pytest.raises(ValueError, match="bounds"):
        ev.fit_temperature([0, 1], [0.0, 1.0], bounds=(2.0, 1.0))


def test_reliability_table_against_direct_counts():
    rng = np.random.default_rng(1)
    p = rng.random(5000)
    labels = (rng.random(5000) < p).astype(int)
    t = ev.reliability_table(labels, p, n_bins=5)
    assert t["n"].sum() == 5000
    for i in range(5):
        m = (p >= i / 5) & (p < (i + 1) / 5)
        assert t["n"][i] == m.sum() and t["k"][i] == labels[m].sum()
        assert t["mean_prob"][i] == pytest.approx(p[m].mean())
    # Calibrated by construction: observed within its interval of the mean probability.
    assert np.all((t["ci_lo"] <= t["mean_prob"] + 0.02) & (t["mean_prob"] - 0.02 <= t["ci_hi"]))
    assert ev.expected_calibration_error(t) < 0.03
    # p = 1.0 exactly falls in the last bin.
    assert ev.reliability_table([1], [1.0], n_bins=4)["n"].iloc[-1] == 1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ev.reliability_table([0, 1], [0.2, 1.5])


def test_nll_and_brier_match_sklearn():
    labels, logits = _scores(5)
    p = ev.sigmoid(logits)
    assert ev.nll(labels, logits) == pytest.approx(skm.log_loss(labels, p), rel=1e-6)
    assert ev.brier(labels, p) == pytest.approx(skm.brier_score_loss(labels, p))
    # Overflow-free at extreme logits.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ev.nll([1, 0], [-1000.0, 1000.0]) == pytest.approx(1000.0)


# --- cached scoring (table.py) ----------------------------------------------------------------


def test_cached_logits_computes_once_and_invalidates(tmp_path, monkeypatch):
    from flax import nnx

    from rbcore import inference
    from rbcore.checkpoint import save_model
    from rbcore.model import RBCNN

    dirs = {}
    for k, name in enumerate(ev.MODEL_NAMES):
        dirs[name] = save_model(tmp_path / name, RBCNN(rngs=nnx.Rngs(k)))
    images = np.random.default_rng(0).normal(size=(6, 29, 29, 3)).astype(np.float32)
    cache = tmp_path / "test_scores.npz"
    first = ev.cached_logits(cache, dirs, images, fingerprint={"a": 1})
    assert cache.exists() and first["current"].shape == (6,)
    assert not np.array_equal(first["current"], first["vat"])  # two different models

    def fail(*args, **kwargs):
        raise AssertionError("predict_logits called although the cache is valid")

    monkeypatch.setattr(inference, "predict_logits", fail)
    again = ev.cached_logits(cache, dirs, images, fingerprint={"a": 1})
    np.testing.assert_array_equal(again["vat"], first["vat"])
    with pytest.raises(AssertionError, match="cache is valid"):  # other data: recomputed
        ev.cached_logits(cache, dirs, images, fingerprint={"a": 2})


def test_prior_shift_recalibrates_to_new_prevalence():
    rng = np.random.default_rng(3)
    # Train prevalence 0.5: logit = log-likelihood ratio of two unit Gaussians 2 apart.
    n_real, n_bogus = 2_000, 200_000  # target prevalence ~0.01
    x = np.r_[rng.normal(1, 1, n_real), rng.normal(-1, 1, n_bogus)]
    labels = np.r_[np.ones(n_real, int), np.zeros(n_bogus, int)]
    z = 2 * x  # calibrated at prevalence 0.5
    target = n_real / labels.size
    shifted = ev.prior_shift(z, train_prior=0.5, target_prior=target)
    assert ev.nll(labels, shifted) < ev.nll(labels, z)
    assert ev.sigmoid(shifted).mean() == pytest.approx(target, rel=0.1)
    with pytest.raises(ValueError, match="target_prior"):
        ev.prior_shift(z, train_prior=0.5, target_prior=0.0)


def test_read_validation_split(tmp_path):
    params = pd.DataFrame(
        {"id": np.arange(10), "detector_id": np.repeat([0, 1], 5), "label": [0, 1] * 5}
    )
    path = tmp_path / "validation_split.csv"
    params.iloc[[7, 5, 6]][["id", "detector_id", "label"]].to_csv(path, index=False)
    np.testing.assert_array_equal(ev.read_validation_split(path, params), [5, 6, 7])
    other = params.assign(label=1 - params["label"])
    with pytest.raises(ValueError, match="label differs"):
        ev.read_validation_split(path, other)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        ev.read_validation_split(path, params.iloc[:4])
    pd.DataFrame({"id": [1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="missing"):
        ev.read_validation_split(path, params)
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        ev.read_validation_split(tmp_path / "none.csv", params)


def test_completeness_by_model_and_bins():
    params, labels, logits = scored_candidates()
    bins = ev.magnitude_and_snr_bins(params["mag"][labels == 1], [5.0, 50.0])
    assert bins["mag"][0] <= 15.0 and bins["mag"][-1] >= 25.0
    np.testing.assert_allclose(np.diff(bins["mag"]), 0.5)
    assert bins["snr"].size == 9 and bins["snr"][0] == 5.0 and bins["snr"][-1] >= 50.0
    half = labels.size // 2
    sources = {
        "a": (params.iloc[:half], labels[:half], {"m": logits[:half]}),
        "b": (params.iloc[half:].reset_index(drop=True), labels[half:], {"m": logits[half:]}),
    }
    tables, unbinned = ev.completeness_by_model(sources, "mag", bins["mag"])
    whole, whole_unbinned = ev.completeness_vs(params, labels, logits, "mag", bins["mag"])
    assert set(tables["m"]["source"]) == {"a"}  # all reals are in the first half
    assert tables["m"]["n"].sum() == whole["n"].sum() and tables["m"]["k"].sum() == whole["k"].sum()
    assert unbinned["a"].sum() == whole_unbinned.sum() == 1  # mag NaN; 25.0 is the last edge
    with pytest.raises(ValueError, match="finite"):
        ev.magnitude_and_snr_bins([np.nan], [1.0])


def test_calibration_variants_scale_then_shift():
    z = np.array([-3.0, 0.0, 2.5])
    v = ev.calibration_variants(z, temperature=2.0, train_prior=0.5, target_prior=0.1)
    assert list(v) == ["as scored", "temperature scaled", "temperature + prior shift"]
    np.testing.assert_array_equal(v["as scored"], z)
    np.testing.assert_allclose(v["temperature scaled"], z / 2.0)
    np.testing.assert_allclose(v["temperature + prior shift"], z / 2.0 + np.log(0.1 / 0.9))
