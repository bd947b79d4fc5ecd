"""Issue 25 (reliability, round 3): the notebook runner and notebook 06's inputs.

`--build-dir` naming a file is one clear error; a notebook failing on a bad parameter ends
the runner's output with the rbcore error line, alone (the kernel's own log lines go to a file
beside the executed copy); notebook 06 given an explicit `alerts_path` that is missing or a
folder fails naming it, and no previous run's `real_alerts.json` survives a run.
"""

import json
from pathlib import Path

import pytest

from rbcore import ztf
from rbcore.notebooks import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_build_dir_that_is_a_file_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    argv = ["--profile", "smoke", "--notebooks-dir", str(FIXTURES)]
    assert main([*argv, "--build-dir", str(tmp_path / "afile")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err], err
    assert err.startswith("error:") and f"{tmp_path / 'afile'}" in err and "not a folder" in err
    # the run folder inside the build folder a file: the same
    (tmp_path / "b" / "smoke").mkdir(parents=True)
    (tmp_path / "b" / "smoke" / "run").write_text("")
    assert main([*argv, "--build-dir", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and f"{tmp_path / 'b' / 'smoke' / 'run'}" in err, err


def test_a_bad_notebook_parameter_ends_with_the_rbcore_error_alone(tmp_path, capfd):
    # a copy of the fixture notebook whose last cell asks for an unknown profile
    nb = json.loads((FIXTURES / "00_fixture.ipynb").read_text())
    nb["cells"][-1]["source"] = [
        "from rbcore.profiles import settings\n",
        'settings("huge", "survey")\n',
    ]
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "00_bad.ipynb").write_text(json.dumps(nb))
    status = main(["--profile", "smoke", "--notebooks-dir", str(tmp_path / "nbs"),
                   "--build-dir", str(tmp_path / "b")])  # fmt: skip
    assert status == 1
    out, err = capfd.readouterr()
    lines = [ln for ln in (out + err).splitlines() if ln.strip()]
    assert lines[-1].startswith("error: 00_bad.ipynb failed in cell"), lines
    assert "ValueError: unknown profile 'huge'" in lines[-1], lines
    assert not [ln for ln in lines if "IPKernelApp" in ln], lines  # the kernel's log: a file
    assert (tmp_path / "b" / "smoke" / "00_bad.kernel.log").exists()


def test_06_explicit_alerts_path_missing_or_a_folder_is_an_error(tmp_path):
    results = tmp_path / "real_alerts.json"
    for given in (tmp_path / "missing.npz", tmp_path):
        results.write_text("{}")  # a previous run's results
        with pytest.raises(FileNotFoundError, match=str(given)):
            ztf.prepare_alerts_run(str(given), results)
        assert not results.exists()  # nothing stale survives


def test_06_results_of_a_previous_run_are_removed_when_there_is_nothing_to_score(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(ztf.alerts, "DEFAULT_ALERTS", tmp_path / "no_shared_data")
    results = tmp_path / "real_alerts.json"
    results.write_text("{}")
    path, have = ztf.prepare_alerts_run("", results)
    assert not have and path == tmp_path / "no_shared_data" / ztf.DEFAULT_ALERTS_FILE
    assert not results.exists()
