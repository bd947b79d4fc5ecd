"""Tests of rbcore.mislabel.folds, .flags and .ledger: folds, scoring and resume, flagging,
detection metrics, the ledger, toy end-to-end.

The model-training step is injected; here it is a nearest-centroid classifier on
flattened pixels (seconds, not minutes), so these tests never train the CNN.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from rbcore import mislabel as ml
from rbcore.profiles import PROFILES


def centroid_trainer(x, labels, calls=None):
    """A TrainFn: nearest class centroid; logit = (d_bogus^2 - d_real^2) / 2."""

    def train_fn(train_idx, out_dir):
        if calls is not None:
            calls.append(np.asarray(train_idx).copy())
        xt, yt = x[train_idx], labels[train_idx]
        c0, c1 = xt[yt == 0].mean(0), xt[yt == 1].mean(0)

        def predict(idx):
            d0 = ((x[idx] - c0) ** 2).sum(1)
            d1 = ((x[idx] - c1) ** 2).sum(1)
            return (d0 - d1) / 2.0

        return predict

    return train_fn


def toy_data(n=1200, n_det=12, flip=0.04, seed=0, dim=30, shift=1.0):
    """Separable two-class toy features, detectors of unequal size, some labels flipped."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    x = rng.normal(size=(n, dim)) + shift * truth[:, None]  # classes 5.5 sigma apart (shift=1)
    det = np.sort(
        rng.choice(n_det, size=n, p=np.arange(1, n_det + 1) / np.sum(np.arange(1, n_det + 1)))
    )
    wrong = rng.random(n) < flip
    label = np.where(wrong, 1 - truth, truth)
    params = pd.DataFrame(
        {
            "id": np.arange(n),
            "detector_id": det,
            "label": label,
            "label_is_wrong": wrong.astype(int),
        }
    )
    return x, params


# ----------------------------------------------------------------------------- folds (folds.py)


def test_grouped_detector_folds_properties():
    _, p = toy_data()
    folds = ml.assign_folds(5, groups=p["detector_id"], by="detector_grouped", seed=3)
    assert folds.shape == (len(p),) and set(folds) == set(range(5))
    # each detector in exactly one fold
    per_det = p.assign(fold=folds).groupby("detector_id")["fold"].nunique()
    assert (per_det == 1).all()
    # balanced: no fold larger than the smallest plus the largest detector
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= p["detector_id"].value_counts().max()
    # deterministic with the seed, different with another seed
    assert np.array_equal(
        folds, ml.assign_folds(5, groups=p["detector_id"], by="detector_grouped", seed=3)
    )
    other = [
        ml.assign_folds(5, groups=p["detector_id"], by="detector_grouped", seed=s)
        for s in range(4, 10)
    ]
    assert any(not np.array_equal(folds, o) for o in other)


def test_grouped_detector_folds_balance_many_equal_detectors():
    groups = np.repeat(np.arange(84), 10)  # Tomo-e's 84 detectors, equal sizes
    sizes = np.bincount(ml.assign_folds(5, groups=groups, by="detector_grouped", seed=0))
    assert sizes.max() - sizes.min() <= 10


def test_default_folds_are_the_paper_codes_stratified_by_detector():
    from sklearn.model_selection import StratifiedKFold

    groups = np.repeat(np.arange(84), 50)  # Tomo-e's 84 detectors
    folds = ml.assign_folds(5, groups=groups)
    # every fold holds 10 of each detector's 50 samples (src/real_bogus.py:439-452)
    counts = np.array([np.bincount(groups[folds == k], minlength=84) for k in range(5)])
    assert (counts == 10).all()
    # the paper's split: StratifiedKFold(5, shuffle=True, random_state=0x5eed), y = detector
    skf = StratifiedKFold(n_splits=5, shuffle=True, random_state=0x5EED)
    for k, (_, test) in enumerate(skf.split(np.zeros(groups.size), groups)):
        assert np.array_equal(np.flatnonzero(folds == k), np.sort(test))


def test_label_folds_stratified():
    labels = np.r_[np.zeros(900, int), np.ones(100, int)]
    folds = ml.assign_folds(5, labels=labels, by="label", seed=0)
    for k in range(5):
        assert (labels[folds == k] == 1).sum() == 20


def test_fold_errors():
    with pytest.raises(ValueError, match="distinct detectors"):
        ml.assign_folds(5, groups=[0, 0, 1, 1, 2], by="detector_grouped")
    with pytest.raises(ValueError, match="needs groups"):
        ml.assign_folds(5)
    with pytest.raises(ValueError, match="no class has n_folds=5"):
        ml.assign_folds(5, groups=[0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="by must be"):
        ml.assign_folds(5, groups=[0], by="night")


# -------------------------------------------------------------------------- scoring (folds.py)


def test_every_sample_scored_once_by_a_model_that_did_not_see_it():
    x, p = toy_data(n=300, n_det=6)
    labels = p["label"].to_numpy()
    folds = ml.assign_folds(3, groups=p["detector_id"], seed=0)
    calls = []
    logits = ml.out_of_fold_logits(folds, centroid_trainer(x, labels, calls))
    assert np.isfinite(logits).all()
    assert len(calls) == 3
    seen = np.concatenate(calls)
    # each sample is in the training split of K-1 folds and scored by the remaining one
    assert np.array_equal(np.bincount(seen, minlength=len(p)), np.full(len(p), 2))
    for train_idx in calls:
        k = set(folds[train_idx])
        assert len(k) == 2  # trained on two folds, the third held out


def test_resume_skips_finished_folds(tmp_path):
    x, p = toy_data(n=400, n_det=10)
    labels = p["label"].to_numpy()
    folds = ml.assign_folds(5, groups=p["detector_id"], seed=1)
    full = ml.out_of_fold_logits(folds, centroid_trainer(x, labels))

    calls = []
    inner = centroid_trainer(x, labels, calls)

    def interrupted(train_idx, out_dir):
        if len(calls) == 2:
            raise KeyboardInterrupt  # the run is killed while training the third fold
        return inner(train_idx, out_dir)

    with pytest.raises(KeyboardInterrupt):
        ml.out_of_fold_logits(folds, interrupted, run_dir=tmp_path, meta={"epochs": 1})
    assert sorted(
        d.name for d in (tmp_path / "mislabel").iterdir() if (d / "scores.npz").exists()
    ) == [
        "fold0",
        "fold1",
    ]
    calls2 = []
    resumed = ml.out_of_fold_logits(
        folds, centroid_trainer(x, labels, calls2), run_dir=tmp_path, meta={"epochs": 1}
    )
    assert len(calls2) == 3  # folds 2, 3, 4 only
    np.testing.assert_allclose(resumed, full, rtol=1e-6)
    # a third run trains nothing
    calls3 = []
    ml.out_of_fold_logits(
        folds, centroid_trainer(x, labels, calls3), run_dir=tmp_path, meta={"epochs": 1}
    )
    assert calls3 == []
    # other settings: refuse to mix old scores with new ones
    with pytest.raises(ValueError, match="different run"):
        ml.out_of_fold_logits(
            folds, centroid_trainer(x, labels), run_dir=tmp_path, meta={"epochs": 2}
        )


def test_insample_resume(tmp_path):
    x, p = toy_data(n=200)
    labels = p["label"].to_numpy()
    calls = []
    a = ml.insample_logits(len(p), centroid_trainer(x, labels, calls), run_dir=tmp_path)
    b = ml.insample_logits(len(p), centroid_trainer(x, labels, calls), run_dir=tmp_path)
    assert len(calls) == 1 and np.array_equal(a, b)
    assert np.array_equal(calls[0], np.arange(len(p)))


def test_bad_predict_fn_is_an_error():
    folds = np.array([0, 0, 1, 1])

    def bad(train_idx, out_dir):
        return lambda idx: np.zeros(len(idx) + 1)

    with pytest.raises(ValueError, match="returned 3 scores for 2"):
        ml.out_of_fold_logits(folds, bad)


# ------------------------------------------------------------------------- flagging (flags.py)


def test_flagging_rule():
    labels = np.array([1, 1, 1, 0, 0, 0])
    probs = np.array([0.9, 0.5, 0.49, 0.1, 0.5, 0.51])
    # real when p >= 0.5: label 1 at 0.49 disagrees, label 0 at 0.5 and 0.51 disagree
    assert ml.flag_disagreements(labels, probs).tolist() == [False, False, True, False, True, True]
    assert ml.flag_disagreements(labels, probs, threshold=0.8).tolist() == [
        False,
        True,
        True,
        False,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="threshold"):
        ml.flag_disagreements(labels, probs, threshold=1.5)
    with pytest.raises(ValueError, match="0 \\(bogus\\) or 1"):
        ml.flag_disagreements([2, 0], [0.1, 0.2])


def test_margin_and_rank_agree_with_flags():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    logits = rng.normal(scale=4, size=500)
    m = ml.wrong_side_margin(labels, logits, 0.5)
    flags = ml.flag_disagreements(labels, ml.sigmoid(logits), 0.5)
    assert np.array_equal(m > 0, flags)
    r = ml.margin_rank(m)
    assert sorted(r) == list(range(1, 501))
    assert r[np.argmax(m)] == 1 and r[np.argmin(m)] == 500
    # the flagged are exactly the top ranks
    assert set(r[flags]) == set(range(1, flags.sum() + 1))
    np.testing.assert_allclose(ml.sigmoid(np.array([-800.0, 0.0, 800.0])), [0.0, 0.5, 1.0])


def test_detection_metrics_against_sklearn():
    rng = np.random.default_rng(1)
    wrong = rng.random(1000) < 0.05
    flagged = np.where(wrong, rng.random(1000) < 0.8, rng.random(1000) < 0.02)
    d = ml.detection_metrics(flagged, wrong.astype(int))
    assert d["precision"] == pytest.approx(skm.precision_score(wrong, flagged))
    assert d["recall"] == pytest.approx(skm.recall_score(wrong, flagged))
    assert d["f1"] == pytest.approx(skm.f1_score(wrong, flagged))
    assert d["n_flagged"] == flagged.sum() and d["n_wrong"] == wrong.sum()
    assert d["tp"] + d["fn"] == wrong.sum()
    empty = ml.detection_metrics(np.zeros(5, bool), np.zeros(5, int))
    assert empty["precision"] is None and empty["recall"] is None


# -------------------------------------------------------------------------- ledger (ledger.py)


def _pipeline(x, p, run_dir, n_folds=5):
    labels = p["label"].to_numpy()
    folds = ml.assign_folds(n_folds, groups=p["detector_id"], seed=0)
    oof = ml.out_of_fold_logits(folds, centroid_trainer(x, labels), run_dir=run_dir)
    ins = ml.insample_logits(len(p), centroid_trainer(x, labels), run_dir=run_dir)
    return ml.build_ledger(p, folds, oof, ins, threshold=0.5)


def test_ledger_schema_and_roundtrip(tmp_path):
    x, p = toy_data(n=500)
    ledger = _pipeline(x, p, tmp_path)
    path = ml.write_ledger(ledger, tmp_path)
    assert path == tmp_path / "label_ledger.csv"
    back = ml.read_ledger(path)
    assert list(back.columns[: len(ml.LEDGER_COLUMNS)]) == list(ml.LEDGER_COLUMNS)
    assert len(back) == len(p) and back["id"].tolist() == p["id"].tolist()
    assert set(back["flagged"]) <= {0, 1}
    assert ((back["oof_score"] >= 0) & (back["oof_score"] <= 1)).all()
    np.testing.assert_allclose(back["oof_score"], ml.sigmoid(back["oof_logit"]), rtol=1e-5)
    assert (back.loc[back["flagged"] == 1, "rule"] != "none").all()
    assert (back.loc[back["flagged"] == 0, "rule"] == "none").all()
    assert back["flagged"].tolist() == back["oof_flag"].tolist()
    bad = back.drop(columns=["fold"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="missing columns \\['fold'\\]"):
        ml.read_ledger(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="no label ledger"):
        ml.read_ledger(tmp_path / "nothing.csv")


def test_metrics_json_matches_direct_count(tmp_path):
    x, p = toy_data(n=800)
    ledger = _pipeline(x, p, None)
    wrong = p["label_is_wrong"].to_numpy()
    m = ml.mislabel_metrics(ledger, wrong)
    for method in ("insample", "oof", "cleanlab"):
        f = ledger[f"{method}_flag"].to_numpy() == 1
        tp = (f & (wrong == 1)).sum()
        assert m[method]["n_flagged"] == f.sum()
        if f.sum():
            assert m[method]["precision"] == pytest.approx(tp / f.sum())
        assert m[method]["recall"] == pytest.approx(tp / wrong.sum())
    path = ml.write_metrics(m, tmp_path)
    assert json.loads(path.read_text())["oof"]["tp"] == m["oof"]["tp"]


def test_without_truth_columns(tmp_path):
    """Real (Zenodo) data has no truth: everything but the truth-based metrics works."""
    x, p = toy_data(n=400)
    p = p.drop(columns=["label_is_wrong"])
    ledger = _pipeline(x, p, tmp_path)
    ml.write_ledger(ledger, tmp_path)
    m = ml.mislabel_metrics(ledger, None)
    assert m["has_truth"] is False
    assert "precision" not in m["oof"]
    assert m["oof"]["n_flagged"] == ledger["oof_flag"].sum()
    ml.write_metrics(m, tmp_path)


def test_planted_flips_found_out_of_fold():
    """End to end on separable toy data: OOF disagreement finds the planted flips."""
    x, p = toy_data(n=2000, n_det=20, flip=0.03, seed=5)
    ledger = _pipeline(x, p, None)
    wrong = p["label_is_wrong"].to_numpy()
    d = ml.detection_metrics(ledger["oof_flag"], wrong)
    assert d["n_wrong"] > 30
    assert d["recall"] >= 0.9
    assert d["precision"] >= 0.8
    c = ml.detection_metrics(ledger["cleanlab_flag"], wrong)
    assert c["recall"] >= 0.8
    # worst-ranked first: the top of the margin ranking is almost all true mislabels
    top = ledger.nsmallest(30, "margin_rank")
    assert wrong[top.index].mean() >= 0.9


def nearest_neighbour_trainer(x, labels):
    """A TrainFn that memorizes its training set (1-NN): the in-sample failure mode."""

    def train_fn(train_idx, out_dir):
        xt, yt = x[train_idx], labels[train_idx]

        def predict(idx):
            d = ((x[idx][:, None, :] - xt[None, :, :]) ** 2).sum(-1)
            return np.where(yt[d.argmin(1)] == 1, 5.0, -5.0)

        return predict

    return train_fn


def test_memorizing_model_hides_mislabels_in_sample_but_not_out_of_fold():
    x, p = toy_data(n=600, n_det=10, flip=0.05, seed=6)
    labels, wrong = p["label"].to_numpy(), p["label_is_wrong"].to_numpy()
    folds = ml.assign_folds(5, groups=p["detector_id"], seed=0)
    oof = ml.out_of_fold_logits(folds, nearest_neighbour_trainer(x, labels))
    ins = ml.insample_logits(len(p), nearest_neighbour_trainer(x, labels))
    assert ml.flag_disagreements(labels, ml.sigmoid(ins)).sum() == 0
    assert (
        ml.detection_metrics(ml.flag_disagreements(labels, ml.sigmoid(oof)), wrong)["recall"] > 0.8
    )


def test_profile_settings():
    k, cfg = ml.profile_settings("smoke", seed=4)
    assert k == PROFILES["smoke"]["mislabel"]["n_folds"] and cfg.seed == 4 and cfg.alpha == 0.0
    assert cfg.epochs == PROFILES["smoke"]["mislabel"]["epochs"]
    assert cfg.early_stopping_metric == "loss"  # the 0.5 rule needs a calibrated model
    k, cfg = ml.profile_settings("default", n_folds=3, epochs=7)
    assert (k, cfg.epochs) == (3, 7)
    with pytest.raises(ValueError, match="unknown profile"):
        ml.profile_settings("huge")


def test_cnn_trainer_trains_and_checkpoints(tmp_path):
    """The real CNN through rbcore.train.fit on a tiny separable set."""
    rng = np.random.default_rng(0)
    n = 768
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 29, 29, 3)).astype(np.float32)
    x[y == 1, 12:17, 12:17, 1:] += 4.0  # a bright source in new and sub: "real"
    from rbcore.train import TrainConfig

    cfg = TrainConfig(epochs=4, batch_size=32, seed=0, early_stopping_metric="loss")
    folds = ml.assign_folds(2, labels=y, by="label", seed=0)
    logits = ml.out_of_fold_logits(folds, ml.cnn_trainer(x, y, cfg), run_dir=tmp_path)
    assert logits.shape == (n,) and np.isfinite(logits).all()
    assert ((logits > 0) == (y == 1)).mean() > 0.9
    assert (tmp_path / "mislabel" / "fold0" / "model").is_dir()
