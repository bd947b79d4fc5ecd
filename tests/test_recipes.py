"""Recipes (rbcore.recipes) and treatments (rbcore.train.treatments): every recipe trains end
to end on tiny simulated data through the notebooks' path; the README table is the code's."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rbcore import recipe_table, recipes
from rbcore.datasets import load_test, load_training
from rbcore.mislabel.noise import error_table_from_truth, make_label_error, target_ratio
from rbcore.simulation import write_test_set, write_training_set
from rbcore.train.config import profile_config
from rbcore.train.treatments import (
    score_recipe,
    split_5_1_1,
    train_recipe,
    treatment_parts,
)

README = Path(__file__).resolve().parents[1] / "README.md"
# Tiny sizes: one epoch, batches of 16 (the stage-1 and stage-2 models alike).
# Evaluation passes of 32: every validation and scoring pass has one shape (one compilation).
TINY = dict(epochs=1, batch_size=16, unlabeled_batch_size=16, eval_batch_size=32)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    write_training_set(root / "train", 240, seed=3, n_detectors=3)
    write_test_set(root / "test", 6, 30, seed=4, n_detectors=3)
    return load_training(root / "train"), load_test(root / "test")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One run folder for every recipe, as in a notebook run: stage 1 is shared where equal."""
    return tmp_path_factory.mktemp("run")


# --------------------------------------------------------------------------- end to end


# The residual network costs ~1 min of compilation per new training step under load: one
# Complex recipe trains it in both stages (the network is the recipe's, rb:774), the others
# test their protocol (labels, loss weights, VAT space, flags in the batch) on the CNN.
RESNET_RECIPE = "paper_complex_unlabeled"


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_recipe_trains_end_to_end(name, data, run_dir):
    ts, test = data
    network = {} if name == RESNET_RECIPE else {"architecture": "RBCNN"}
    info = train_recipe(
        name, ts.images, ts.params, profile="smoke", run_dir=run_dir, **TINY, **network
    )
    recipe = recipes.RECIPES[name]
    det = test.params["detector_id"].to_numpy()
    expected = (
        {f"detector{d}" for d in np.unique(ts.params["detector_id"])}
        if recipe.treatment == "each"
        else {recipe.treatment}
    )
    assert set(info["parts"]) == expected
    for part in expected:
        assert (run_dir / "models" / name / part / "config.json").is_file()
    assert (recipe.stage1 is not None) == ("n_flagged" in info)
    z = score_recipe(run_dir, name, test.images, det)
    assert z.shape == (len(test),) and np.isfinite(z).all()
    assert info["train_config"]["architecture"] == network.get("architecture", recipe.network)


def test_stage1_trains_the_recipes_network(data, run_dir):
    """The fold models are the recipe's network (rb:774): PaperResNet for paper_complex_*
    (reused from the end-to-end run of RESNET_RECIPE when it ran first)."""
    from rbcore.checkpoint import read_config
    from rbcore.train.treatments import stage1_logits

    ts, _ = data
    y, det = ts.params["label"].to_numpy(), ts.params["detector_id"].to_numpy()
    z = stage1_logits(RESNET_RECIPE, ts.images, y, det, profile="smoke",
                      run_dir=run_dir, **TINY)  # fmt: skip
    assert z.shape == y.shape and np.isfinite(z).all()
    archs = {read_config(p)["model"]["architecture"]
             for p in (run_dir / "recipes" / "stage1").glob("*/mislabel/fold0/model/best")}  # fmt: skip
    assert "PaperResNet" in archs


def test_each_scores_every_candidate_with_its_own_detector(data, run_dir):
    ts, test = data
    name = "paper_simple_each"  # trained above, or here (resumed when done)
    train_recipe(name, ts.images, ts.params, profile="smoke", run_dir=run_dir, **TINY)
    det = test.params["detector_id"].to_numpy()
    assert set(det) == {0, 1, 2}  # write_test_set(n_detectors=3): the training set's detectors
    z = score_recipe(run_dir, name, test.images, det)
    # swapping the detectors changes the scores: each candidate went to its own model
    assert not np.allclose(z, score_recipe(run_dir, name, test.images, (det + 1) % 3))
    with pytest.raises(ValueError, match="no model for detector 7"):
        score_recipe(run_dir, name, test.images, np.full(len(test), 7))
    with pytest.raises(ValueError, match="give detector_ids"):
        score_recipe(run_dir, name, test.images)


def test_ledger_flags_are_reused_only_for_the_recipe_that_made_them(tmp_path):
    import json

    import pandas as pd

    from rbcore.train.treatments import ledger_inputs

    params = pd.DataFrame({"id": [0, 1, 2], "detector_id": [0, 0, 1], "label": [1, 0, 1]})
    ledger = params.assign(flagged=[0, 1, 0], oof_logit=[2.0, 1.5, -3.0])
    ledger.to_csv(tmp_path / "label_ledger.csv", index=False)
    (tmp_path / "mislabel_metrics.json").write_text(json.dumps({"recipe": "paper_complex_removed"}))
    flags, z = ledger_inputs(tmp_path, "paper_complex_removed", params)
    assert flags.tolist() == [False, True, False] and z.tolist() == [2.0, 1.5, -3.0]
    assert ledger_inputs(tmp_path, "paper_complex_unlabeled", params) == (None, None)


# --------------------------------------------------------------------------- treatments


def test_split_5_1_1_is_stratified_and_partitions():
    labels = np.r_[np.zeros(70, int), np.ones(70, int)]
    tr, va, te = split_5_1_1(np.arange(140), labels, 0, 1)
    assert (tr.size, va.size, te.size) == (100, 20, 20)
    assert np.array_equal(np.sort(np.r_[tr, va, te]), np.arange(140))
    assert labels[va].sum() == 10 and labels[te].sum() == 10
    with pytest.raises(ValueError, match="detector 5.*at least 4"):
        split_5_1_1(np.arange(10), np.r_[np.zeros(8, int), np.ones(2, int)], 0, 1, "detector 5")


def test_mix_is_one_average_detector_drawn_in_proportion():
    det = np.repeat([0, 1, 2, 3], [700, 1400, 2100, 2800])
    labels = np.tile([0, 1], det.size // 2)
    (train, val), = treatment_parts("mix", det, labels).values()  # fmt: skip
    # n_d = round(size_d / total * mean) = size_d / 4 here (rb:194), of which 5:1 kept
    drawn = np.bincount(det[np.r_[train, val]], minlength=4)
    assert np.array_equal(drawn, np.array([175, 350, 525, 700]) * 6 // 7)
    assert drawn.sum() * 7 / 6 == pytest.approx(det.size / 4)  # one average detector's worth
    assert np.intersect1d(train, val).size == 0


def test_each_splits_per_detector_and_all_as_coded():
    det = np.repeat([0, 1], 70)
    labels = np.tile([0, 1], 70)
    parts = treatment_parts("each", det, labels, seed=0)
    assert set(parts) == {"detector0", "detector1"}
    for d, (tr, va) in enumerate(parts.values()):
        assert set(det[tr]) == set(det[va]) == {d} and (tr.size, va.size) == (50, 10)
    (tr, va), = treatment_parts("all", det, labels, seed=0).values()  # fmt: skip
    assert tr.size == 105 and np.array_equal(va, np.arange(140))  # 75:25, checks on all


# --------------------------------------------------------------------------- label options


def test_label_noise_flips_agreeing_samples_in_proportion():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 20_000)
    labels = (z > 0).astype(int)
    wrong = rng.random(z.size) < 0.02  # 2 % of the labels are wrong ...
    labels[wrong] = 1 - labels[wrong]
    table = error_table_from_truth(z, labels, wrong)
    flip = make_label_error(z, labels, table, factor=2.0, seed=42)
    # the flipped ones agreed with the score's side; about as many as the disagreeing wrong
    assert np.all(labels[flip] == (z[flip] >= 0))
    disagree_wrong = wrong & (labels != (z >= 0))
    assert abs(flip.sum() - disagree_wrong.sum()) < 0.25 * disagree_wrong.sum()
    assert np.array_equal(flip, make_label_error(z, labels, table, factor=2.0, seed=42))
    r1, r2, p = target_ratio(table)
    assert r1[0] == -15 and r2[-1] == 15 and p[0] == p[-1] == 1.0
    with pytest.raises(ValueError, match="> 1"):
        make_label_error(z, labels, table, factor=1.0)


# --------------------------------------------------------------------------- the table


def test_recipe_names_and_sources():
    required = {"talk_current", "paper_simple_each", "paper_simple_mix", "paper_simple_all",
                "paper_complex_all", "paper_complex_removed", "paper_complex_unlabeled"}  # fmt: skip
    assert required <= set(recipes.RECIPES)
    for r in recipes.RECIPES.values():
        # every stage-2 override carries a source
        assert set(r.train) <= set(r.sources), r.name
    assert recipes.RECIPES["paper_complex_pseudo"].labels == "pseudo"
    assert recipes.RECIPES["paper_complex_unlabeled_noise2"].label_noise == 2.0
    with pytest.raises(ValueError, match="unknown recipe"):
        recipes.get("nope")


def test_complex_recipes_agree_with_the_losses_preset():
    """The Complex recipes' stage-2 values are rbcore.train.config.PAPER_STAGE2's."""
    from rbcore.train.config import PAPER_STAGE2

    for name in ("paper_complex_all", "paper_complex_unlabeled", "paper_complex_pseudo"):
        train = recipes.RECIPES[name].train
        assert {k: train[k] for k in PAPER_STAGE2 if k in train} == {
            k: v for k, v in PAPER_STAGE2.items() if k in train
        }
        assert set(PAPER_STAGE2) - set(train) <= {"auc_margin", "n_power"}  # their defaults


def test_profiles_cap_epochs_but_paper_runs_the_code_values():
    smoke = recipes.stage2_config("paper_simple_all", "smoke")
    assert smoke.epochs == 4 and smoke.optimizer == "adadelta" and smoke.learning_rate == 1e-3
    assert smoke.batch_size == 64 and smoke.patience == 10
    assert recipes.stage2_config("paper_simple_all", "paper").epochs == 1_000_000
    # talk_current is today's notebook-03 configuration (VAT at Miyato's alpha 1)
    assert recipes.stage2_config("talk_current", "default") == profile_config("default", alpha=1.0)
    s1 = recipes.stage1_settings("talk_current", "paper")
    assert (s1["n_folds"], s1["fold_by"], s1["fold_seed"]) == (5, "detector_stratified", 0x5EED)
    assert (s1["config"].epochs, s1["config"].patience) == (1000, 10)


def test_readme_table_is_the_code_table():
    text = README.read_text()
    m = re.search(r"<!-- recipes:begin -->\n(.*?)<!-- recipes:end -->", text, re.S)
    assert m, "README.md lacks the recipes block"
    assert m.group(1) == recipe_table.markdown_table(), "run: python -m rbcore.recipe_table"
