"""Checkpoint round trip, and clear errors for damaged or foreign checkpoints."""

import hashlib
import json

import numpy as np
import pytest

from rbcore.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_model, save_model
from rbcore.model import build_model


@pytest.fixture
def saved(tmp_path):
    model = build_model({"architecture": "RBCNN", "dropout_rate": 0.3}, seed=7)
    model.eval()
    save_model(tmp_path / "ck", model, extra={"epoch": 3, "note": "test"})
    return model, tmp_path / "ck"


def test_round_trip_bit_identical(saved):
    model, path = saved
    x = np.random.default_rng(0).random((16, 29, 29, 3), dtype=np.float32)
    loaded, meta = load_model(path)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(loaded(x)))
    assert meta["model"] == {"architecture": "RBCNN", "dropout_rate": 0.3}
    assert meta["extra"] == {"epoch": 3, "note": "test"}
    assert not list(path.glob("*.tmp"))


def test_different_weights_differ(saved, tmp_path):
    _, path = saved
    other = build_model(seed=8)
    other.eval()
    save_model(tmp_path / "other", other)
    x = np.ones((2, 29, 29, 3), np.float32)
    a, _ = load_model(path)
    b, _ = load_model(tmp_path / "other")
    assert not np.allclose(np.asarray(a(x)), np.asarray(b(x)))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint config"):
        load_model(tmp_path)


def test_damaged_weights(saved):
    _, path = saved
    data = bytearray((path / WEIGHTS_NAME).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / WEIGHTS_NAME).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged"):
        load_model(path)


def test_config_without_checksum_is_refused(saved):
    _, path = saved
    meta = json.loads((path / CONFIG_NAME).read_text())
    meta.pop("weights_sha256")
    (path / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="no weights_sha256"):
        load_model(path)  # even with intact weights: they cannot be checked
    (path / WEIGHTS_NAME).write_bytes((path / WEIGHTS_NAME).read_bytes()[:1000])
    with pytest.raises(ValueError, match="no weights_sha256"):
        load_model(path)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.update(model="RBCNN"), r"field 'model' must be a dict, got str"),
        (lambda m: m.update(model=[1, 2]), r"field 'model' must be a dict, got list"),
        (lambda m: m.update(extra="x"), r"field 'extra' must be a dict"),
        (lambda m: m["model"].update(dropout_rate="high"), r"dropout_rate must be a number"),
        (lambda m: m["model"].update(dropout_rate=1.5), r"dropout_rate must be a number in"),
        (lambda m: m["model"].update(dropout_rate=None), r"dropout_rate must be a number"),
    ],
)
def test_config_fields_of_the_wrong_type(saved, edit, match):
    _, path = saved
    meta = json.loads((path / CONFIG_NAME).read_text())
    edit(meta)
    (path / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=match) as err:
        load_model(path)
    assert str(err.value).startswith(str(path / CONFIG_NAME))


def test_damaged_config(saved):
    _, path = saved
    (path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model(path)


def test_other_architecture(saved):
    _, path = saved
    meta = json.loads((path / CONFIG_NAME).read_text())
    meta["model"]["architecture"] = "ResNet18"
    (path / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown architecture"):
        load_model(path)


def test_weights_of_another_shape(saved, tmp_path):
    _, path = saved
    from flax import serialization

    stored = serialization.msgpack_restore((path / WEIGHTS_NAME).read_bytes())
    stored["dense1"]["kernel"] = np.zeros((1600, 64), np.float32)  # a narrower network
    data = serialization.msgpack_serialize(stored)
    (path / WEIGHTS_NAME).write_bytes(data)
    meta = json.loads((path / CONFIG_NAME).read_text())
    meta["weights_sha256"] = hashlib.sha256(data).hexdigest()  # consistent, but the wrong shape
    (path / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not match"):
        load_model(path)
