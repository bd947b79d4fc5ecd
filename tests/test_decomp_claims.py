"""The decomposition's verdicts (issue 22): the claims table, the largest gain, the README block."""

import json

import pytest

from rbcore.evaluation.readme import DECOMP_END, DECOMP_START, update_readme_decomposition
from rbcore.study.decomp_report import TALK_FPR, claims_markdown, step_verdict


def _row(fpr, lo, hi):
    return {"auc": {"value": 0.99, "ci95": [0.98, 1.0]},
            "fpr_at_tpr90": {"value": fpr, "ci95": [lo, hi]},
            "fpr_at_tpr90_seeds": {"values": [fpr], "mean": fpr, "min": fpr, "max": fpr},
            "pauc": {"value": 0.5, "ci95": [0.4, 0.6]}, "n_labeled": 100, "seconds": 1.0}  # fmt: skip


def _step(a, b, ratio, ci, det, what=""):
    passes = None if ci is None else bool(ci[0] > 1 or ci[1] < 1)
    return {"from": a, "to": b, "what": what, "ratio": ratio, "ratio_ci": ci,
            "detectable_ratio": det, "passes": passes}  # fmt: skip


def _study(steps):
    rows = {"talk_current": _row(0.008, 0.005, 0.012), "simple_all": _row(0.01, 0.007, 0.02),
            "complex_all": _row(0.01, 0.007, 0.02), "complex_removed": _row(0.01, 0.007, 0.02),
            "complex_unlabeled_vat": _row(0.003, 0.002, 0.004)}  # fmt: skip
    return {"decomposition": rows, "steps": steps, "memorization": {r: [] for r in rows},
            "aa_check": {"row": "simple_all", **_step("simple_all", "simple_all", 1.1,
                                                      [0.8, 1.5], 1.6)}}  # fmt: skip


def test_step_verdict_reads_gain_loss_and_power():
    assert step_verdict(_step("a", "b", 3.0, [2.0, 4.5], 1.5)).startswith(
        "fewer false positives: x3"
    )
    assert step_verdict(_step("a", "b", 0.5, [0.3, 0.8], 1.5)).startswith(
        "more false positives: x2"
    )
    v = step_verdict(_step("a", "b", 1.2, [0.7, 2.0], 2.5))
    assert v.startswith("no difference shown") and "x2.5 (power 0.8)" in v
    assert "no claim" in step_verdict(_step("a", "b", 1.2, None, None))


def test_claims_name_the_largest_passing_step_of_the_method():
    steps = [
        _step("talk_current", "simple_all", 0.8, [0.5, 1.3], 2.0, "each -> all"),
        _step("complex_all", "complex_removed", 1.5, [1.1, 2.0], 1.4, "all -> removed"),
        _step("complex_removed", "complex_unlabeled_vat", 3.3, [2.0, 5.0], 1.6, "removed -> VAT"),
        _step("talk_current", "complex_unlabeled_vat", 9.0, [5.0, 16.0], 2.0, "whole"),
    ]  # fmt: skip
    text = claims_markdown(_study(steps))
    assert "most of the gain: removed -> VAT" in text
    assert "not run at these sizes) | `talk_current` → `simple_all`" not in text
    assert "`simple_all` → `complex_all`" in text.split("not run at these sizes)")[1]
    assert "does not pass, as it must" in text  # the A/A check
    # talk_current's interval [0.005, 0.012] holds the talk's 0.00916; the VAT row's does not.
    assert "the talk's Current model: 9.16e-03, inside" in text
    assert f"the talk's VAT model: {TALK_FPR['vat']:.2e}, outside" in text


def test_claims_without_a_passing_step_say_what_the_design_rules_out():
    steps = [_step("complex_all", "complex_removed", 1.2, [0.7, 2.0], 2.5),
             _step("complex_removed", "complex_unlabeled_vat", 0.9, [0.5, 1.6], 3.5)]  # fmt: skip
    text = claims_markdown(_study(steps))
    assert (
        "No step of the method passes the claims test; the design rules out effects larger than x2.5 to x3.5"
        in text
    )


def test_claims_without_seed_variance_make_no_claim():
    text = claims_markdown(_study([_step("complex_all", "complex_removed", 1.2, None, None)]))
    assert "No step of the method passes the claims test; no step has a seed variance." in text
    assert "no seed variance, no claim" in text


def test_readme_decomposition_block(tmp_path):
    doc = _study([_step("complex_all", "complex_removed", 1.2, [0.7, 2.0], 2.5)])
    doc.update(command="python benchmarks/decomposition.py --budget-h 1", seconds=3600.0,
               settings={"decomp_complex": {"epochs": 4}},
               sizing={"machine": {"cpu_count": 2, "platform": "Linux"}, "budget_h": 1.0,
                       "estimate_s": {"total": 3000.0}, "n_samples": 5000, "n_max": 70000,
                       "epochs_max": {"simple": 6}})  # fmt: skip
    path = tmp_path / "decomposition.json"
    path.write_text(json.dumps(doc))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{DECOMP_START}\nold\n{DECOMP_END}\nkept\n")
    text = update_readme_decomposition(readme, path)
    assert "old" not in text and text.endswith("kept\n")
    assert "training size 5,000 of 70,000" in text and "1.00 h" in text
    assert f"Generated from `{path}`" in text
    del doc["steps"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="'steps' must be a list"):
        update_readme_decomposition(readme, path)
