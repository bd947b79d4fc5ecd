"""Tests of the command-line scorer `python -m rbcore score`."""

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
