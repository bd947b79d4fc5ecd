"""The decomposition study's parts (issue 22): partial AUC, step ratios, A/A, rows, the hook."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from rbcore.metrics import fpr_at_tpr, partial_auc
from rbcore.study.decomp_report import validate_decomposition
from rbcore.study.decomp_run import AA_ROW, decomposition_plan
from rbcore.study.decomposition import (
    DECOMP_ROWS,
    DecompData,
    MemorizationRecorder,
    row_config,
    row_training,
    study_split,
)
from rbcore.study.steps import (
    aa_check,
    fpr_at_tpr_sorted,
    paired_bootstrap_fpr,
    pooled_seed_variance,
    step_ratio,
)
from rbcore.train.config import TrainConfig


def _scores(rng, n_real=300, n_bogus=20_000, shift=0.0):
    y = np.r_[np.ones(n_real, int), np.zeros(n_bogus, int)]
    z = np.r_[rng.normal(3.0, 1.0, n_real), rng.normal(-shift, 1.0, n_bogus)]
    return y, z


# ------------------------------------------------------------------ partial AUC
@pytest.mark.parametrize("max_fpr", [1e-3, 1e-2, 0.3])
def test_partial_auc_standardized_is_sklearns_mcclish(max_fpr):
    y, z = _scores(np.random.default_rng(0))
    z[::7] = np.round(z[::7], 1)  # ties
    assert partial_auc(y, z, max_fpr, standardized=True) == pytest.approx(
        roc_auc_score(y, z, max_fpr=max_fpr), rel=1e-12
    )


def test_partial_auc_raw_form():
    y, z = _scores(np.random.default_rng(1))
    raw, mc = partial_auc(y, z, 1e-3), partial_auc(y, z, 1e-3, standardized=True)
    area = raw * 1e-3  # McClish: 0.5 (1 + (A - max^2/2) / (max - max^2/2))
    assert mc == pytest.approx(0.5 * (1 + (area - 0.5e-6) / (1e-3 - 0.5e-6)))
    assert partial_auc(y, np.where(y == 1, 5.0, -5.0), 1e-3) == pytest.approx(1.0)
    assert partial_auc(y, np.zeros(y.size), 1e-2) == pytest.approx(0.005)  # random: max/2
    assert partial_auc(y, z, 1.0) == pytest.approx(roc_auc_score(y, z))
    with pytest.raises(ValueError, match="max_fpr"):
        partial_auc(y, z, 0.0)


# ------------------------------------------------------------------ steps
def test_fpr_at_tpr_sorted_matches_metrics():
    rng = np.random.default_rng(2)
    y, z = _scores(rng, 101, 3000)
    z = np.round(z, 1)
    assert fpr_at_tpr_sorted(z[y == 1], z[y == 0]) == fpr_at_tpr(y, z, 0.9)[0]


def test_paired_bootstrap_is_exact_and_paired():
    rng = np.random.default_rng(3)
    y, z = _scores(rng, 200, 5000)
    z2 = z + rng.normal(0, 0.3, z.size)
    boot = paired_bootstrap_fpr(y, {"a": z, "b": z2, "a2": z.copy()}, n_boot=6, seed=11)
    assert np.array_equal(boot["a"], boot["a2"])  # the same resamples for every model
    # The same resamples drawn by hand, scored by rbcore.metrics.fpr_at_tpr.
    g = np.random.default_rng(11)
    real, bogus = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    for b in range(6):
        ri = g.integers(0, real.size, real.size)
        mult = np.bincount(g.integers(0, bogus.size, bogus.size), minlength=bogus.size)
        for key, s in (("a", z), ("b", z2)):
            sb = np.repeat(s[bogus], mult)
            yy = np.r_[np.ones(real.size, int), np.zeros(sb.size, int)]
            assert boot[key][b] == pytest.approx(fpr_at_tpr(yy, np.r_[s[real][ri], sb])[0])


def _models(rng, n_seeds, shift, n_real=300, n_bogus=20_000, luck=0.15):
    """Test-set scores of `n_seeds` models of one row: the same test set (fixed draws) and
    a training-luck offset of the bogus scores per seed."""
    y = np.r_[np.ones(n_real, int), np.zeros(n_bogus, int)]
    base = np.random.default_rng(99).normal(0, 1, y.size)
    out = []
    for _ in range(n_seeds):
        z = np.where(y == 1, 3.0 + base, base - shift + rng.normal(0, luck))
        out.append(z + rng.normal(0, 0.05, y.size))
    return y, out


def _step(rng, shift_a, shift_b, n_seeds=3, n_boot=100):
    y, za = _models(rng, n_seeds, shift_a)
    _, zb = _models(rng, n_seeds, shift_b)
    logits = {("a", k): z for k, z in enumerate(za)} | {("b", k): z for k, z in enumerate(zb)}
    boot = paired_bootstrap_fpr(y, logits, n_boot=n_boot, seed=0)
    fa = [fpr_at_tpr(y, z)[0] for z in za]
    fb = [fpr_at_tpr(y, z)[0] for z in zb]
    return step_ratio(fa, fb, [boot[("a", k)] for k in range(n_seeds)],
                      [boot[("b", k)] for k in range(n_seeds)], n_bogus=int((y == 0).sum()))  # fmt: skip


def test_aa_check_does_not_pass_and_a_real_effect_does():
    rng = np.random.default_rng(4)
    # A/A: one row at two disjoint seed sets, the same training distribution.
    y, z = _models(rng, 6, 0.0)
    logits = {k: s for k, s in enumerate(z)}
    boot = paired_bootstrap_fpr(y, logits, n_boot=100, seed=1)
    values = [fpr_at_tpr(y, s)[0] for s in z]
    aa = aa_check(values, [boot[k] for k in range(6)], n_bogus=int((y == 0).sum()))
    assert aa["passes"] is False and aa["ratio_ci"][0] < 1 < aa["ratio_ci"][1]
    # Over replicates the A/A passes about 5 % of the time (95 % intervals), never often.
    passes = [_step(rng, 0.0, 0.0)["passes"] for _ in range(12)]
    assert sum(passes) <= 2, passes
    # A real effect: row b's bogus half a sigma lower (an FPR ratio of ~3): passes, ratio > 1.
    eff = _step(rng, 0.0, 0.5)
    assert eff["passes"] is True and eff["ratio_ci"][0] > 1.0
    assert 1.0 < eff["detectable_ratio"] < eff["ratio"]
    assert eff["detectable_ratio"] == pytest.approx(np.exp(2.8016 * eff["se_log"]), rel=1e-3)


def test_step_ratio_seed_variance_pooled_or_unknown():
    rng = np.random.default_rng(5)
    boot = rng.uniform(1e-3, 2e-3, (1, 50))
    one = step_ratio([1e-3], [1e-3], boot, boot, n_bogus=10_000)
    assert one["ratio_ci"] is None and one["passes"] is None and one["detectable_ratio"] is None
    pooled = pooled_seed_variance({"r": [1e-3, 2e-3, 1.5e-3], "s": [3e-3]}, 10_000)
    assert pooled == pytest.approx(np.var(np.log([1e-3, 2e-3, 1.5e-3]), ddof=1))
    two = step_ratio([1e-3], [1e-3], boot, boot, n_bogus=10_000, pooled_var=pooled)
    assert two["se_seed"] == pytest.approx(np.sqrt(2 * pooled)) and two["passes"] is False
    zero = step_ratio([0.0, 0.0], [1e-3, 1e-3], np.zeros((2, 50)), boot.repeat(2, 0),
                      n_bogus=10_000)  # fmt: skip
    assert zero["floored"] and np.isfinite(zero["ratio"])  # 0 counted as half a bogus
    with pytest.raises(ValueError, match="per seed"):
        step_ratio([1e-3], [1e-3], boot.repeat(2, 0), boot, n_bogus=10_000)


# ------------------------------------------------------------------ rows and plan
def test_row_configs_say_what_the_table_says():
    simple = TrainConfig(epochs=3, alpha=1.0)
    cfg = {r: row_config(r, simple=simple, complex_overrides={"epochs": 2}, seed=7)
           for r in DECOMP_ROWS}  # fmt: skip
    assert all(c.seed == 7 for c in cfg.values())
    for r in ("talk_current", "simple_all", "simple_oracle"):
        assert cfg[r] == dataclasses.replace(simple, alpha=0.0, seed=7)
    for r in ("complex_all", "complex_removed", "complex_oracle"):
        c = cfg[r]
        assert (c.architecture, c.optimizer, c.alpha, c.lambda_auc, c.lambda_ce, c.epochs) == (
            "PaperResNet",
            "sgd",
            0.0,
            0.0,
            0.1,
            2,
        )
    ech = cfg["complex_all_ech"]
    assert (ech.loss_weights, ech.lambda_auc, ech.alpha) == ("as_named", 0.1, 0.0)
    coded, named = cfg["complex_unlabeled_vat"], cfg["complex_unlabeled_vat_named"]
    assert coded.loss_weights == "as_coded" and named.loss_weights == "as_named"
    assert coded.alpha == 0.1 and coded.flagged_in_batch and coded.vat_space == "raw"
    assert dataclasses.replace(named, loss_weights="as_coded") == coded


def test_row_training_and_split():
    rng = np.random.default_rng(6)
    n = 280
    det = np.repeat(np.arange(4), n // 4)
    true = rng.integers(0, 2, n)
    given = np.where(rng.random(n) < 0.1, 1 - true, true)
    train, val = study_split(det, given, np.arange(n), seed=0)
    assert np.intersect1d(train, val).size == 0 and train.size + val.size == n
    assert all(np.isin(d, det[val]) for d in range(4))  # every detector validates
    flagged = rng.random(n) < 0.2
    data = DecompData(None, det, given, true, flagged, train, val)
    y, idx, lab = row_training(data, "complex_removed")
    assert np.array_equal(idx, train[~flagged[train]]) and lab.all()
    y, idx, lab = row_training(data, "complex_unlabeled_vat")
    assert np.array_equal(idx, train) and np.array_equal(lab, ~flagged)
    y, idx, lab = row_training(data, "complex_oracle")
    assert np.array_equal(y, true) and lab.all()
    with pytest.raises(ValueError, match="detector 0"):
        study_split(det, np.r_[1, np.zeros(n - 1, int)], np.arange(n), seed=0)


def test_plan_seeds():
    plan = decomposition_plan(list(DECOMP_ROWS), [0, 1], [2, 3], complex_seeds=1)
    assert ("complex_all", 0) in plan and ("complex_all", 1) not in plan
    assert ("simple_all", 1) in plan and plan[-2:] == [(AA_ROW, 2), (AA_ROW, 3)]
    assert plan[: len(DECOMP_ROWS)] == [(r, 0) for r in DECOMP_ROWS]
    each = decomposition_plan(["talk_current", "simple_all"], [0, 1, 2], [], each_seeds=1)
    assert each == [("talk_current", 0), ("simple_all", 0), ("simple_all", 1), ("simple_all", 2)]
    with pytest.raises(ValueError, match="disjoint"):
        decomposition_plan(["simple_all"], [0, 1], [1, 2])


def test_memorization_recorder(tmp_path):
    labels = np.array([1, 0, 1, 0, 1, 0])
    images = np.zeros((6, 29, 29, 3), np.float32)
    rec = MemorizationRecorder(tmp_path / "m.json", images, labels, wrong=np.array([0, 1]),
                               right=np.array([2, 3, 4]))  # fmt: skip
    logits = np.array([5.0, 5.0, 5.0, 5.0, -5.0, 0.0])  # fits 0 (1), not 1 (0); 2 yes, 3/4 no

    def predict(x):
        return logits[np.asarray(x.index)]

    rec.hook("p", np.arange(6))(1, predict)
    rec.hook("q", np.array([0, 2]))(1, predict)  # a second model (detector) of the row
    curve = MemorizationRecorder(tmp_path / "m.json", images, labels, [], []).curve()
    assert curve == [{"epoch": 1, "fit_wrong": 2 / 3, "fit_right": 2 / 4, "n_wrong": 3,
                      "n_right": 4}]  # fmt: skip


def test_validate_decomposition_names_the_key():
    row = {"auc": {"value": 0.9, "ci95": [0.8, 1]}, "fpr_at_tpr90": {"value": 1e-3, "ci95": [0, 1]},
           "fpr_at_tpr90_seeds": {"values": [1e-3], "mean": 1e-3, "min": 1e-3, "max": 1e-3},
           "pauc": {"value": 0.5, "ci95": [0.4, 0.6]}, "n_labeled": 10, "seconds": 1.0}  # fmt: skip
    study = {"decomposition": {"a": row, "b": row}, "memorization": {"a": []},
             "steps": [{"from": "a", "to": "b", "ratio": 1.0, "ratio_ci": None,
                        "detectable_ratio": None}]}  # fmt: skip
    validate_decomposition(study)
    with pytest.raises(ValueError, match="'pauc'"):
        validate_decomposition(
            {**study, "decomposition": {"a": {k: v for k, v in row.items() if k != "pauc"}}}
        )
    with pytest.raises(ValueError, match="step 0 lacks 'detectable_ratio'"):
        validate_decomposition({**study, "steps": [{"from": "a", "to": "b", "ratio": 1,
                                                    "ratio_ci": None}]})  # fmt: skip


def test_fit_calls_on_epoch_end_with_the_current_model():
    from rbcore.inference import predict_logits
    from rbcore.train.loop import fit

    rng = np.random.default_rng(7)
    x = rng.normal(100, 10, (64, 29, 29, 3)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    calls = []
    model, history = fit(x, y, config=TrainConfig(epochs=2, batch_size=32, eval_batch_size=64),
                         progress=False,
                         on_epoch_end=lambda e, predict: calls.append((e, predict(x[:10]))))  # fmt: skip
    assert [c[0] for c in calls] == [1, 2] and len(history) == 2
    assert not np.allclose(calls[0][1], calls[1][1])  # the model of that epoch, not a copy
    np.testing.assert_allclose(calls[1][1], predict_logits(model, x[:10]), rtol=1e-5, atol=1e-5)


def test_budget_estimate_and_largest_size():
    from rbcore.study.budget import largest_size, model_kind, plan_seconds

    rates = {"train_simple": 1000.0, "train_complex": 50.0, "train_complex_vat": 20.0,
             "eval_simple": 5000.0, "eval_complex": 200.0, "compile_simple": 5.0,
             "compile_complex": 40.0, "compile_complex_vat": 80.0, "simulate": 1000.0}  # fmt: skip
    assert [model_kind(r) for r in ("talk_current", "complex_all_ech", "complex_unlabeled_vat")] \
        == ["simple", "complex", "complex_vat"]  # fmt: skip
    plan = [("complex_all", 0), ("complex_removed", 0), ("complex_all", 1)]
    kw = dict(rates=rates, n_val=0, n_memo=0, n_test=0, epochs={"simple": 1, "complex": 2})
    est = plan_seconds(plan, n_train=100, **kw)
    # 3 models x 2 epochs x 100 samples / 50 per s, one compilation (the same loss).
    assert est["total"] == pytest.approx(3 * 2 * 100 / 50 + 40)
    full = decomposition_plan(list(DECOMP_ROWS), [0, 1], [2, 3], complex_seeds=1)
    kw = dict(plan=full, rates=rates, n_memo=100, n_test=10_000, epochs={"simple": 2, "complex": 3})
    n = largest_size(3600, 10**6, **kw)
    assert plan_seconds(n_train=int(n * 6 / 7), n_val=int(n / 7), **kw)["total"] <= 3600
    m = n + 1000
    assert plan_seconds(n_train=int(m * 6 / 7), n_val=int(m / 7), **kw)["total"] > 3600
    assert largest_size(1.0, 10**6, **kw) is None


def test_complex_rows_share_the_recipes_stage2_fields():
    """The residual-network rows train with the fields of issue 21's paper_complex_* recipes,
    except where the row says otherwise (the loss terms) and the profile's sizes (epochs)."""
    from rbcore import recipes

    own = {"alpha", "lambda_auc", "loss_weights", "epochs"}  # the row's loss; the profile's epochs
    for row, name in (("complex_unlabeled_vat", "paper_complex_unlabeled"),
                      ("complex_removed", "paper_complex_removed"),
                      ("complex_all", "paper_complex_all")):  # fmt: skip
        recipe = recipes.get(name)
        config = row_config(row, simple=TrainConfig(), complex_overrides={"epochs": 2}, seed=0)
        assert config.architecture == recipe.network
        for key, value in recipe.train.items():
            if key not in own:
                assert getattr(config, key) == value, (row, key)
    unl = recipes.get("paper_complex_unlabeled").train
    coded = row_config("complex_unlabeled_vat", simple=TrainConfig(), complex_overrides={}, seed=0)
    assert (coded.alpha, coded.lambda_auc, coded.loss_weights) == (
        unl["alpha"], unl["lambda_auc"], unl["loss_weights"])  # fmt: skip
    assert recipes.get("paper_simple_each").treatment == DECOMP_ROWS["talk_current"].treatment
