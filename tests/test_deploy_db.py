"""Tests of rbcore.deploy.db: schema, transactions, URLs and paramstyles."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from rbcore.deploy.db import CANDIDATE_COLUMNS, CandidateDB, connect


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


def test_schema_has_the_issue_columns(tmp_path):
    db = CandidateDB(f"sqlite:///{tmp_path}/sub/c.sqlite")
    assert (tmp_path / "sub" / "c.sqlite").exists()
    cols = set(db.query("PRAGMA table_info(candidates)")["name"])
    for need in ("candidate_id", "night", "detector_id", "x", "y", "score_current", "score_vat",
                 "model_version", "category", "is_real_true", "mag", "snr", "weight"):  # fmt: skip
        assert need in cols
    tables = set(db.query("SELECT name FROM sqlite_master WHERE type = 'table'")["name"])
    assert {"candidates", "nights", "night_summary", "score_hist", "cutouts", "meta"} <= tables


def test_chunk_write_is_atomic(tmp_path):
    db = CandidateDB(tmp_path / "c.sqlite")
    db.write_chunk(**_chunk(0, 0))
    bad = _chunk(0, 1)
    bad["cutouts"] = pd.concat([bad["cutouts"], bad["cutouts"]])  # duplicate key: fails late
    with pytest.raises(sqlite3.IntegrityError):
        db.write_chunk(**bad)
    assert db.query("SELECT COUNT(*) AS n FROM candidates")["n"].item() == 3  # chunk 0 only
    assert db.done_chunks(0) == {0}
    row = db.commit_night(0, seconds=1.0, committed_at="t")
    assert row["n_candidates"] == 3 and row["n_registered_current"] == 3
    assert db.committed_nights() == [0]
    images, tab = db.cutouts()
    assert images.shape == (1, 29, 29, 3) and images[0, 0, 0, 2] == 2.0
    assert tab["mag"].isna().all()
    h = db.histograms(4)
    np.testing.assert_array_equal(h[("vat", "bogus")][1], np.full(4, 0.5))
    with pytest.raises(ValueError, match="bins"):
        db.histograms(5)


def test_delete_night_removes_every_row(tmp_path):
    db = CandidateDB(tmp_path / "c.sqlite")
    for j in (0, 1):
        db.write_chunk(**_chunk(j, 0))
        db.commit_night(j, seconds=0.0, committed_at="t")
    db.delete_night(0)
    for t in ("candidates", "night_summary", "score_hist", "cutouts", "nights"):
        assert db.query(f"SELECT DISTINCT night FROM {t}")["night"].tolist() == [1], t


def test_urls_and_paramstyles(tmp_path):
    with pytest.raises(ValueError, match="psycopg"):
        connect("postgresql://host/db")
    db = CandidateDB(":memory:")
    assert db.sql("SELECT ? , ?") == "SELECT ? , ?"
    db.paramstyle = "pyformat"  # psycopg's style: the same SQL with %s placeholders
    assert db.sql("DELETE FROM t WHERE night = ?") == "DELETE FROM t WHERE night = %s"
    db.paramstyle = "named"
    with pytest.raises(ValueError, match="paramstyle"):
        db.sql("SELECT ?")
    conn = sqlite3.connect(tmp_path / "x.sqlite")  # an open DB-API connection is accepted
    assert CandidateDB(conn).committed_nights() == []


def test_fingerprint_guards_resume(tmp_path):
    db = CandidateDB(tmp_path / "c.sqlite")
    db.check_fingerprint({"seed": 0, "boost": 1.0})
    db.check_fingerprint({"seed": 0, "boost": 1.0})
    with pytest.raises(ValueError, match="boost"):
        db.check_fingerprint({"seed": 0, "boost": 2.0})
    db.replace_all()
    db.check_fingerprint({"seed": 0, "boost": 2.0})
