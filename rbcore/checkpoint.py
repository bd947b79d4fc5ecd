"""Save and load a model with its config.

A checkpoint is a directory holding `config.json` (the architecture and constructor
arguments, see `rbcore.model.model_config`, plus free-form `extra` metadata such as the
training hyperparameters) and `weights.msgpack` (the model state, Flax msgpack
serialization). Writes go to temporary files renamed into place, so an interrupted save
never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import numpy as np
from flax import nnx, serialization

from rbcore.files import write_bytes_atomic
from rbcore.model import build_model, model_config

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.msgpack"
FORMAT_VERSION = 1


def save_model(
    path_dir, model: nnx.Module, config: dict | None = None, extra: dict | None = None
) -> Path:
    """Save `model` to the directory `path_dir` (created if needed).

    Args:
        path_dir: checkpoint directory.
        model: an `RBCNN` or a `PaperResNet` (the config records which).
        config: the model config; defaults to `model_config(model)`.
        extra: JSON-serializable metadata stored beside it (training config, epoch...).

    Returns:
        The checkpoint directory.
    """
    path = Path(path_dir)
    path.mkdir(parents=True, exist_ok=True)
    # Parameters only: the dropout RNG state is not part of the trained model.
    state = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    weights = serialization.msgpack_serialize(state)
    meta = {
        "format_version": FORMAT_VERSION,
        "model": dict(config or model_config(model)),
        "extra": extra or {},
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    write_bytes_atomic(path / WEIGHTS_NAME, weights)
    write_bytes_atomic(path / CONFIG_NAME, json.dumps(meta, indent=2, sort_keys=True).encode())
    return path


def _read_file(path: Path, what: str) -> bytes:
    """The bytes of a checkpoint file; a folder or an OS error is a ValueError naming it."""
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; expected the checkpoint's {what} file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the checkpoint's {what} ({e.strerror or e})") from e


def read_config(path_dir) -> dict:
    """The stored `{"model": ..., "extra": ...}` metadata of a checkpoint."""
    path = Path(path_dir) / CONFIG_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint config here (expected {CONFIG_NAME})")
    try:
        meta = json.loads(_read_file(path, "config").decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: damaged checkpoint config, not UTF-8 text ({e})") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: damaged checkpoint config, not valid JSON ({e})") from e
    except RecursionError as e:
        raise ValueError(f"{path}: damaged checkpoint config, JSON nested too deeply") from e
    if not isinstance(meta, dict) or "model" not in meta:
        raise ValueError(f"{path}: not an rbcore checkpoint config (no 'model' field)")
    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format_version {version!r} is not one this rbcore reads (it "
            f"reads up to {FORMAT_VERSION}); update rbcore to load it"
        )
    for key, kind in (("model", dict), ("extra", dict), ("weights_sha256", str)):
        if key in meta and not isinstance(meta[key], kind):
            raise ValueError(
                f"{path}: field {key!r} must be a {kind.__name__}, got {type(meta[key]).__name__}"
            )
    return meta


def load_model(path_dir) -> tuple[nnx.Module, dict]:
    """Load a model saved by `save_model`.

    Returns:
        (model, meta) where meta is `{"model": config, "extra": ...}`; the model is in eval mode.

    Raises:
        FileNotFoundError: no checkpoint in `path_dir`.
        ValueError: a damaged, unreadable or newer-format file (naming it), a config without
            the weights' checksum or with fields of the wrong type, weights that do not fit the
            stored architecture or are not finite (NaN or inf: every score would be NaN).
    """
    path = Path(path_dir)
    meta = read_config(path)
    wpath = path / WEIGHTS_NAME
    if not wpath.exists():
        raise FileNotFoundError(f"{wpath}: checkpoint weights missing")
    data = _read_file(wpath, "weights")
    if "weights_sha256" not in meta:
        raise ValueError(
            f"{path / CONFIG_NAME}: no weights_sha256; the weights cannot be checked, so the "
            "checkpoint is refused (save it again with rbcore.checkpoint.save_model)"
        )
    if meta["weights_sha256"] != hashlib.sha256(data).hexdigest():
        raise ValueError(f"{wpath}: damaged checkpoint, checksum differs from {CONFIG_NAME}")
    try:
        stored = serialization.msgpack_restore(data)
    except Exception as e:  # msgpack raises several exception types on corrupt input
        raise ValueError(f"{wpath}: damaged checkpoint weights, cannot be decoded ({e})") from e
    try:
        model = build_model(meta["model"])
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path / CONFIG_NAME}: {e}") from e
    target = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    want = {
        jax.tree_util.keystr(k): np.shape(v) for k, v in jax.tree_util.tree_leaves_with_path(target)
    }
    try:
        got = {
            jax.tree_util.keystr(k): np.shape(v)
            for k, v in jax.tree_util.tree_leaves_with_path(stored)
        }
    except Exception as e:
        raise ValueError(f"{wpath}: unexpected weight structure ({e})") from e
    if want != got:
        diff = sorted(set(want.items()) ^ set(got.items()))[:4]
        raise ValueError(
            f"{wpath}: weights do not match the {meta['model'].get('architecture')} architecture "
            f"(first differences: {diff})"
        )
    _check_finite(wpath, stored)
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(state, jax.tree.map(np.asarray, stored))
    nnx.update(model, state)
    model.eval()
    return model, meta


def _check_finite(wpath: Path, stored) -> None:
    """Refuse NaN or infinite weights, naming the file and the first few arrays holding them."""
    bad = [
        jax.tree_util.keystr(k)
        for k, v in jax.tree_util.tree_leaves_with_path(stored)
        if not np.isfinite(np.asarray(v)).all()
    ]
    if bad:
        raise ValueError(
            f"{wpath}: non-finite weights (NaN or inf) in {len(bad)} arrays, first {bad[:3]}; "
            "this checkpoint would give NaN scores"
        )
