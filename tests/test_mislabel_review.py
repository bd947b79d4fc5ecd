"""Tests of rbcore.mislabel.review: binomial intervals, inspection estimates, recall by group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rbcore import mislabel as ml
from rbcore.metrics import binomial_interval
from rbcore.mislabel import review as mr

# ----------------------------------------------------------------------------- inspection


def test_binomial_interval_matches_scipy_and_covers():
    """The one interval (rbcore.metrics) at the levels review uses."""
    lo, hi = binomial_interval([0, 3, 10], [10, 10, 10], level=0.95)
    assert lo[0] == 0 and hi[2] == 1
    assert lo[1] < 0.3 < hi[1]
    from scipy.stats import binomtest

    ci = binomtest(3, 10).proportion_ci(0.95, method="exact")
    assert lo[1] == pytest.approx(ci.low) and hi[1] == pytest.approx(ci.high)
    assert np.isnan(binomial_interval([0], [0], level=0.6827)[0][0])


def test_inspection_table_and_class_rates():
    rng = np.random.default_rng(2)
    n = 20000
    labels = rng.integers(0, 2, n)
    logits = rng.normal(scale=5, size=n)
    # mislabels pile up on the wrong side, as in the talk
    p_wrong = ml.sigmoid(np.where(labels == 1, -logits, logits) - 4)
    wrong = (rng.random(n) < p_wrong).astype(int)
    edges = mr.logit_bin_edges(10, 2)
    t = mr.inspection_table(logits, labels, wrong, bin_edges=edges, n_inspect=50, seed=0)
    assert len(t) == 2 * (edges.size - 1)
    assert t["n"].sum() == n and t["n_wrong"].sum() == wrong.sum()
    assert (t["n_inspected"] == np.minimum(t["n"], 50)).all()
    assert (t["n_found"] <= t["n_inspected"]).all()
    ok = t["n_inspected"] > 0
    assert (
        (t.loc[ok, "est_lo"] <= t.loc[ok, "est"]) & (t.loc[ok, "est"] <= t.loc[ok, "est_hi"])
    ).all()
    real = t[t["label"] == 1].sort_values("bin")
    assert real["true_frac"].iloc[0] > real["true_frac"].iloc[-1]  # tails hold the mislabels
    rates = mr.estimated_class_rates(t)
    for lab in (0, 1):
        r = rates[rates["label"] == lab].iloc[0]
        truth = wrong[labels == lab].mean()
        assert r["true_rate"] == pytest.approx(truth)
        assert abs(r["est_rate"] - truth) < 4 * r["est_err"] + 1e-9
    # deterministic with the seed
    t2 = mr.inspection_table(logits, labels, wrong, bin_edges=edges, n_inspect=50, seed=0)
    pd.testing.assert_frame_equal(t, t2)


def test_fully_inspected_bins_give_exact_rates():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    logits = rng.normal(size=300)
    wrong = (rng.random(300) < 0.1).astype(int)
    t = mr.inspection_table(logits, labels, wrong, bin_edges=[-np.inf, 0, np.inf], n_inspect=10**6)
    rates = mr.estimated_class_rates(t)
    np.testing.assert_allclose(rates["est_rate"], rates["true_rate"])
    np.testing.assert_allclose(rates["est_err"], 0.0)


def test_nothing_found_still_has_an_error():
    labels = np.zeros(1000, int)
    wrong = np.zeros(1000, int)
    wrong[:5] = 1
    t = mr.inspection_table(np.zeros(1000), labels, wrong, bin_edges=[-1, 1], n_inspect=20, seed=1)
    rates = mr.estimated_class_rates(t)
    assert rates["label"].tolist() == [0]  # no real labels: no row for them
    r = rates.iloc[0]
    assert t["n_found"].iloc[0] == 0  # this seed's 20 draws miss the 5 mislabels
    assert r["est_rate"] == 0 and r["est_err"] > 0.005


def test_recall_by_group():
    wrong = np.array([1, 1, 1, 0, 1, 0])
    flags = {"oof": np.array([1, 0, 1, 1, 1, 0])}
    snr = np.array([3.0, 3.0, 30.0, 30.0, np.nan, 3.0])
    g = mr.snr_groups(snr, edges=(0, 10, np.inf))
    assert list(g) == ["[0, 10)", "[0, 10)", "[10, inf)", "[10, inf)", "no source", "[0, 10)"]
    t = mr.recall_by_group(flags, wrong, g)
    assert t["group"].tolist() == ["[0, 10)", "[10, inf)", "no source"]  # category order
    t = t.set_index("group")
    assert t.loc["[0, 10)", "n_wrong"] == 2 and t.loc["[0, 10)", "recall"] == 0.5
    assert t.loc["[10, inf)", "recall"] == 1.0 and t.loc["no source", "n_found"] == 1


def _ledger(labels, oof, ins):
    n = len(labels)
    p = pd.DataFrame({"id": np.arange(n), "detector_id": np.arange(n) % 5, "label": labels})
    return ml.build_ledger(p, np.arange(n) % 2, np.asarray(oof, float), np.asarray(ins, float))


def test_detection_curves_match_margin_ranking():
    rng = np.random.default_rng(4)
    n = 400
    labels = rng.integers(0, 2, n)
    wrong = (rng.random(n) < 0.1).astype(int)
    true_class = np.where(wrong == 1, 1 - labels, labels)
    oof = np.where(true_class == 1, 3.0, -3.0) + rng.normal(scale=2, size=n)
    ledger = _ledger(labels, oof, rng.normal(size=n))
    curves = mr.detection_curves(ledger, wrong)
    p, r = curves["oof"]
    assert r[0] == 1.0 and p[-1] == 1.0  # scikit-learn's convention: ends at recall 0
    # the point of the curve at the rule's threshold (margin > 0) equals the rule's flags
    d = ml.detection_metrics(ledger["oof_flag"], wrong)
    assert any(
        np.isclose(pp, d["precision"]) and np.isclose(rr, d["recall"])
        for pp, rr in zip(p, r, strict=True)
    )
    assert mr.detection_curves(ledger, np.zeros(n, int)) == {}


def test_gallery_rows_worst_first():
    labels = np.array([1, 1, 1, 0, 0, 0])
    oof = np.array([-4.0, -1.0, 2.0, 5.0, 0.5, -3.0])
    ledger = _ledger(labels, oof, oof)
    real = mr.gallery_rows(ledger, 1, 5)
    assert real["oof_logit"].tolist() == [-4.0, -1.0]  # flagged reals, lowest first
    bogus = mr.gallery_rows(ledger, 0, 1)
    assert bogus["oof_logit"].tolist() == [5.0]
