"""Issue 25 (reliability, round 3): checkpoints and the `score` command.

No silent wrong output (all-NaN weights, a future format version, a ZTF model on Tomo-e
cutouts), one line instead of a traceback (a config or weights file that is a folder,
unreadable, not UTF-8 or nested absurdly deep), and Ctrl-C ending `score` with one line,
status 130 and no output file.
"""

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from flax import nnx, serialization

from rbcore.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_model, save_model
from rbcore.cli import main
from rbcore.model import RBCNN

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "model"
    save_model(path, RBCNN(rngs=nnx.Rngs(0)))
    return path


@pytest.fixture()
def ckpt(tmp_path, ckpt_dir):
    """A fresh copy of the checkpoint, free to damage."""
    out = tmp_path / "ck"
    out.mkdir()
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        (out / name).write_bytes((ckpt_dir / name).read_bytes())
    return out


@pytest.fixture()
def npy(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).normal(size=(5, 29, 29, 3)).astype(np.float32))
    return path


def _meta(ckpt):
    return json.loads((ckpt / CONFIG_NAME).read_text())


def _write_meta(ckpt, meta):
    (ckpt / CONFIG_NAME).write_text(json.dumps(meta))


def _score(ckpt, inp, out, capsys):
    status = main(["score", "--checkpoint", str(ckpt), "--input", str(inp), "--output", str(out),
                   "--no-progress"])  # fmt: skip
    return status, capsys.readouterr().err.strip()


def _one_error_line(err, *needles):
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rbcore score: error:"), err
    for n in needles:
        assert n in lines[0], (n, err)


def test_nan_weights_are_refused_naming_the_weights_file(ckpt, npy, tmp_path, capsys):
    stored = serialization.msgpack_restore((ckpt / WEIGHTS_NAME).read_bytes())
    import jax

    nan = jax.tree.map(lambda a: np.full_like(np.asarray(a), np.nan), stored)
    data = serialization.msgpack_serialize(nan)
    (ckpt / WEIGHTS_NAME).write_bytes(data)
    meta = _meta(ckpt)
    meta["weights_sha256"] = hashlib.sha256(data).hexdigest()  # checksum recomputed
    _write_meta(ckpt, meta)
    with pytest.raises(ValueError, match="non-finite"):
        load_model(ckpt)
    status, err = _score(ckpt, npy, tmp_path / "s.csv", capsys)
    assert status == 2
    _one_error_line(err, str(ckpt / WEIGHTS_NAME), "non-finite")
    assert not (tmp_path / "s.csv").exists()


def test_future_format_version_is_refused(ckpt):
    meta = _meta(ckpt)
    meta["format_version"] = 99
    _write_meta(ckpt, meta)
    with pytest.raises(ValueError, match=r"format_version 99.*reads up to 1"):
        load_model(ckpt)


@pytest.mark.parametrize("which", [CONFIG_NAME, WEIGHTS_NAME])
def test_config_or_weights_that_is_a_folder(ckpt, npy, tmp_path, capsys, which):
    (ckpt / which).unlink()
    (ckpt / which).mkdir()
    status, err = _score(ckpt, npy, tmp_path / "s.csv", capsys)
    assert status == 2
    _one_error_line(err, str(ckpt / which), "folder")


@pytest.mark.parametrize("which", [CONFIG_NAME, WEIGHTS_NAME])
def test_unreadable_config_or_weights(ckpt, npy, tmp_path, capsys, monkeypatch, which):
    # the tests may run as root, where chmod 000 does not stop reads: the OS error is raised
    real_open = Path.open

    def deny(self, *a, **k):
        if self == ckpt / which:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *a, **k)

    monkeypatch.setattr(Path, "open", deny)
    status, err = _score(ckpt, npy, tmp_path / "s.csv", capsys)
    assert status == 2
    _one_error_line(err, str(ckpt / which), "Permission denied")


def test_config_nested_absurdly_deep(ckpt, npy, tmp_path, capsys):
    (ckpt / CONFIG_NAME).write_text("[" * 200_000 + "]" * 200_000)
    status, err = _score(ckpt, npy, tmp_path / "s.csv", capsys)
    assert status == 2
    _one_error_line(err, str(ckpt / CONFIG_NAME), "nested")


def test_config_not_utf8_names_the_file(ckpt):
    (ckpt / CONFIG_NAME).write_bytes(b'{"model": "\xff\xfe"}')
    with pytest.raises(ValueError, match=rf"{CONFIG_NAME}.*UTF-8"):
        load_model(ckpt)


def test_ztf_model_on_tomoe_cutouts_says_so(ckpt, npy, tmp_path, capsys):
    meta = _meta(ckpt)
    meta["extra"] = {"survey": "ztf"}
    _write_meta(ckpt, meta)
    status, err = _score(ckpt, npy, tmp_path / "s.csv", capsys)
    assert status == 0
    assert "trained on the 'ztf' survey" in err and "Tomo-e cutouts" in err, err
    # a Tomo-e model on Tomo-e cutouts says nothing of the kind
    status, err = _score(_tomoe(tmp_path), npy, tmp_path / "t.csv", capsys)
    assert status == 0 and "survey" not in err, err


def _tomoe(tmp_path):
    path = tmp_path / "tomoe"
    save_model(path, RBCNN(rngs=nnx.Rngs(1)))
    return path


def test_ctrl_c_during_score_one_line_status_130_no_output(ckpt_dir, tmp_path):
    # a sparse 100,000-triplet .npy (zeros, no disk used): scoring takes far longer than the
    # time to the signal, which is sent once the progress bar (scoring) has started
    n = 100_000
    path = tmp_path / "big.npy"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((0, 29, 29, 3), np.float32))
    header["shape"] = (n, 29, 29, 3)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.truncate(f.tell() + n * 29 * 29 * 3 * 4)
    out = tmp_path / "s.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rbcore", "score", "--checkpoint", str(ckpt_dir), "--input",
         str(path), "--output", str(out), "--batch-size", "64"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
        # A job started in the background of a non-interactive shell inherits SIGINT ignored
        # (POSIX), and Python then installs no KeyboardInterrupt: the child gets the default
        # disposition back, as at a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    seen = ""
    deadline = time.monotonic() + 120
    while "score:" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.read(1)
    assert "score:" in seen, seen
    time.sleep(0.5)  # into the batches
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, (proc.returncode, seen + rest)
    lines = [ln for ln in (seen + rest).replace("\r", "\n").splitlines() if ln.strip()]
    assert lines[-1] == "rbcore score: interrupted; no output written", lines[-3:]
    assert "Traceback" not in rest, rest
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["big.npy"]
