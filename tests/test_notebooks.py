"""The notebook runner, and every numbered notebook run headless on the smoke profile.

The notebooks run once, in order, into one temporary run folder (they talk to each other
only through files there); each test then checks what its notebook wrote.
"""

import json
import os
import sqlite3
from pathlib import Path

import pytest

from rbcore.mislabel import LEDGER_COLUMNS
from rbcore.notebooks import (
    MALLOC_TUNABLES,
    NotebookFailed,
    discover,
    kernel_environment,
    make_plan,
    run_all,
    run_notebook,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
NOTEBOOKS = discover(ROOT / "notebooks")


# ----------------------------------------------------------------------------- the runner
def test_runner_runs_fixture_and_writes_outputs(tmp_path, monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv("RBCORE_MALLOC_TUNING", raising=False)
    plan = make_plan("smoke", notebooks_dir=FIXTURES, build_root=tmp_path)
    assert plan.figures_dir == (tmp_path / "smoke" / "figures").resolve()
    done = run_all(plan, log=lambda *a, **k: None)
    assert [p.name for p in done] == ["00_fixture.ipynb"]
    assert json.loads((plan.run_dir / "fixture.json").read_text()) == {
        "profile": "smoke",
        "seed": 0,
    }
    assert (plan.figures_dir / "00_fixture.pdf").exists() and (
        plan.figures_dir / "00_fixture.png"
    ).exists()
    executed = json.loads(done[0].read_text())
    assert any(c.get("outputs") is not None for c in executed["cells"] if c["cell_type"] == "code")
    timings = json.loads((plan.build_dir / "timings.json").read_text())
    entry = timings["notebooks"]["00_fixture"]
    assert entry["seconds"] > 0 and entry["cpu_count"] >= 1
    assert timings["total_seconds"] == entry["seconds"] and timings["profile"] == "smoke"
    # the kernels ran with rbcore's malloc settings; this process's environment is restored
    assert entry["glibc_tunables"] == MALLOC_TUNABLES
    assert "GLIBC_TUNABLES" not in os.environ


def test_kernel_environment_keeps_the_users_choice():
    assert kernel_environment({}) == {"GLIBC_TUNABLES": MALLOC_TUNABLES}
    assert kernel_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) == {}
    assert kernel_environment({"RBCORE_MALLOC_TUNING": "0"}) == {}


def test_runner_names_failing_notebook_and_cell(tmp_path):
    plan = make_plan("smoke", notebooks_dir=FIXTURES, build_root=tmp_path)
    with pytest.raises(
        NotebookFailed, match=r"00_fixture\.ipynb failed in cell \d+.*fixture asked to fail"
    ):
        run_notebook(plan.notebooks[0], plan, extra={"fail": True})


def test_runner_rejects_unknown_profile_and_number(tmp_path):
    with pytest.raises(ValueError, match="unknown profile"):
        make_plan("huge", notebooks_dir=FIXTURES)
    with pytest.raises(ValueError, match="no notebook numbered"):
        make_plan("smoke", notebooks_dir=FIXTURES, only=["42"])


def test_default_profile_writes_figures_to_repository():
    plan = make_plan("default", build_root=Path("/nonexistent-build"))
    assert plan.figures_dir == (ROOT / "figures").resolve()


# ------------------------------------------------------------------- the smoke pipeline
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Run every numbered notebook on the smoke profile; record which ran and the failure."""
    build = tmp_path_factory.mktemp("build")
    plan = make_plan("smoke", build_root=build)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    ran, failure = set(), None
    for nb in plan.notebooks:
        try:
            run_notebook(nb, plan)
        except NotebookFailed as e:
            failure = str(e)
            break
        ran.add(nb.name[:2])
    return plan, ran, failure


def _check(smoke_run, number):
    plan, ran, failure = smoke_run
    assert number in ran, f"notebook {number} did not run: {failure}"
    figs = list(plan.figures_dir.glob(f"{number}_*.png"))
    assert figs, f"notebook {number} saved no figure"
    for png in figs:
        assert png.with_suffix(".pdf").exists(), f"{png.name} has no PDF twin"
    return plan.run_dir


def _json(path: Path) -> dict:
    assert path.exists(), f"{path} not written"
    return json.loads(path.read_text())


NUMBERS = [p.name[:2] for p in NOTEBOOKS]


def test_all_seven_notebooks_present():
    assert NUMBERS == ["01", "02", "03", "04", "05", "06", "07"], NUMBERS


def test_01_data_preparation(smoke_run):
    run = _check(smoke_run, "01")
    train = run / "data" / "train"
    images = sorted(train.glob("images*.npy"))
    assert images and len(images) == len(list(train.glob("params*.csv")))
    assert (run / "data" / "test" / "test_real.npy").exists()
    assert (run / "data" / "test" / "test_bogus.npy").exists()
    summary = _json(run / "data" / "summary.json")
    # Issue 12: the label noise measured from the truth columns, with its causes.
    for name in ("real", "bogus"):
        assert 0 <= summary[f"label_noise_rate_{name}"] < 0.2
        assert (
            sum(summary["train"][f"wrong_by_cause_{name}"].values())
            == (summary["train"][f"n_wrong_{name}"])
        )
    assert (run / "survey_config.json").exists()  # read by notebooks 05 and 06


def test_02_mislabel_discovery(smoke_run):
    import pandas as pd

    run = _check(smoke_run, "02")
    ledger = pd.read_csv(run / "label_ledger.csv")
    for col in LEDGER_COLUMNS:
        assert col in ledger.columns, col
    assert ledger["id"].is_unique
    assert set(ledger["flagged"].unique()) <= {0, 1}
    metrics = _json(run / "mislabel_metrics.json")
    assert {"insample", "oof", "cleanlab"} <= set(metrics)


def test_03_vat_training(smoke_run):
    from rbcore.checkpoint import load_model

    run = _check(smoke_run, "03")
    for name in ("current", "vat"):
        model, meta = load_model(run / "models" / name)
        assert meta["model"]["architecture"] == "RBCNN"


def test_04_evaluation(smoke_run):
    run = _check(smoke_run, "04")
    metrics = _json(run / "metrics.json")
    for model in ("current", "vat"):
        for key in ("accuracy", "precision", "recall", "f1", "auc", "fpr_at_tpr90"):
            entry = metrics[model][key]
            lo, hi = entry["ci95"]
            assert lo <= entry["value"] <= hi or entry["value"] != entry["value"], (model, key)
    assert metrics["test_counts"]["n_real"] > 0 and metrics["test_counts"]["n_bogus"] > 0


def test_05_deployment_week(smoke_run):
    run = _check(smoke_run, "05")
    with sqlite3.connect(run / "candidates.sqlite") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        assert "candidates" in tables
        assert db.execute("select count(*) from candidates").fetchone()[0] >= 0


def _needs_alerts():
    from rbcore import ztf

    path = ztf.default_alerts_path()
    if not path.is_file():
        pytest.skip(f"no ZTF alert file at {path} (data/README.md tells how to make one)")


def test_06_real_alerts(smoke_run):
    _needs_alerts()
    run = _check(smoke_run, "06")
    result = _json(run / "real_alerts.json")
    for model in ("current", "vat"):
        for key in ("auc_vs_drb", "spearman_vs_drb", "asteroid_recall"):
            assert key in result[model]


def test_06_explicit_alerts_path_missing_is_an_error_and_leaves_nothing_stale(smoke_run, tmp_path):
    # issue 25: an explicit path that cannot be read is an error naming it (no "nothing to
    # score" and exit 0), and the previous run's results do not survive (a run folder of its
    # own, so that the smoke run's results stay for the tests below)
    import dataclasses

    plan = dataclasses.replace(smoke_run[0], run_dir=tmp_path / "run")
    nb = [p for p in plan.notebooks if p.name.startswith("06")][0]
    plan.run_dir.mkdir()
    (plan.run_dir / "real_alerts.json").write_text("{}")  # a previous run's
    missing = tmp_path / "no_alerts.npz"
    with pytest.raises(NotebookFailed, match=f"FileNotFoundError: alerts_path {missing} does not"):
        run_notebook(nb, plan, extra={"alerts_path": str(missing)})
    assert not (plan.run_dir / "real_alerts.json").exists()


# ------------------------------------------------------ notebook 06: counts and galleries (issue 8)
def test_06_real_alerts_counts_and_figures(smoke_run):
    import numpy as np

    from rbcore import ztf

    _needs_alerts()
    run = _check(smoke_run, "06")
    result = _json(run / "real_alerts.json")
    alerts = ztf.load_alerts(result["data"]["alerts_path"])
    drb, weak = alerts.meta["drb"].to_numpy(), alerts.meta["weak_labels"].to_numpy()
    for model in ("current", "vat"):
        r = result[model]
        assert r["n_alerts"] == len(alerts) and r["n_with_drb"] == int(np.isfinite(drb).sum())
        assert r["n_drb_real"] + r["n_drb_bogus"] == r["n_with_drb"]
        assert r["n_asteroids"] == int((weak == 1).sum())
        assert 0.0 <= r["auc_vs_drb"] <= 1.0 and -1.0 <= r["spearman_vs_drb"] <= 1.0
        for tag in ("we_real", "we_bogus"):
            assert (smoke_run[0].figures_dir / f"06_disagree_{model}_{tag}.png").exists()


def test_06_braai_judges_the_simulation(smoke_run):
    """Issue 23: braai's verdicts on the simulated survey and braai d6_m9 as a peer."""
    from rbcore.profiles import settings
    from rbcore.ztf import judge
    from rbcore.ztf.braai import DEFAULT_WEIGHTS_DIR

    _needs_alerts()
    if judge.braai_missing(DEFAULT_WEIGHTS_DIR):
        pytest.skip(judge.braai_missing(DEFAULT_WEIGHTS_DIR))
    result = _json(_check(smoke_run, "06") / "real_alerts.json")
    on_sim = result["braai_on_simulation"]
    cats = {k: v for k, v in on_sim.items() if isinstance(v, dict) and "pass_rate" in v}
    assert sum(v["n"] for v in cats.values()) == settings("smoke", "real_alerts")["braai_n_sim"]
    assert {"variable_star", "noise", "asteroid"} <= set(cats)
    assert all(0 <= v["pass_rate"] <= 1 and 0 <= v["mean_score"] <= 1 for v in cats.values())
    # the overall rates are the category pass rates weighted by the truth
    n_bogus_passed = sum(v["n"] * v["pass_rate"] for v in cats.values() if v["truth_real"] == 0)
    assert on_sim["n_bogus"] > 0 and on_sim["n_real"] > 0
    assert on_sim["fpr"] >= n_bogus_passed / on_sim["n_bogus"] - 1e-9
    assert 0 <= on_sim["fnr"] <= 1 and on_sim["published"] == {"fnr": 0.011, "fpr": 0.029}
    peer = result["models"]["braai_d6_m9"]
    assert 0.5 < peer["auc_vs_drb"] <= 1 and peer["n_alerts"] == result["split"]["n_eval"]
    figs = smoke_run[0].figures_dir
    assert any((figs / f"06_braai_{t}.png").exists() for t in ("missed_real", "passed_bogus"))


# ------------------------------------------------- notebook 02: ledger, metrics, figures (issue 5)
def test_02_mislabel_ledger_metrics_and_figures(smoke_run):
    import numpy as np

    from rbcore.datasets import load_training
    from rbcore.mislabel import read_ledger, sigmoid

    run = _check(smoke_run, "02")
    ts = load_training(run / "data" / "train")
    ledger = read_ledger(run / "label_ledger.csv")
    assert ledger["id"].tolist() == ts.params["id"].tolist()  # one row per training sample
    assert ledger["label"].tolist() == ts.params["label"].tolist()
    assert ledger["flagged"].tolist() == ledger["oof_flag"].tolist()  # the paper's rule
    np.testing.assert_allclose(ledger["oof_score"], sigmoid(ledger["oof_logit"]), rtol=1e-5)
    # the paper code's folds (stratified by detector id): every detector in every fold
    assert (ledger.groupby("detector_id")["fold"].nunique() == ledger["fold"].nunique()).all()
    metrics = _json(run / "mislabel_metrics.json")
    assert metrics["n_samples"] == len(ledger)
    for m in ("insample", "oof", "cleanlab"):
        assert metrics[m]["n_flagged"] == int(ledger[f"{m}_flag"].sum())
        if ts.has_truth:
            wrong = ts.params["label_is_wrong"].to_numpy() == 1
            flagged = ledger[f"{m}_flag"].to_numpy() == 1
            assert metrics[m]["tp"] == int((flagged & wrong).sum())
    if ts.has_truth:
        assert set(metrics["estimated_rates"]) == {"real", "bogus"}
    names = ["output_distribution", "mislabel_gallery_real", "mislabel_gallery_bogus"]
    if ts.has_truth:
        names += ["mislabel_ratio", "detection_pr", "recall_by_group"]
    for name in names:
        assert (smoke_run[0].figures_dir / f"02_{name}.png").exists(), name


# ------------------------------------------------ notebook 05: the deployment week (issue 7)
def test_05_deployment_database_summary_and_figures(smoke_run):
    import numpy as np

    run = _check(smoke_run, "05")
    summary = _json(run / "deployment_summary.json")
    cfg = summary["config"]
    n = cfg["n_nights"] * cfg["candidates_per_night"]
    assert summary["n_candidates_raw"] == n
    assert summary["throughput"]["simulation_per_s"] > 0
    assert summary["throughput"]["scoring_per_s"] > 0
    thr = cfg["threshold"]
    with sqlite3.connect(run / "candidates.sqlite") as db:
        nights = [r[0] for r in db.execute("SELECT night FROM nights ORDER BY night")]
        assert nights == list(range(cfg["n_nights"]))
        assert db.execute("SELECT SUM(n) FROM night_summary").fetchone()[0] == n
        registered = db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
        passing = db.execute(
            "SELECT COALESCE(SUM(n), 0) FROM night_summary WHERE pass_current = 1 OR pass_vat = 1"
        ).fetchone()[0]
        assert registered == passing  # every registered candidate stored, once
        below = "SELECT COUNT(*) FROM candidates WHERE score_current < ? AND score_vat < ?"
        assert db.execute(below, (thr, thr)).fetchone()[0] == 0
    for model in ("current", "vat"):
        assert np.sum(summary["models"][model]["confusion_raw"]) == n
        assert summary["models"][model]["registered_per_night"] >= 0  # issue 13, item 4
        assert set(summary["models"][model]["fp_taxonomy"]) == set(summary["talk"]["fp_inspected"])
    with np.load(run / "deploy_cutouts.npz") as cut:
        assert cut["images"].shape[1:] == (29, 29, 3)
        assert len(cut["candidate_id"]) == len(cut["images"])
    for name in ("05_confusion", "05_false_negatives", "05_registered_per_night", "05_budget"):
        assert (smoke_run[0].figures_dir / f"{name}.png").exists(), name


# ------------------------------------------------------------------ 04 evaluation (issue 6)
def test_04_evaluation_outputs(smoke_run):
    import numpy as np

    run = _check(smoke_run, "04")
    plan = smoke_run[0]
    for name in (
        "04_output_distributions",
        "04_confusion_matrices",
        "04_roc",
        "04_pr",
        "04_reliability_current",
        "04_reliability_vat",
    ):
        assert (plan.figures_dir / f"{name}.png").exists(), name
    metrics = _json(run / "metrics.json")
    n = metrics["test_counts"]["n_real"] + metrics["test_counts"]["n_bogus"]
    with np.load(run / "test_scores.npz") as scores:
        for model in ("current", "vat"):
            assert scores[f"logits_{model}"].shape == (n,)
    for model in ("current", "vat"):
        counts = metrics[model]["counts"]
        assert counts["tp"] + counts["fn"] == metrics["test_counts"]["n_real"]
        above = metrics[model]["tpr90"]["n_bogus_above"]
        fpr = metrics[model]["fpr_at_tpr90"]["value"]
        assert above == round(fpr * metrics["test_counts"]["n_bogus"])
        assert metrics["calibration"][model]["temperature"] > 0
    # The smoke data are simulated: notebook 03 trained the clean-label oracle, 04 scored it.
    assert metrics["oracle"]["fpr_at_tpr90"]["value"] >= 0
    assert (
        metrics["oracle"]["counts"]["tp"] + metrics["oracle"]["counts"]["fn"]
        == (metrics["test_counts"]["n_real"])
    )


# ------------------------------------------------------------------ 03 VAT training (issue 4)
def test_03_vat_training_outputs(smoke_run):
    import pandas as pd

    run = _check(smoke_run, "03")
    plan = smoke_run[0]
    for name in ("03_training_curves", "03_vat_sweep"):
        assert (plan.figures_dir / f"{name}.png").exists(), name
    summary = _json(run / "models" / "training_summary.json")
    split = pd.read_csv(run / "models" / "validation_split.csv")
    assert len(split) == summary["n_val"] > 0 and split["id"].is_unique
    assert sorted(split["detector_id"].unique()) == summary["validation_detectors"]
    chosen = summary["sweep"]["chosen"]
    assert chosen in [{"eps": r["eps"], "alpha": r["alpha"]} for r in summary["sweep"]["table"]]
    vat = summary["models"]["vat"]
    assert vat["train_config"]["eps"] == chosen["eps"] and vat["train_config"]["alpha"] > 0
    assert summary["models"]["current"]["train_config"]["alpha"] == 0
    # The oracle: the Current model's configuration on the true labels (simulated data).
    oracle = summary["models"]["oracle"]
    assert oracle["train_config"] == summary["models"]["current"]["train_config"]
    assert (run / "models" / "oracle" / "config.json").exists()
    for name in ("current", "vat"):
        history = pd.read_csv(run / "training" / name / "history.csv")
        assert len(history) == summary["models"][name]["epochs_run"]
        assert 0.5 < summary["models"][name]["val_auc"] <= 1.0


# ------------------------------------------------------------ 07 the label-noise study (issue 13)
def test_07_label_noise_study(smoke_run):
    from rbcore.study import ROWS, SEED_ROWS
    from rbcore.study.report import ABLATION_KEYS, SWEEP_KEYS

    run = _check(smoke_run, "07")
    study = _json(run / "noise_study.json")
    assert set(study["ablation"]) == set(ROWS)
    for row, entry in study["ablation"].items():
        assert set(ABLATION_KEYS) <= set(entry), row
        for key in ("auc", "fpr_at_tpr90"):
            lo, hi = entry[key]["ci95"]
            assert lo <= entry[key]["value"] <= hi, (row, key)
        seeds = entry["fpr_at_tpr90_seeds"]
        assert seeds["values"][0] == entry["fpr_at_tpr90"]["value"]
        assert len(seeds["values"]) == (len(study["seeds"]) if row in SEED_ROWS else 1), row
        assert seeds["min"] <= seeds["mean"] <= seeds["max"]
        assert 0 < entry["n_labeled"] <= entry["n_train"]
    ab = study["ablation"]
    assert ab["current"]["n_labeled"] == ab["oracle"]["n_labeled"] == ab["vat_only"]["n_labeled"]
    assert ab["drop_flagged"]["n_train"] == ab["two_stage"]["n_labeled"]  # same flags
    assert all(ab[r]["eps"] is not None for r in ("vat_only", "two_stage", "cleanlab_vat"))
    assert study["sweep"] and [p["noise_multiplier"] for p in study["sweep"]] == sorted(
        p["noise_multiplier"] for p in study["sweep"]
    )
    for point in study["sweep"]:
        assert set(SWEEP_KEYS) <= set(point)
        for model in ("current", "two_stage", "oracle"):
            assert 0 <= point[model] <= 1
    # Survey v2: x0 leaves the matching's residual noise; more neighbours, more wrong labels.
    first, last = study["sweep"][0], study["sweep"][-1]
    assert first["noise_rate_real"] <= last["noise_rate_real"]
    for p in study["sweep"]:
        if p["noise_rate_real"] == p["noise_rate_bogus"] == 0:  # no wrong label: one model
            assert p["oracle"] == p["current"] and p["mislabel_recall"] is None
    assert {c["a"] + "/" + c["b"] for c in study["comparisons"]} >= {"current/two_stage"}
    for name in ("07_noise_sweep", "07_ablation", "07_decomposition", "07_memorization"):
        assert (smoke_run[0].figures_dir / f"{name}.png").exists(), name
    # Issue 22: the decomposition, its steps and the memorization curves (schema checked by
    # read_study's validation; here what the smoke run must have filled in).
    from rbcore.profiles import settings
    from rbcore.study.decomp_run import STEPS

    dec, notes = study["decomposition"], study["decomposition_notes"]
    smoke_rows = settings("smoke", "study")["decomp_rows"]
    assert set(dec) | set(notes["waiting"]) == set(smoke_rows), (set(dec), notes["waiting"])
    assert set(dec) >= set(smoke_rows) - {"talk_current"}  # `each` may wait on its test set
    for row, e in dec.items():
        assert 0 <= e["fpr_at_tpr90"]["value"] <= 1 and 0 <= e["pauc"]["value"] <= 1, row
        assert e["fpr_at_tpr90_seeds"]["values"][0] == e["fpr_at_tpr90"]["value"], row
        assert e["seconds"] > 0 and 0 < e["n_labeled"] <= e["n_train"], row
        assert [p["epoch"] for p in study["memorization"][row]] == [1], row
    assert (
        dec["complex_removed"]["n_train"]
        == dec["complex_all"]["n_train"] - notes["n_flagged_train"]
    )
    assert dec["complex_oracle"]["n_labeled"] == dec["complex_all"]["n_labeled"]
    if "complex_unlabeled_vat" in dec:  # the flagged samples unlabeled: as many labels as removed
        assert dec["complex_unlabeled_vat"]["n_labeled"] == dec["complex_removed"]["n_labeled"]
        assert dec["complex_unlabeled_vat"]["n_train"] == dec["complex_all"]["n_train"]
    expected = [(a, b) for a, b, _ in STEPS if a in dec and b in dec]
    assert [(s["from"], s["to"]) for s in study["steps"]] == expected and expected
    assert notes["test_counts"]["n_real"] == settings("smoke", "study")["decomp_test_real"]
    aa = study["aa_check"]
    assert aa["passes"] is False and len(aa["seeds"]) == 4  # the A/A must not pass
