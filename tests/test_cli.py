"""Tests of the command-line scorer `python -m rbcore score`."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flax import nnx

from rbcore.checkpoint import save_model
from rbcore.cli import main
from rbcore.datasets import write_fits_triplets
from rbcore.model import RBCNN
from rbcore.preprocess import normalize

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "model"
    model = RBCNN(rngs=nnx.Rngs(0))
    save_model(path, model)
    model.eval()
    return path, model


@pytest.fixture()
def images():
    x = np.random.default_rng(1).normal(size=(37, 29, 29, 3)).astype(np.float32)
    x[3, 4:6, 4:6, 0] = np.nan  # a masked reference patch
    return x


def run(ckpt_path, inp, out, *extra):
    return main(["score", "--checkpoint", str(ckpt_path), "--input", str(inp), "--output",
                 str(out), "--batch-size", "16", "--no-progress", *extra])  # fmt: skip


def test_npy_with_params_gives_ids_and_model_scores(tmp_path, ckpt, images):
    path, model = ckpt
    np.save(tmp_path / "images7.npy", images)
    pd.DataFrame({"id": np.arange(100, 137), "detector_id": 7}).to_csv(tmp_path / "params7.csv")
    assert run(path, tmp_path / "images7.npy", tmp_path / "s.csv") == 0
    out = pd.read_csv(tmp_path / "s.csv")
    assert list(out.columns) == ["row", "id", "detector_id", "logit", "score"]
    assert out["id"].tolist() == list(range(100, 137))
    np.testing.assert_allclose(out["logit"], np.asarray(model(normalize(images))), atol=1e-4)
    np.testing.assert_allclose(out["score"], 1 / (1 + np.exp(-out["logit"])), rtol=1e-6)


def test_fits_input(tmp_path, ckpt, images):
    path, model = ckpt
    write_fits_triplets(tmp_path / "t.fits", images, pd.DataFrame({"candidate_id": np.arange(37)}))
    assert run(path, tmp_path / "t.fits", tmp_path / "s.csv") == 0
    out = pd.read_csv(tmp_path / "s.csv")
    assert out["candidate_id"].tolist() == list(range(37))
    np.testing.assert_allclose(out["logit"], np.asarray(model(normalize(images))), atol=1e-4)


def _bad_inputs(tmp_path, images):
    np.save(tmp_path / "wrong_shape.npy", images[:, :28])
    write_fits_triplets(tmp_path / "full.fits", images)
    from astropy.io import fits

    with fits.open(tmp_path / "full.fits") as h:
        fits.HDUList([h[0], h["REF"], h["NEW"]]).writeto(tmp_path / "no_sub.fits")
    (tmp_path / "garbage.npy").write_bytes(b"not an array at all")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "garbage.fits").write_bytes(b"SIMPLE = nonsense" * 10)
    inf = images.copy()
    inf[5, 0, 0, 1] = np.inf
    np.save(tmp_path / "inf.npy", inf)
    big = images.astype(np.float64)
    big[9, 1, 1, 2] = -1e300  # finite, but not a float32
    np.save(tmp_path / "big.npy", big)
    return {
        "big.npy": "triplet 9: pixel value -1e+300 is beyond float32's range",
        "wrong_shape.npy": "(N, 29, 29, 3)",
        "no_sub.fits": "SUB",
        "garbage.npy": "not a readable",
        "empty.npy": "empty.npy: empty file (0 bytes)",
        "garbage.fits": "garbage.fits",
        "inf.npy": "triplet 5",
        "missing.npy": "does not exist",
    }


def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, ckpt, images, capsys):
    path, _ = ckpt
    for name, expected in _bad_inputs(tmp_path, images).items():
        out = tmp_path / f"{name}.csv"
        assert run(path, tmp_path / name, out) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith("rbcore score: error:") and expected in err, (name, err)
        assert len(err.splitlines()) == 1, err
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp left


def test_missing_checkpoint_exits_2(tmp_path, images, capsys):
    np.save(tmp_path / "x.npy", images)
    assert run(tmp_path / "nowhere", tmp_path / "x.npy", tmp_path / "s.csv") == 2
    assert "checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_module_entry_point(tmp_path, ckpt, images):
    np.save(tmp_path / "x.npy", images[:5])
    ok = subprocess.run([sys.executable, "-m", "rbcore", "score", "--checkpoint", str(ckpt[0]),
                         "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "s.csv")],
                        cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert len(pd.read_csv(tmp_path / "s.csv")) == 5
    bad = subprocess.run([sys.executable, "-m", "rbcore", "score", "--checkpoint", str(ckpt[0]),
                          "--input", str(tmp_path / "nope.npy"), "--output", str(tmp_path / "t.csv")],
                         cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_output_that_is_an_input_or_a_folder_is_refused_before_work(tmp_path, ckpt, images, capsys):
    path, _ = ckpt
    np.save(tmp_path / "images7.npy", images)
    pd.DataFrame({"id": np.arange(37)}).to_csv(tmp_path / "params7.csv", index=False)
    pd.DataFrame({"candidate_id": np.arange(37)}).to_csv(tmp_path / "ids.csv", index=False)
    os.link(tmp_path / "images7.npy", tmp_path / "hardlink.csv")
    (tmp_path / "folder.csv").mkdir()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    ckpt_before = (path / "config.json").read_bytes()
    cases = [
        (tmp_path / "images7.npy", [], "would replace the input"),
        (tmp_path / "params7.csv", [], "would replace the input"),  # replaced before
        (tmp_path / "ids.csv", ["--params", str(tmp_path / "ids.csv")], "would replace"),
        (tmp_path / "hardlink.csv", [], "would replace the input"),
        (path / "config.json", [], "would replace the input"),
        (tmp_path / "folder.csv", [], "is a directory"),
    ]
    for out, extra, expected in cases:
        assert run(path, tmp_path / "images7.npy", out, *extra) == 2, out
        err = capsys.readouterr().err
        assert expected in err and str(out) in err, err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert (path / "config.json").read_bytes() == ckpt_before


def test_output_permissions_follow_the_umask(tmp_path, ckpt, images):
    np.save(tmp_path / "x.npy", images)
    old = os.umask(0o022)
    try:
        assert run(ckpt[0], tmp_path / "x.npy", tmp_path / "s.csv") == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "s.csv").stat().st_mode) == 0o644  # was 0600


def test_a_kill_during_the_final_write_leaves_no_temp_after_the_next_run(tmp_path, ckpt, images):
    np.save(tmp_path / "x.npy", images)
    code = (
        "import os, signal, sys, pandas as pd, rbcore.cli\n"
        "pd.DataFrame.to_csv = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        "rbcore.cli.main(sys.argv[1:])\n"
    )
    args = ["score", "--checkpoint", str(ckpt[0]), "--input", str(tmp_path / "x.npy"),
            "--output", str(tmp_path / "s.csv"), "--no-progress"]  # fmt: skip
    killed = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True)
    assert killed.returncode == -9
    assert [p.name for p in tmp_path.glob(".s.csv.*.tmp")]  # the killed run's temporary file
    assert main(args) == 0
    assert not list(tmp_path.glob(".s.csv.*.tmp")) and len(pd.read_csv(tmp_path / "s.csv")) == 37


def test_id_tables_need_an_id_column_and_unique_ids(tmp_path, ckpt, images, capsys):
    path, _ = ckpt
    np.save(tmp_path / "images3.npy", images)
    cases = {
        "no_id.csv": (pd.DataFrame({"objid": np.arange(37)}), "no id column; expected one of"),
        "dup.csv": (pd.DataFrame({"candid": [5] + list(range(36))}), "appears on rows [0, 6]"),
    }
    for name, (table, expected) in cases.items():
        table.to_csv(tmp_path / name, index=False)
        assert run(path, tmp_path / "images3.npy", tmp_path / "s.csv", "--params",
                   str(tmp_path / name)) == 2  # fmt: skip
        err = capsys.readouterr().err
        assert err.startswith(f"rbcore score: error: {tmp_path / name}") and expected in err, err
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "ragged.csv").write_text("id\n1\n2,3\n")
    for name, expected in (("empty.csv", "empty file"), ("ragged.csv", "not a readable CSV")):
        assert run(path, tmp_path / "images3.npy", tmp_path / "s.csv", "--params",
                   str(tmp_path / name)) == 2  # fmt: skip
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
    # beside the input, a table without ids is reported and not used
    pd.DataFrame({"ID": np.arange(37)}).to_csv(tmp_path / "params3.csv", index=False)
    assert run(path, tmp_path / "images3.npy", tmp_path / "s.csv") == 0
    assert "params3.csv: no id column" in capsys.readouterr().err
    assert "ID" not in pd.read_csv(tmp_path / "s.csv").columns
    assert not (tmp_path / "s.csv.tmp").exists()


def test_upper_case_npy_finds_its_params_and_huge_batch_size(tmp_path, ckpt, images):
    path, model = ckpt
    np.save(tmp_path / "images0.npy", images)
    (tmp_path / "images0.npy").rename(tmp_path / "images0.NPY")
    pd.DataFrame({"id": np.arange(200, 237)}).to_csv(tmp_path / "params0.csv", index=False)
    assert main(["score", "--checkpoint", str(path), "--input", str(tmp_path / "images0.NPY"),
                 "--output", str(tmp_path / "s.csv"), "--batch-size", str(10**9),
                 "--no-progress"]) == 0  # fmt: skip
    out = pd.read_csv(tmp_path / "s.csv")
    assert out["id"].tolist() == list(range(200, 237))
    np.testing.assert_allclose(out["logit"], np.asarray(model(normalize(images))), atol=1e-4)
