"""Tests of rbcore.study (notebook 07, issue 13) on tiny data, and of scale_label_noise."""

import json

import numpy as np
import pandas as pd
import pytest

from rbcore import study as st
from rbcore.simulation import SurveyConfig, scale_label_noise, simulate_candidates
from rbcore.study import ablation as sa
from rbcore.study import report, scores
from rbcore.study.sweep import measured_noise_rates
from rbcore.train.config import TrainConfig

N = 10
LABELS = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 1])
WRONG = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], bool)
TRUE = np.where(WRONG, 1 - LABELS, LABELS)
FLAGGED = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], bool)
CLEANLAB = np.array([0, 0, 0, 0, 1, 0, 0, 0, 0, 1], bool)


def _inputs(row):
    return st.row_inputs(row, labels=LABELS, true_labels=TRUE, flagged=FLAGGED,
                         cleanlab_flagged=CLEANLAB, label_is_wrong=WRONG)  # fmt: skip


def test_rows_train_on_the_labels_the_issue_names():
    expect = {  # row: (labels, keep, labeled)
        "oracle": (TRUE, np.ones(N, bool), np.ones(N, bool)),
        "current": (LABELS, np.ones(N, bool), np.ones(N, bool)),
        "drop_flagged": (LABELS, ~FLAGGED, np.ones(N, bool)),
        "vat_only": (LABELS, np.ones(N, bool), np.ones(N, bool)),
        "two_stage": (LABELS, np.ones(N, bool), ~FLAGGED),
        "cleanlab_vat": (LABELS, np.ones(N, bool), ~CLEANLAB),
        "oracle_flags_vat": (LABELS, np.ones(N, bool), ~WRONG),
    }
    assert tuple(expect) == st.ROWS
    for row, want in expect.items():
        for got, w in zip(_inputs(row), want, strict=True):
            np.testing.assert_array_equal(got, w, err_msg=row)
    assert set(st.VAT_ROWS) == {"vat_only", "two_stage", "cleanlab_vat", "oracle_flags_vat"}
    with pytest.raises(ValueError, match="unknown ablation row"):
        _inputs("vat")
    with pytest.raises(ValueError, match="flagged has shape"):
        st.row_inputs("current", labels=LABELS, true_labels=TRUE, flagged=FLAGGED[:3],
                      cleanlab_flagged=CLEANLAB, label_is_wrong=WRONG)  # fmt: skip


def test_plan_row_config_and_subsample():
    plan = sa.ablation_plan(st.ROWS, [0, 1])
    assert plan[: len(st.ROWS)] == [(r, 0) for r in st.ROWS]
    assert plan[len(st.ROWS) :] == [(r, 1) for r in st.ROWS if r in st.SEED_ROWS]
    with pytest.raises(ValueError, match="distinct"):
        sa.ablation_plan(st.ROWS, [0, 0])
    base = TrainConfig(epochs=3, alpha=0.0)
    vat = sa.row_config(base, "two_stage", 2, {"eps": 0.3, "alpha": 1.0})
    assert (vat.seed, vat.eps, vat.alpha, vat.epochs) == (2, 0.3, 1.0, 3)
    assert sa.row_config(vat, "current", 0, None).alpha == 0.0
    with pytest.raises(ValueError, match="needs an eps/alpha"):
        sa.row_config(base, "vat_only", 0, None)
    data = sa.StudyData(None, pd.DataFrame(), LABELS, TRUE, WRONG, FLAGGED, CLEANLAB,
                        np.arange(8), np.arange(8, 10))  # fmt: skip
    sub = sa.subsample_train(data, 5, seed=0)
    assert len(sub.train_idx) == 5 and set(sub.train_idx) <= set(range(8))
    assert np.array_equal(sub.train_idx, sa.subsample_train(data, 5, seed=0).train_idx)
    assert sa.subsample_train(data, None, 0) is data
    _, idx, labeled = sa.row_arrays(data, "drop_flagged")
    assert idx.tolist() == [2, 3, 4, 5, 6, 7] and labeled.all()


def _entry(value, lo, hi, seeds=None):
    seeds = seeds or [value]
    return {"auc": {"value": 0.99, "ci95": [0.98, 1.0]},
            "fpr_at_tpr90": {"value": value, "ci95": [lo, hi]},
            "fpr_at_tpr90_seeds": {"values": seeds, **scores.seed_spread(seeds)},
            "n_labeled": 100}  # fmt: skip


def test_claims_need_both_the_bootstrap_and_the_seed_spread():
    a, b = _entry(0.010, 0.008, 0.012), _entry(0.004, 0.003, 0.005)
    c = report.compare_rows(a, b, seed_range=0.002)
    assert c["beyond_bootstrap"] and c["beyond_seeds"] and c["passes"]
    assert c["difference"] == pytest.approx(-0.006) and c["ratio"] == pytest.approx(2.5)
    assert not report.compare_rows(a, b, seed_range=0.007)["passes"]  # seeds spread wider
    assert report.compare_rows(a, b, seed_range=None)["beyond_seeds"] is None
    overlap = report.compare_rows(a, _entry(0.0075, 0.006, 0.009), seed_range=0.0)
    assert not overlap["beyond_bootstrap"] and not overlap["passes"]
    ablation = {
        "current": _entry(0.010, 0.008, 0.012, [0.010, 0.011]),
        "two_stage": _entry(0.004, 0.003, 0.005, [0.004, 0.0075]),  # range 0.0035
        "oracle": _entry(0.003, 0.002, 0.004, [0.003, 0.0031]),
        "vat_only": _entry(0.009, 0.007, 0.011),  # one seed: the largest seed range counts
    }
    comps = {(c["a"], c["b"]): c for c in report.comparisons(ablation)}
    assert set(comps) == {("current", "two_stage"), ("current", "oracle"),
                          ("two_stage", "oracle"), ("current", "vat_only"),
                          ("vat_only", "two_stage")}  # fmt: skip
    assert comps[("current", "two_stage")]["seed_range"] == pytest.approx(0.0035)
    assert comps[("current", "two_stage")]["passes"]
    assert not comps[("two_stage", "oracle")]["passes"]
    assert comps[("vat_only", "two_stage")]["seed_range"] == pytest.approx(0.0035)


def test_study_schema_markdown_and_readme(tmp_path):
    ablation = {"current": _entry(0.01, 0.008, 0.012, [0.01, 0.012]),
                "two_stage": _entry(0.004, 0.003, 0.005, [0.004, 0.0042])}  # fmt: skip
    point = {k: 0.5 for k in report.SWEEP_KEYS}
    study = {"profile": "smoke", "n_boot": 10, "test_counts": {"n_real": 3, "n_bogus": 9},
             "ablation": ablation, "sweep": [point], "comparisons": report.comparisons(ablation)}  # fmt: skip
    path = report.write_study(tmp_path / "noise_study.json", study)
    assert report.read_study(path) == json.loads(path.read_text())
    for broken, match in (
        ({**study, "ablation": {"current": {"auc": 1}}}, "lacks 'fpr_at_tpr90'"),
        ({**study, "sweep": [{"current": 1}]}, "sweep point 0 lacks 'noise_multiplier'"),
        ({**study, "ablation": {}}, "non-empty"),
    ):
        with pytest.raises(ValueError, match=match):
            report.write_study(tmp_path / "bad.json", broken)
        assert not (tmp_path / "bad.json").exists()
    text = report.study_markdown(study, study_path="x.json", command="cmd")
    assert "| `current` |" in text and "| `two_stage` |" in text
    assert "Differences that pass both tests (the only ones a claim may rest on): `current` vs `two_stage`." in text  # fmt: skip

    from rbcore.evaluation.readme import STUDY_END, STUDY_START, main

    readme = tmp_path / "README.md"
    readme.write_text(f"head\n{STUDY_START}\nold\n{STUDY_END}\ntail\n")
    main(["--study", str(path), "--readme", str(readme)])
    new = readme.read_text()
    assert new.startswith("head\n") and new.endswith("tail\n") and "old" not in new
    assert "| `two_stage` |" in new and f"--study {path}" in new
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="marker"):
        main(["--study", str(path), "--readme", str(readme)])


def test_scale_label_noise_scales_the_causes_and_nothing_else():
    cfg = SurveyConfig()
    x2 = scale_label_noise(cfg, 2.0)
    for k, v in cfg.neighbour_share.items():
        assert x2.neighbour_share[k] == pytest.approx(2 * v)
    assert x2.train_astro_fraction == pytest.approx(2 * cfg.train_astro_fraction)
    assert x2.replace(neighbour_share=cfg.neighbour_share,
                      train_astro_fraction=cfg.train_astro_fraction) == cfg  # fmt: skip
    assert scale_label_noise(cfg, 1.0) == cfg
    with pytest.raises(ValueError, match="multiplier"):
        scale_label_noise(cfg, -1.0)
    with pytest.raises(ValueError, match="neighbour_share|train_astro_fraction"):
        scale_label_noise(cfg, 1000.0)  # shares would reach 1
    # The rates come out of the matching: more placements next to neighbours, more wrong
    # labels; x0 leaves only the mechanism's residual (unmatched or lost injections).
    rates = {}
    for m in (0.0, 8.0):
        _, p = simulate_candidates(1500, kind="train", seed=1, config=scale_label_noise(cfg, m))
        rates[m] = measured_noise_rates(p)
    assert rates[8.0][0] > rates[0.0][0] + 0.02  # real labels: neighbours outshine injections
    assert rates[8.0][1] >= rates[0.0][1]  # bogus labels: more astrophysical sources


def test_seed_spread():
    s = scores.seed_spread([0.01, 0.02, 0.015])
    assert s == {"n_seeds": 3, "mean": pytest.approx(0.015), "min": 0.01, "max": 0.02,
                 "range": pytest.approx(0.01)}  # fmt: skip
    with pytest.raises(ValueError, match="no values"):
        scores.seed_spread([])


def test_train_row_reuses_notebook03_models_only_when_identical(tmp_path):
    from rbcore.train.experiment import train_model

    rng = np.random.default_rng(0)
    n = 96
    labels = rng.integers(0, 2, n)
    images = rng.normal(size=(n, 29, 29, 3)).astype(np.float32)
    images[labels == 1, 12:17, 12:17, 1:] += 1.5
    flagged = np.zeros(n, bool)
    flagged[:5] = True
    data = sa.StudyData(images, pd.DataFrame({"label": labels}), labels, labels,
                        np.zeros(n, bool), flagged, np.zeros(n, bool),
                        np.arange(64), np.arange(64, n))  # fmt: skip
    base = TrainConfig(batch_size=32, unlabeled_batch_size=32, eval_batch_size=64, epochs=1)
    config = sa.row_config(base, "current", 0, None)
    train_model("current", images, labels, labeled_mask=np.ones(n, bool),
                train_idx=data.train_idx, val_idx=data.val_idx, config=config,
                run_dir=tmp_path, progress=False)  # fmt: skip
    ckpt, info = sa.train_row(data, "current", config, run_dir=tmp_path, study_dir=tmp_path / "s")
    assert ckpt == tmp_path / "models" / "current" and info["source"].startswith("notebook 03")
    assert info["n_labeled"] == 64
    # Another seed is another model: trained in the study folder, then found there on rerun.
    other = sa.row_config(base, "current", 1, None)
    ckpt1, info1 = sa.train_row(data, "current", other, run_dir=tmp_path, study_dir=tmp_path / "s")
    assert ckpt1 == tmp_path / "s" / "models" / "current_seed1" and info1["source"] == "study"
    again = sa.train_row(data, "current", other, run_dir=tmp_path, study_dir=tmp_path / "s")
    assert again[1]["source"] == "study (finished earlier)"
    # drop_flagged trains on the unflagged rows only.
    _, info2 = sa.train_row(
        data, "drop_flagged", config, run_dir=tmp_path, study_dir=tmp_path / "s"
    )
    assert info2["n_train"] == info2["n_labeled"] == 59


def test_sweep_test_subset_keeps_every_real_and_some_bogus():
    from rbcore.datasets import TestSet
    from rbcore.study.sweep import test_subset

    labels = np.array([1, 0, 0, 1, 0, 0, 0, 0])
    images = np.arange(8, dtype=np.float32)[:, None, None, None] * np.ones((1, 29, 29, 3))
    test = TestSet(images=images, labels=labels, params=pd.DataFrame({"id": range(8)}),
                   has_truth=False)  # fmt: skip
    sub, info = test_subset(test, 3, seed=0)
    assert int(sub.labels.sum()) == 2 and int((sub.labels == 0).sum()) == 3
    assert info == {"bogus_subset": 3, "subset_seed": 0}
    rows = sub.images[np.arange(len(sub.labels))][:, 0, 0, 0].astype(int)
    np.testing.assert_array_equal(labels[rows], sub.labels)  # images and labels stay aligned
    assert sub.params["id"].tolist() == rows.tolist()
    same, info = test_subset(test, None, seed=0)
    assert same is test and info == {"bogus_subset": None}


def test_sweep_point_reads_the_runs_own_set_only_when_identical(tmp_path):
    from rbcore.simulation import write_training_set
    from rbcore.study.sweep import point_data

    cfg = SurveyConfig()
    run_train = tmp_path / "run" / "data" / "train"
    write_training_set(run_train, 120, seed=3, config=cfg, n_detectors=2)
    kw = dict(survey=cfg, n_train=120, n_detectors=2, seed=3, val_fraction=0.3,
              run_train_dir=run_train)  # fmt: skip
    ts, tr, va, own = point_data(tmp_path / "x1", multiplier=1.0, **kw)
    assert own and ts.data_dir == run_train and not (tmp_path / "x1").exists()
    assert len(tr) + len(va) == 120 and set(tr).isdisjoint(va)
    ts2, _, _, own2 = point_data(tmp_path / "x2", multiplier=2.0, **kw)
    assert not own2 and ts2.data_dir == tmp_path / "x2" / "data" / "train"
    _, _, _, own3 = point_data(tmp_path / "x1b", multiplier=1.0, **{**kw, "seed": 4})
    assert not own3  # another seed is another set


def test_vat_rows_choose_eps_alpha_on_the_validation_split(tmp_path):
    rng = np.random.default_rng(1)
    n = 96
    labels = rng.integers(0, 2, n)
    images = rng.normal(size=(n, 29, 29, 3)).astype(np.float32)
    images[labels == 1, 12:17, 12:17, 1:] += 1.5
    wrong = np.zeros(n, bool)
    wrong[:4] = True
    data = sa.StudyData(images, pd.DataFrame({"label": labels}), labels, labels, wrong,
                        np.zeros(n, bool), np.zeros(n, bool), np.arange(64), np.arange(64, n))  # fmt: skip
    base = TrainConfig(batch_size=32, unlabeled_batch_size=32, eval_batch_size=64, epochs=1)
    nb03 = {"eps": 0.1, "alpha": 1.0}
    kw = dict(base=base, notebook03=nb03, grid=[{"eps": 0.3, "alpha": 0.5}], n_samples=None,
              epochs=1, out_dir=tmp_path)  # fmt: skip
    reused = sa.choose_eps_alpha(data, "oracle_flags_vat", per_row=False, **kw)
    assert (reused["eps"], reused["alpha"]) == (0.1, 1.0) and "notebook 03" in reused["source"]
    # two_stage is notebook 03's own sweep: never rerun
    assert sa.choose_eps_alpha(data, "two_stage", per_row=True, **kw)["eps"] == 0.1
    own = sa.choose_eps_alpha(data, "oracle_flags_vat", per_row=True, **kw)
    assert (own["eps"], own["alpha"]) == (0.3, 0.5) and own["source"].startswith("own sweep")
    assert len(own["table"]) == 1 and (tmp_path / "oracle_flags_vat").is_dir()
    with pytest.raises(ValueError, match="does not train with VAT"):
        sa.choose_eps_alpha(data, "current", per_row=True, **kw)
