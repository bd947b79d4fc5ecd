"""Atomic writes of run outputs: a file appears whole or not at all.

Every result a notebook leaves in `run_dir` (metrics, summaries, checkpoints) is written to a
temporary name beside its target and renamed into place, so that an interrupted run never
leaves a half-written file for the next notebook to read.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np


def write_bytes_atomic(path, data: bytes) -> Path:
    """Write `data` to `path` via `path.tmp` and a rename (parent folders are created).

    The temporary file is removed when anything fails (a rename onto a folder, Ctrl-C).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path, obj, *, trailing_newline: bool = False, **dumps_kwargs) -> Path:
    """Write `obj` as JSON to `path` atomically; `dumps_kwargs` go to `json.dumps`."""
    text = json.dumps(obj, **dumps_kwargs) + ("\n" if trailing_newline else "")
    return write_bytes_atomic(path, text.encode())


def write_text_atomic(path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes_atomic(path, text.encode())


def write_npz_atomic(path, **arrays) -> Path:
    """Write `arrays` as an uncompressed .npz to `path` atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_bytes_atomic(path, buf.getvalue())


def write_csv_atomic(path, frame, **to_csv_kwargs) -> Path:
    """Write a pandas DataFrame as CSV to `path` atomically (`to_csv_kwargs` to `to_csv`)."""
    return write_bytes_atomic(path, frame.to_csv(**to_csv_kwargs).encode())


def read_json(path, *, missing: str):
    """The JSON document at `path`; clear errors naming the file (`missing`: how to make it)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {missing}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
