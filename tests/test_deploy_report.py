"""Tests of rbcore.deploy.report on a hand-made candidate database with known counts, on SQLite
and on PostgreSQL (the `make_db` fixture of conftest.py)."""

import numpy as np
import pandas as pd
import pytest

from rbcore.deploy import HIST_EDGES, DeployConfig
from rbcore.deploy import report as rep
from rbcore.deploy.db import CANDIDATE_COLUMNS

NB = len(HIST_EDGES) - 1
CFG = DeployConfig(n_nights=2, candidates_per_night=111, threshold=0.8)


def _summary(rows):
    cols = ["category", "is_real_true", "pass_current", "pass_vat", "n", "weight"]
    return pd.DataFrame(rows, columns=cols)


def _candidates(night, rows):
    """rows: (score_current, score_vat, category, weight)."""
    out = pd.DataFrame({c: [0.0] * len(rows) for c in CANDIDATE_COLUMNS})
    out["candidate_id"] = night * 10**9 + np.arange(len(rows))
    out["night"], out["chunk"], out["model_version"] = night, 0, "v"
    out["score_current"] = [r[0] for r in rows]
    out["score_vat"] = [r[1] for r in rows]
    out["category"] = [r[2] for r in rows]
    out["weight"] = [r[3] for r in rows]
    return out


def _hist(logits, weights):
    b = np.searchsorted(HIST_EDGES[1:-1], logits, side="right")
    return (np.bincount(b, minlength=NB).astype(float), np.bincount(b, weights, minlength=NB))


@pytest.fixture()
def db(make_db):
    db = make_db()
    db.check_fingerprint(CFG.fingerprint())
    summary = _summary([
        ("noise", 0, 0, 0, 100, 100.0),
        ("noise", 0, 1, 1, 5, 5.0),
        ("mask_ref", 0, 1, 0, 3, 3.0),
        ("sn_host", 1, 1, 1, 3, 0.3),
        ("sn_hostless", 1, 0, 0, 1, 0.1),
        ("variable_star", 1, 1, 1, 2, 0.2),
    ])  # fmt: skip
    cands = _candidates(0, [(0.9, 0.95, "noise", 1.0), (0.85, 0.5, "mask_ref", 1.0),
                            (0.99, 0.99, "sn_host", 0.1), (0.9, 0.9, "variable_star", 0.1)])  # fmt: skip
    hists = {
        ("vat", "bogus"): _hist(np.array([-1.0, 1.0, 3.0]), np.array([10.0, 4.0, 2.0])),
        ("vat", "transient"): _hist(np.array([0.5, 3.5]), np.array([0.1, 0.3])),
        ("current", "bogus"): _hist(np.array([0.0]), np.array([1.0])),
    }
    db.write_chunk(night=0, chunk=0, candidates=cands, summary=summary, hists=hists,
                   cutouts=cands.iloc[:0])  # fmt: skip
    db.commit_night(0, seconds=1.0, committed_at="t")
    # night 1 is written but not committed: every report must ignore it
    db.write_chunk(night=1, chunk=0, candidates=_candidates(1, [(0.9, 0.9, "noise", 1.0)]),
                   summary=summary, hists=hists, cutouts=cands.iloc[:0])  # fmt: skip
    return db


def test_confusion_counts_raw_and_effective(db):
    cm = rep.confusion_counts(db, "vat")
    np.testing.assert_array_equal(cm["raw"], [[103, 7], [1, 3]])
    np.testing.assert_allclose(cm["effective"], [[103.0, 5.2], [0.1, 0.3]])
    np.testing.assert_array_equal(rep.confusion_counts(db, "current")["raw"], [[100, 10], [1, 3]])
    with pytest.raises(ValueError, match="model"):
        rep.confusion_counts(db, "other")


def test_fp_by_category_uses_the_talk_labels(db):
    t = rep.fp_by_category(db, "current")
    assert list(t.index) == list(rep.TALK_FP_TABLE)
    assert t.loc["Low S/N", "n_raw"] == 5 and t.loc["Mask in ref", "n_raw"] == 3
    assert t.loc["Real?", "n_effective"] == pytest.approx(0.2)  # the variable stars
    assert t["share"].sum() == pytest.approx(1.0)
    assert t.loc["Real?", "talk_n"] == 106


def test_registered_per_night_and_purity(db):
    per = rep.registered_per_night(db, CFG)
    assert per["night"].unique().tolist() == [0]
    cur = per[per.model == "current"].iloc[0]
    assert cur["n_raw"] == 4 and cur["n_effective"] == pytest.approx(2.2)
    assert cur["transients"] == pytest.approx(0.1) and cur["variables"] == pytest.approx(0.1)
    assert cur["n_talk_volume"] == pytest.approx(2.2 * CFG.volume_scale)
    vat = per[per.model == "vat"].iloc[0]
    assert vat["n_raw"] == 3
    pur = rep.registration_purity(per)
    assert pur.loc["vat", "one_in_transient"] == pytest.approx(1.2 / 0.1)
    assert pur.loc["current", "talk_one_in_transient"] == pytest.approx(8738)
    high = rep.registered_per_night(db, CFG, threshold=0.95)
    assert high[high.model == "vat"]["n_raw"].item() == 2
    with pytest.raises(ValueError, match="registration threshold"):
        rep.registered_per_night(db, CFG, threshold=0.5)


def test_budget_curve_and_threshold(db):
    curves = rep.budget_curves(db, CFG)
    c = curves["vat"]
    # at logit 2: the bogus at 3.0 (w 2) and the transient at 3.5 (w 0.3) pass, one night
    row = c[c.logit_threshold == 2.0].iloc[0]
    assert row["registered_per_night"] == pytest.approx(2.3 * CFG.volume_scale)
    assert row["completeness"] == pytest.approx(0.3 / 0.4)
    pick = rep.budget_threshold(c, budget=2.5 * CFG.volume_scale)
    assert 1.0 < pick["logit_threshold"] <= 1.0 + 1 / 16  # the first edge above the bogus at 1
    assert pick["completeness"] == pytest.approx(0.75)
    assert np.isnan(rep.budget_threshold(c, budget=-1)["threshold"])


def test_week_summary_per_model_taxonomy_and_the_talk(db):
    s = rep.week_summary(db, CFG, budget=150.0)
    for m in ("current", "vat"):
        tax = s["models"][m]["fp_taxonomy"]
        assert list(tax) == list(rep.TALK_FP_TABLE)
        assert sum(v["share"] for v in tax.values()) == pytest.approx(1.0)
        assert s["models"][m]["registered_per_night"] == pytest.approx(
            s["models"][m]["registered_per_night_talk_volume"]
        )
    assert s["models"]["current"]["fp_taxonomy"]["Low S/N"]["n_raw"] == 5
    assert s["talk"]["confusion_vat"] == [[57_386_470, 36_337], [1, 29]]
    t = rep.talk_comparison(s)
    assert t.loc["registered per night, vat", "talk"] == 150
    assert t.loc["VAT TP at 0.8 (talk's volume)", "talk"] == 29
    scale = 57_422_837 / s["n_candidates_effective"]
    assert t.loc["VAT FP at 0.8 (talk's volume)", "simulated"] == pytest.approx(5.2 * scale)


def test_week_block_in_the_readme_comes_from_the_summary(db, tmp_path):
    from rbcore.evaluation.readme import update_readme_week
    from rbcore.files import write_json_atomic

    s = rep.week_summary(db, CFG, budget=150.0)
    s["config"] = {"boost": 300.0}
    path = write_json_atomic(tmp_path / "deployment_summary.json", s)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- week:start -->\nPLACEHOLDER\n<!-- week:end -->\nkept\n")
    text = update_readme_week(readme, path)
    assert "PLACEHOLDER" not in text and text.endswith("kept\n")
    reg = s["models"]["vat"]["registered_per_night"]
    assert f"| {s['models']['current']['registered_per_night']:,.0f} | {reg:,.0f} |" in text
    assert "6,000 → 150" in text and "| TP |" in text and "| 29 |" in text
    for label in rep.TALK_FP_TABLE:
        assert f"| {label} |" in text
    del s["models"]
    write_json_atomic(path, s)
    with pytest.raises(ValueError, match="deployment_summary.json: missing key"):
        update_readme_week(readme, path)
