"""Tests of rbcore.evaluation.readme: the README results block generated from metrics.json."""

import numpy as np
import pytest

from rbcore import evaluation as ev
from rbcore.evaluation import readme as report

README = """# rbcore

Intro text.

## Results

<!-- results:start -->
placeholder to be replaced
<!-- results:end -->

## After
Kept as it is.
"""


def _write_metrics(path):
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(50, int), np.zeros(3000, int)]
    base = np.r_[rng.normal(3, 1.5, 50), rng.normal(-4, 1.5, 3000)]
    doc = {
        "current": ev.metrics_table(labels, base, n_boot=50),
        "vat": ev.metrics_table(labels, base * 1.5, n_boot=50),
        "test_counts": {"n_real": 50, "n_bogus": 3000},
        "profile": "default",
        "n_boot": 50,
    }
    return ev.write_metrics(path, doc), doc


def test_update_readme_writes_generated_table(tmp_path):
    mpath, doc = _write_metrics(tmp_path / "metrics.json")
    readme = tmp_path / "README.md"
    readme.write_text(README)
    report.main(["--metrics", str(mpath), "--readme", str(readme)])
    text = readme.read_text()
    assert "placeholder" not in text
    assert text.startswith("# rbcore\n\nIntro text.") and text.endswith(
        "## After\nKept as it is.\n"
    )
    block = text.split("<!-- results:start -->")[1].split("<!-- results:end -->")[0]
    rows = [line for line in block.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| Current model |") and rows[2].startswith("| VAT |")
    # Every number in the table comes from metrics.json.
    assert report._fmt(doc["vat"]["auc"]["value"]) in rows[2]
    assert report._fmt(doc["current"]["accuracy"]["ci95"][0]) in rows[1]
    assert "3,000 bogus" in block and "python -m rbcore.evaluation.readme" in block
    assert f"{doc['current']['tpr90']['n_bogus_above']} bogus for Current model" in block
    # Idempotent: running again leaves the file unchanged.
    report.update_readme(readme, mpath)
    assert readme.read_text() == text


def test_fmt_small_values_scientific():
    assert report._fmt(0.00065) == "6.50e-04"
    assert report._fmt(0.9995) == "0.9995"
    assert report._fmt(0.0) == "0.0000"


@pytest.mark.parametrize(
    "content",
    [
        "# no markers\n",
        "<!-- results:end -->\n<!-- results:start -->\n",
        "<!-- results:start -->\n<!-- results:start -->\n<!-- results:end -->\n",
    ],
)
def test_bad_markers_raise_and_leave_file(tmp_path, content):
    mpath, _ = _write_metrics(tmp_path / "metrics.json")
    readme = tmp_path / "README.md"
    readme.write_text(content)
    with pytest.raises(ValueError, match="marker"):
        report.update_readme(readme, mpath)
    assert readme.read_text() == content


def test_missing_files_raise(tmp_path):
    readme = tmp_path / "README.md"
    with pytest.raises(FileNotFoundError, match="README"):
        report.update_readme(readme, tmp_path / "metrics.json")
    readme.write_text(README)
    with pytest.raises(FileNotFoundError, match="metrics"):
        report.update_readme(readme, tmp_path / "metrics.json")
    assert readme.read_text() == README


def test_oracle_row_appears_when_trained_and_is_validated(tmp_path):
    mpath, doc = _write_metrics(tmp_path / "metrics.json")
    assert "Oracle" not in report.results_markdown(doc, metrics_path="m", command="c")
    labels = np.r_[np.ones(50, int), np.zeros(3000, int)]
    doc["oracle"] = ev.metrics_table(
        labels, np.r_[np.full(50, 5.0), np.full(3000, -5.0)], n_boot=20
    )
    rows = [
        line
        for line in report.results_markdown(doc, metrics_path="m", command="c").splitlines()
        if line.startswith("| ")
    ]
    assert rows[3].startswith("| Oracle (true labels) |")
    doc["oracle"] = {"auc": 1.0}  # malformed: refused like the talk's rows
    with pytest.raises(ValueError, match="oracle"):
        ev.write_metrics(tmp_path / "bad.json", doc)


def test_evaluated_models_include_the_oracle_only_when_trained(tmp_path):
    assert ev.evaluated_models(tmp_path) == ["current", "vat"]
    (tmp_path / "oracle").mkdir()
    (tmp_path / "oracle" / "config.json").write_text("{}")
    assert ev.evaluated_models(tmp_path) == ["current", "vat", "oracle"]


def _model(auc, rec, k, n, thr):
    return {"auc_vs_drb": auc, "auc_ci": [auc - 0.05, auc + 0.05], "spearman": 0.4,
            "asteroid_recall": rec, "registration_threshold": thr,
            "n_asteroids": n, "n_asteroids_registered": k}  # fmt: skip


def test_real_alert_block_from_the_held_out_report(tmp_path):
    from rbcore.files import write_json_atomic

    doc = {
        "models": {"current": _model(0.672, 0.597, 37, 62, 0.8),
                   "ztf_vada": _model(0.668, 0.694, 43, 62, 0.875)},
        "rb_reference": _model(0.884, 0.984, 61, 62, 0.5),
        "split": {"by": "objectId", "n_eval": 407, "n_adapt": 343, "n_eval_objects": 380},
    }  # fmt: skip
    path = write_json_atomic(tmp_path / "real_alerts.json", doc)
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- real-alerts:start -->\nPLACEHOLDER\n<!-- real-alerts:end -->\nb\n")
    text = report.update_readme_real_alerts(readme, path)
    assert "PLACEHOLDER" not in text and text.endswith("b\n")
    assert (
        "| Current (Tomo-e survey) | 0.672 [0.622, 0.722] | 0.400 | 0.597 (37/62) | 0.8 |" in text
    )
    assert "(VADA) | 0.668" in text and "`rb` (reference) | 0.884" in text
    assert "407 held-out ZTF alerts (380 objects)" in text
    write_json_atomic(path, {"current": {"auc_vs_drb": 0.7}})  # the old schema: no held-out
    with pytest.raises(ValueError, match="real_alerts.json: no held-out comparison"):
        report.update_readme_real_alerts(readme, path)


def test_command_line_rewrites_every_block_given(monkeypatch, capsys):
    calls = []
    for name in ("update_readme", "update_readme_study", "update_readme_week",
                 "update_readme_real_alerts"):  # fmt: skip
        monkeypatch.setattr(report, name, lambda r, p, name=name: calls.append((name, p)))
    report.main(["--study", "s.json", "--week", "w.json", "--readme", "R.md"])
    assert calls == [("update_readme_study", "s.json"), ("update_readme_week", "w.json")]
    calls.clear()
    report.main(["--metrics", "m.json", "--real-alerts", "a.json", "--readme", "R.md"])
    assert calls == [("update_readme", "m.json"), ("update_readme_real_alerts", "a.json")]
    calls.clear()
    report.main(["--readme", "R.md"])  # no block named: the results block, default metrics
    assert calls == [("update_readme", "build/default/run/metrics.json")]
    assert "updated the results section of R.md" in capsys.readouterr().out
