"""Tests of rbcore.deploy.db: schema, transactions, URLs and paramstyles, on SQLite and
PostgreSQL (the `make_db` fixture of conftest.py)."""

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rbcore.deploy.db import CANDIDATE_COLUMNS, CandidateDB, connect, display_url


def _chunk(night, chunk, n=3):
    cand = pd.DataFrame({c: [0.0] * n for c in CANDIDATE_COLUMNS})
    cand["candidate_id"] = night * 10**9 + chunk * 10 + np.arange(n)
    cand["night"], cand["chunk"] = night, chunk
    cand["model_version"], cand["category"] = "v", "noise"
    cand["mag"] = np.nan  # stored as NULL
    summary = pd.DataFrame({"category": ["noise"], "is_real_true": [0], "pass_current": [1],
                            "pass_vat": [0], "n": [n], "weight": [float(n)]})  # fmt: skip
    hists = {("vat", "bogus"): (np.ones(4), np.full(4, 0.5))}
    cut = pd.DataFrame({"candidate_id": cand["candidate_id"][:1], "night": night, "chunk": chunk,
                        "reason": "fp_vat", "category": "noise", "is_real_true": 0,
                        "score_current": 0.9, "score_vat": 0.9, "mag": np.nan, "snr": 5.0,
                        "weight": 1.0})  # fmt: skip
    cut["image"] = [np.arange(29 * 29 * 3, dtype=np.float32).reshape(29, 29, 3)]
    return dict(night=night, chunk=chunk, candidates=cand, summary=summary, hists=hists,
                cutouts=cut)  # fmt: skip


def test_schema_has_the_issue_columns(make_db):
    db = make_db()
    cols = set(db.columns("candidates"))
    for need in ("candidate_id", "night", "detector_id", "x", "y", "score_current", "score_vat",
                 "model_version", "category", "is_real_true", "mag", "snr", "weight"):  # fmt: skip
        assert need in cols
    assert {"candidates", "nights", "night_summary", "score_hist", "cutouts", "meta"} <= db.tables()


def test_sqlite_url_creates_the_folder(tmp_path):
    db = CandidateDB(f"sqlite:///{tmp_path}/sub/c.sqlite")
    assert (tmp_path / "sub" / "c.sqlite").exists()
    assert db.query("PRAGMA journal_mode")["journal_mode"].item() == "wal"
    db.close()


def test_chunk_write_is_atomic(make_db):
    db = make_db()
    db.write_chunk(**_chunk(0, 0))
    bad = _chunk(0, 1)
    bad["cutouts"] = pd.concat([bad["cutouts"], bad["cutouts"]])  # duplicate key: fails late
    with pytest.raises(db.driver.IntegrityError):
        db.write_chunk(**bad)
    assert db.query("SELECT COUNT(*) AS n FROM candidates")["n"].item() == 3  # chunk 0 only
    assert db.done_chunks(0) == {0}
    row = db.commit_night(0, seconds=1.0, committed_at="t")
    assert row["n_candidates"] == 3 and row["n_registered_current"] == 3
    assert db.committed_nights() == [0]
    images, tab = db.cutouts()
    assert images.shape == (1, 29, 29, 3) and images[0, 0, 0, 2] == 2.0
    np.testing.assert_array_equal(images[0], _chunk(0, 0)["cutouts"]["image"].iloc[0])
    assert tab["mag"].isna().all()
    h = db.histograms(4)
    np.testing.assert_array_equal(h[("vat", "bogus")][1], np.full(4, 0.5))
    with pytest.raises(ValueError, match="bins"):
        db.histograms(5)


def test_sums_read_back_as_python_numbers(make_db):
    """SUM over BIGINT is NUMERIC in PostgreSQL: read back as int, as SQLite returns it."""
    db = make_db()
    db.write_chunk(**_chunk(0, 0, n=5))
    s = db.query("SELECT SUM(n) AS n, SUM(weight) AS w, COUNT(*) AS k FROM night_summary")
    assert type(s["n"].item()) is int and s["n"].item() == 5
    assert type(s["w"].item()) is float and type(s["k"].item()) is int


def test_failed_read_leaves_the_connection_usable(make_db):
    db = make_db()
    with pytest.raises(db.driver.Error):
        db.query("SELECT no_such_column FROM nights")
    assert db.committed_nights() == []  # PostgreSQL: the aborted transaction was rolled back
    assert db.query("SELECT '100%' AS p")["p"].item() == "100%"  # no parameters: % is literal


def test_delete_night_removes_every_row(make_db):
    db = make_db()
    for j in (0, 1):
        db.write_chunk(**_chunk(j, 0))
        db.commit_night(j, seconds=0.0, committed_at="t")
    db.delete_night(0)
    for t in ("candidates", "night_summary", "score_hist", "cutouts", "nights"):
        assert db.query(f"SELECT DISTINCT night FROM {t}")["night"].tolist() == [1], t


def test_urls_and_paramstyles(tmp_path):
    with pytest.raises(ValueError, match="mysql"):
        connect("mysql://host/db")
    with pytest.raises(ValueError, match="sqlite:///path"):
        connect("sqlite://")
    db = CandidateDB(":memory:")
    assert db.sql("SELECT ? , ?") == "SELECT ? , ?"
    db.paramstyle = "pyformat"  # psycopg's style: the same SQL with %s placeholders
    assert db.sql("DELETE FROM t WHERE night = ?") == "DELETE FROM t WHERE night = %s"
    db.paramstyle = "named"
    with pytest.raises(ValueError, match="paramstyle"):
        db.sql("SELECT ?")
    conn = sqlite3.connect(tmp_path / "x.sqlite")  # an open DB-API connection is accepted
    assert CandidateDB(conn).committed_nights() == []


def test_display_url_hides_the_password():
    assert display_url("postgresql://u:secret@h:5/db") == "postgresql://u:***@h:5/db"
    assert display_url("postgresql://h/db?password=secret&x=1") == (
        "postgresql://h/db?password=***&x=1"
    )
    assert display_url("sqlite:///build/c.sqlite") == "sqlite:///build/c.sqlite"


def test_postgresql_url_opens_psycopg(postgres_server):
    import psycopg  # a dependency of rbcore (pyproject.toml)

    url = postgres_server.new_database()
    with CandidateDB(url) as db:
        assert not db.is_sqlite and db.paramstyle == "pyformat" and db.blob_type == "BYTEA"
    with CandidateDB(url.replace("postgresql://", "postgresql+psycopg://")) as db:
        assert db.committed_nights() == []
    with pytest.raises(ConnectionError, match="no_such_db"):
        connect(postgres_server.url("no_such_db"))
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(ValueError, match="autocommit"):
            CandidateDB(conn)
    with psycopg.connect(url) as conn:  # an open psycopg connection, autocommit off
        assert CandidateDB(conn).committed_nights() == []


def test_fingerprint_guards_resume(make_db):
    db = make_db()
    db.check_fingerprint({"seed": 0, "boost": 1.0})
    db.check_fingerprint({"seed": 0, "boost": 1.0})
    with pytest.raises(ValueError, match="boost"):
        db.check_fingerprint({"seed": 0, "boost": 2.0})
    db.replace_all()
    db.check_fingerprint({"seed": 0, "boost": 2.0})


KILLED_WRITER = """
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from test_deploy_db import _chunk
from rbcore.deploy.db import CandidateDB


class DieOnCommit:  # the connection, killed (SIGKILL) where the chunk's commit would be
    def __init__(self, conn):
        self.conn = conn

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def commit(self):
        os.kill(os.getpid(), signal.SIGKILL)


db = CandidateDB(sys.argv[1])
db.write_chunk(**_chunk(0, 0))
db.conn = DieOnCommit(db.conn)
db.write_chunk(**_chunk(0, 1))
"""


def test_a_killed_writer_loses_only_its_open_chunk(make_url):
    """A process killed inside a chunk's transaction: the chunk is gone, the rest is kept,
    and the database takes the chunk again (no lock or half-written rows left behind)."""
    url = make_url()
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, url, str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with CandidateDB(url) as db:
        assert db.done_chunks(0) == {0}
        assert db.query("SELECT COUNT(*) AS n FROM candidates")["n"].item() == 3
        assert len(db.query("SELECT * FROM cutouts")) == 1
        db.write_chunk(**_chunk(0, 1))
        assert db.done_chunks(0) == {0, 1}
        assert db.commit_night(0, seconds=0.0, committed_at="t")["n_candidates"] == 6
