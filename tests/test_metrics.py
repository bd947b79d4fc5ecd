"""Tests of rbcore.metrics against brute-force computations and scikit-learn."""

import numpy as np
import pytest
from sklearn import metrics as skm

from rbcore import metrics


def _data(seed: int, n_real: int = 40, n_bogus: int = 300, ties: bool = False):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_real, int), np.zeros(n_bogus, int)]
    scores = np.r_[rng.normal(1.5, 1.0, n_real), rng.normal(0.0, 1.0, n_bogus)]
    if ties:  # heavily tied: a handful of distinct values shared by both classes
        scores = np.round(scores)
    perm = rng.permutation(labels.size)
    return labels[perm], scores[perm]


def _brute_fpr_at_tpr(labels, scores, tpr):
    """Scan every candidate threshold; keep the highest whose TPR reaches tpr."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    best = None
    for t in sorted(set(scores.tolist())):
        if np.mean(pos >= t) >= tpr - 1e-12:
            best = t  # ascending scan: the last one kept is the highest
    return float(np.mean(neg >= best)), best


def _brute_threshold_for_count(scores, n):
    """Lowest candidate threshold (a score, or +inf) letting through at most n."""
    candidates = sorted(set(scores.tolist())) + [np.inf]
    return next(t for t in candidates if np.sum(scores >= t) <= n)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("tpr", [0.5, 0.9, 0.97, 1.0])
def test_fpr_at_tpr_matches_brute_force(seed, ties, tpr):
    labels, scores = _data(seed, ties=ties)
    fpr, thr = metrics.fpr_at_tpr(labels, scores, tpr)
    want_fpr, want_thr = _brute_fpr_at_tpr(labels, scores, tpr)
    assert thr == want_thr
    assert fpr == pytest.approx(want_fpr, abs=0)
    # It is also the smallest FPR among all thresholds reaching the TPR.
    rocf, roct, _ = skm.roc_curve(labels, scores)
    assert fpr == pytest.approx(rocf[roct >= tpr - 1e-12].min())


def test_fpr_at_tpr_counts_all_tied_reals():
    # Two reals tied at 0.5 with a bogus: TPR 0.9 needs both, so the bogus counts too.
    labels = np.array([1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1])
    fpr, thr = metrics.fpr_at_tpr(labels, scores, 0.9)
    assert (fpr, thr) == (0.25, 0.5)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_threshold_for_count_matches_brute_force(seed, ties):
    _, scores = _data(seed, ties=ties)
    for n in [0, 1, 2, 5, 17, 100, scores.size - 1, scores.size, scores.size + 3]:
        got = metrics.threshold_for_count(scores, n)
        assert got == _brute_threshold_for_count(scores, n), n
        assert np.sum(scores >= got) <= n


def test_threshold_for_count_never_splits_ties():
    scores = np.array([3.0, 2.0, 2.0, 2.0, 1.0])
    assert metrics.threshold_for_count(scores, 3) == 3.0  # 4 would pass at 2.0
    assert metrics.threshold_for_count(scores, 4) == 2.0
    assert metrics.threshold_for_count(np.array([1.0, 1.0]), 1) == np.inf


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("threshold", [-0.5, 0.5, 2.0])
def test_classification_summary_matches_sklearn(seed, threshold):
    labels, scores = _data(seed)
    s = metrics.classification_summary(labels, scores, threshold)
    pred = (scores >= threshold).astype(int)
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(labels, pred))
    assert s["precision"] == pytest.approx(skm.precision_score(labels, pred, zero_division=0))
    assert s["recall"] == pytest.approx(skm.recall_score(labels, pred))
    assert s["f1"] == pytest.approx(skm.f1_score(labels, pred, zero_division=0))
    assert s["auc"] == pytest.approx(skm.roc_auc_score(labels, scores))
    tn, fp, fn, tp = skm.confusion_matrix(labels, pred).ravel()
    assert (s["tn"], s["fp"], s["fn"], s["tp"]) == (tn, fp, fn, tp)
    assert (s["n_real"], s["n_bogus"]) == (40, 300)
    assert s["fpr_at_tpr90"] == _brute_fpr_at_tpr(labels, scores, 0.9)[0]


def test_classification_summary_no_positive_predictions():
    labels, scores = _data(0)
    s = metrics.classification_summary(labels, scores, threshold=1e9)
    assert s["precision"] == 0.0 and s["recall"] == 0.0 and s["f1"] == 0.0
    assert s["accuracy"] == pytest.approx(300 / 340)


def _auc(y, s):
    return skm.roc_auc_score(y, s)


def test_bootstrap_interval_covers_estimate_and_is_deterministic():
    labels, scores = _data(1)
    lo, hi = metrics.bootstrap_interval(_auc, labels, scores, n_boot=200, seed=3)
    assert lo < _auc(labels, scores) < hi
    assert 0.0 < hi - lo < 0.3
    assert (lo, hi) == metrics.bootstrap_interval(_auc, labels, scores, n_boot=200, seed=3)
    assert (lo, hi) != metrics.bootstrap_interval(_auc, labels, scores, n_boot=200, seed=4)
    # A narrower level gives a narrower interval.
    lo50, hi50 = metrics.bootstrap_interval(_auc, labels, scores, n_boot=200, seed=3, level=0.5)
    assert lo <= lo50 < hi50 <= hi


def test_bootstrap_interval_stratified_keeps_class_counts():
    labels, scores = _data(2)
    seen = []
    metrics.bootstrap_interval(
        lambda y, s: seen.append(int(y.sum())) or 0.0, labels, scores, n_boot=20, seed=0
    )
    assert seen == [40] * 20
    seen.clear()
    metrics.bootstrap_interval(
        lambda y, s: seen.append(int(y.sum())) or 0.0,
        labels,
        scores,
        n_boot=20,
        seed=0,
        stratified=False,
    )
    assert len(set(seen)) > 1


def test_curves_and_confusion_matrix():
    labels, scores = _data(0)
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    assert np.all(np.diff(fpr) >= 0) and fpr[-1] == 1.0 and tpr[-1] == 1.0
    p, r, _ = metrics.precision_recall_curve(labels, scores)
    assert p.shape == r.shape
    cm = metrics.confusion_matrix(labels, scores, 0.5)
    assert cm.sum() == labels.size
    cmn = metrics.confusion_matrix(labels, scores, 0.5, normalize=True)
    np.testing.assert_allclose(cmn.sum(axis=1), 1.0)
    np.testing.assert_allclose(cmn, cm / cm.sum(axis=1, keepdims=True))


BAD_INPUTS = [
    ([1, 1, 1], [0.1, 0.2, 0.3], "only one class"),
    ([0, 0], [0.1, 0.2], "only one class"),
    ([], [], "empty"),
    ([0, 1, 1], [0.1, np.nan, 0.3], "NaN"),
    ([0, 1, 1], [0.1, 0.3], "differ in length"),
    ([0, 1, 2], [0.1, 0.2, 0.3], "0 \\(bogus\\) or 1 \\(real\\)"),
    ([[0, 1]], [[0.1, 0.2]], "1-D"),
]


@pytest.mark.parametrize(("labels", "scores", "match"), BAD_INPUTS)
def test_bad_input_raises_clear_error(labels, scores, match):
    for call in (
        lambda: metrics.fpr_at_tpr(labels, scores),
        lambda: metrics.classification_summary(labels, scores),
        lambda: metrics.bootstrap_interval(_auc, labels, scores, n_boot=10),
        lambda: metrics.roc_curve(labels, scores),
    ):
        with pytest.raises(ValueError, match=match):
            call()


def test_bad_parameters_raise():
    labels, scores = _data(0)
    with pytest.raises(ValueError, match="tpr"):
        metrics.fpr_at_tpr(labels, scores, tpr=0.0)
    with pytest.raises(ValueError, match="n_boot"):
        metrics.bootstrap_interval(_auc, labels, scores, n_boot=1)
    with pytest.raises(ValueError, match="level"):
        metrics.bootstrap_interval(_auc, labels, scores, level=1.0)
    with pytest.raises(ValueError, match="n must be"):
        metrics.threshold_for_count(scores, -1)
    with pytest.raises(ValueError, match="NaN"):
        metrics.threshold_for_count(np.array([1.0, np.nan]), 1)
    with pytest.raises(ValueError, match="non-empty"):
        metrics.threshold_for_count(np.array([]), 1)
