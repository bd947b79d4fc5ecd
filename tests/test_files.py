"""Atomic writes: the target holds the whole new content, or its old content."""

import json

import pytest

from rbcore.files import write_bytes_atomic, write_json_atomic


def test_json_round_trip_creates_folders_and_leaves_no_temporary(tmp_path):
    path = write_json_atomic(tmp_path / "a" / "b.json", {"x": 1}, indent=2, trailing_newline=True)
    assert path.read_text() == '{\n  "x": 1\n}\n'
    assert json.loads(path.read_text()) == {"x": 1}
    assert not list(path.parent.glob("*.tmp"))


def test_failed_serialization_keeps_the_old_file(tmp_path):
    path = write_bytes_atomic(tmp_path / "m.json", b'{"old": true}')
    with pytest.raises(ValueError):
        write_json_atomic(path, {"bad": float("nan")}, allow_nan=False)
    assert path.read_bytes() == b'{"old": true}'
    assert not list(tmp_path.glob("*.tmp"))
