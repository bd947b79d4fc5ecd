"""Issue 25 (reliability, round 3): the candidate database.

Database URLs with one slash, or empty, are refused (they were taken as relative SQLite paths,
or SQLite's private temporary database); SQLite errors name the database file; a bad
PostgreSQL query option is the ValueError `connect` documents; a resumed night's committed
totals and histograms are bit-identical whatever order its chunks were written in.
"""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from rbcore.deploy import db as db_module
from rbcore.deploy.db import CandidateDB, connect


@pytest.mark.parametrize(
    "url", ["sqlite:/x.sqlite", "postgresql:/user@host/db", "postgres:/db", "", "  "]
)
def test_one_slash_or_empty_urls_are_refused(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as err:
        connect(url)
    text = str(err.value)
    assert repr(url) in text and "sqlite:///path" in text and "postgresql://" in text, text
    assert list(tmp_path.iterdir()) == []  # no folder "sqlite:" or "postgresql:" appears


def test_one_slash_url_hides_its_password():
    with pytest.raises(ValueError) as err:
        connect("postgresql:/rb:secret@host/db")
    assert "secret" not in str(err.value) and "'postgresql:/rb:***@host/db'" in str(err.value)


def test_sqlite_file_that_is_not_a_database_names_it(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError, match=rf"{path}: .*not a database"):
        CandidateDB(f"sqlite:///{path}")


def test_sqlite_folder_given_as_the_path_names_it(tmp_path):
    (tmp_path / "db").mkdir()
    with pytest.raises(sqlite3.OperationalError, match=rf"{tmp_path / 'db'}: "):
        CandidateDB(str(tmp_path / "db"))


def test_sqlite_read_only_database_names_it(tmp_path, monkeypatch):
    # the tests may run as root, whom chmod does not stop: SQLite's read-only mode instead
    path = tmp_path / "c.sqlite"
    CandidateDB(f"sqlite:///{path}").close()
    real = sqlite3.connect
    monkeypatch.setattr(
        db_module.sqlite3, "connect", lambda s, **kw: real(f"file:{s}?mode=ro", uri=True, **kw)
    )
    db = CandidateDB(f"sqlite:///{path}")  # reading is fine
    with pytest.raises(sqlite3.OperationalError, match=rf"{path}: .*readonly"):
        db.check_fingerprint({"seed": 0})  # the first write
    db.close()


def test_bad_postgresql_query_option_is_a_value_error(postgres_server):
    url = postgres_server.new_database()
    with pytest.raises(ValueError, match=r"candidate database postgresql://.*no_such_option"):
        connect(url + ("&" if "?" in url else "?") + "no_such_option=1")


def _write_night(db, order):
    """Night 0 of 3 chunks written in `order`: weights whose float sum depends on the order."""
    w = {0: 0.1, 1: 0.2, 2: 0.3}
    for chunk in order:
        summary = pd.DataFrame({"category": ["noise"], "is_real_true": [0], "pass_current": [1],
                                "pass_vat": [0], "n": [1], "weight": [w[chunk]]})  # fmt: skip
        hists = {("vat", "bogus"): (np.full(3, 1.0), np.full(3, w[chunk]))}
        db.write_chunk(night=0, chunk=chunk, candidates=pd.DataFrame(), summary=summary,
                       hists=hists, cutouts=pd.DataFrame())  # fmt: skip
    return db.commit_night(0, seconds=1.0, committed_at="t")


def test_resumed_night_is_bit_identical_to_an_uninterrupted_one(make_db):
    straight, resumed = make_db(), make_db()
    a = _write_night(straight, [0, 1, 2])
    b = _write_night(resumed, [2, 1, 0])  # a resume writes the missing chunks after the others
    assert a["weight"] == b["weight"]
    ha, hb = straight.histograms(3), resumed.histograms(3)
    assert ha.keys() == hb.keys()
    for k in ha:
        assert ha[k][1].tobytes() == hb[k][1].tobytes(), (k, ha[k][1], hb[k][1])
