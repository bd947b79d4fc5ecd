"""The candidate database of the deployment week: registered candidates and nightly totals.

The pipeline registers a candidate when a model's score passes the registration threshold
(0.8 in the talk); registered candidates go to table `candidates`. To rebuild the talk's
confusion matrix the totals of *all* candidates are needed too, so each chunk also writes its
counts by (category, truth, passes current, passes VAT) to `night_summary`, and its logit
histograms to `score_hist` (for thresholds other than the registration one). `cutouts` keeps
the pixels of every real transient and of a sample of false positives for the galleries.
A night is committed when its row in `nights` exists.

Tables (all keyed by the integer night index 0..n_nights-1):
    meta(key, value)                      run fingerprint (JSON): resuming needs the same run
    candidates(candidate_id, night, chunk, detector_id, x, y, score_current, score_vat,
               logit_current, logit_vat, model_version, category, is_real_true, mag, snr,
               weight)
    night_summary(night, chunk, category, is_real_true, pass_current, pass_vat, n, weight)
    score_hist(night, chunk, model, truth, counts, weights)    histograms as float64 blobs
    cutouts(candidate_id, night, chunk, reason, category, ..., image)   float32 29x29x3 blob
    nights(night, n_candidates, weight, n_registered_current, n_registered_vat,
           seconds, committed_at)

The SQL is portable: SQLite (the default, standard library `sqlite3`) and PostgreSQL (psycopg 3)
run the same statements over a DB-API 2.0 connection; `connect(url)` opens either from a URL
("sqlite:///path" or "postgresql://user@host/db"). The dialect differences, all handled in this
module: the placeholder style (`?` here, `%s` for psycopg), the blob type (BLOB / BYTEA), SQLite's
PRAGMAs (WAL), the type of SUM over BIGINT (PostgreSQL's NUMERIC is read back as int, as SQLite
gives it) and reads ending their transaction (PostgreSQL opens one for a SELECT too). Nothing
here upserts: a night is replaced by deleting its rows and inserting them again in one
transaction. tests/test_deploy_db.py, test_deploy.py and test_deploy_report.py run against both,
PostgreSQL on a throwaway server (tests/postgres_server.py).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS candidates (
        candidate_id BIGINT PRIMARY KEY, night INTEGER NOT NULL, chunk INTEGER NOT NULL,
        detector_id INTEGER, x DOUBLE PRECISION, y DOUBLE PRECISION,
        score_current DOUBLE PRECISION NOT NULL, score_vat DOUBLE PRECISION NOT NULL,
        logit_current DOUBLE PRECISION NOT NULL, logit_vat DOUBLE PRECISION NOT NULL,
        model_version TEXT NOT NULL, category TEXT, is_real_true INTEGER,
        mag DOUBLE PRECISION, snr DOUBLE PRECISION, weight DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS candidates_night ON candidates (night)",
    """CREATE TABLE IF NOT EXISTS night_summary (
        night INTEGER NOT NULL, chunk INTEGER NOT NULL, category TEXT NOT NULL,
        is_real_true INTEGER NOT NULL, pass_current INTEGER NOT NULL, pass_vat INTEGER NOT NULL,
        n BIGINT NOT NULL, weight DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (night, chunk, category, is_real_true, pass_current, pass_vat))""",
    """CREATE TABLE IF NOT EXISTS score_hist (
        night INTEGER NOT NULL, chunk INTEGER NOT NULL, model TEXT NOT NULL,
        truth TEXT NOT NULL, counts {blob} NOT NULL, weights {blob} NOT NULL,
        PRIMARY KEY (night, chunk, model, truth))""",
    """CREATE TABLE IF NOT EXISTS cutouts (
        candidate_id BIGINT PRIMARY KEY, night INTEGER NOT NULL, chunk INTEGER NOT NULL,
        reason TEXT NOT NULL, category TEXT NOT NULL, is_real_true INTEGER NOT NULL,
        score_current DOUBLE PRECISION NOT NULL, score_vat DOUBLE PRECISION NOT NULL,
        mag DOUBLE PRECISION, snr DOUBLE PRECISION, weight DOUBLE PRECISION NOT NULL,
        image {blob} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS nights (
        night INTEGER PRIMARY KEY, n_candidates BIGINT NOT NULL, weight DOUBLE PRECISION NOT NULL,
        n_registered_current BIGINT NOT NULL, n_registered_vat BIGINT NOT NULL,
        seconds DOUBLE PRECISION NOT NULL, committed_at TEXT NOT NULL)""",
)

# Tables holding per-night rows (deleted when a night is replaced).
NIGHT_TABLES = ("candidates", "night_summary", "score_hist", "cutouts", "nights")

CANDIDATE_COLUMNS = (
    "candidate_id", "night", "chunk", "detector_id", "x", "y", "score_current", "score_vat",
    "logit_current", "logit_vat", "model_version", "category", "is_real_true", "mag", "snr",
    "weight",
)  # fmt: skip
CUTOUT_COLUMNS = (
    "candidate_id", "night", "chunk", "reason", "category", "is_real_true", "score_current",
    "score_vat", "mag", "snr", "weight", "image",
)  # fmt: skip


def connect(url) -> object:
    """A DB-API connection for `url`.

    Args:
        url: "sqlite:///path" (SQLite; "sqlite:////abs/path" is absolute, as in SQLAlchemy), a
            plain file path or ":memory:" (SQLite), or "postgresql://user:password@host:port/db"
            ("postgres://" and "postgresql+psycopg://" too; a unix socket as
            "postgresql://user@/db?host=/socket/dir"), opened with psycopg 3 as libpq reads it.

    Raises:
        ValueError: another scheme, a URL with one slash ("sqlite:/x"), an empty URL, a bad
            PostgreSQL option (the message names the URL and the accepted forms).
        ConnectionError: the PostgreSQL server cannot be reached or refuses the login.
        sqlite3.Error: SQLite cannot open the file (a folder, not a database...): the
            message names the file.
    """
    s = str(url)
    if not s.strip():  # SQLite would open a private temporary database, lost at close
        raise ValueError(f"database URL {s!r} is empty; expected {ACCEPTED_URLS}")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:(?!//)", s):  # "sqlite:/x" is no relative path
        raise ValueError(
            f"database URL {display_url(s)!r}: a scheme without '//'; expected {ACCEPTED_URLS}"
        )
    scheme = s.split("://", 1)[0].lower() if "://" in s else ""
    if scheme in POSTGRES_SCHEMES:
        return _connect_postgresql("postgresql://" + s.split("://", 1)[1])
    if scheme == "sqlite":
        if not s.startswith("sqlite:///") or s == "sqlite:///":
            raise ValueError(f"database URL {s!r}: expected sqlite:///path (a file path)")
        s = s[len("sqlite:///") :]
    elif scheme:
        raise ValueError(
            f"database URL {display_url(s)!r}: scheme {scheme!r} is not supported; expected "
            "sqlite:///path or postgresql://user@host/database"
        )
    if s != ":memory:":
        Path(s).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(s, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")  # readers (the notebook) do not block the writer
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a crash of
        # this process (not of the OS), ample for a rebuildable run
    except sqlite3.Error as err:  # sqlite3 does not say which file
        raise type(err)(f"{Path(s).resolve()}: {err}") from err
    return conn


ACCEPTED_URLS = (
    "sqlite:///path (relative; sqlite:////path for an absolute one), a plain file path, "
    "':memory:', or postgresql://user@host/database"
)
# URL schemes opened with psycopg ("postgresql+psycopg" is SQLAlchemy's spelling of the same).
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def display_url(url) -> str:
    """`url` with its password replaced by ***, for messages and notebook output."""
    s = str(url)
    if "://" not in s:  # a path, or a URL with one slash: hide a "user:password@" all the same
        return re.sub(r"([^:/@]+):[^:/@]*@", r"\1:***@", s)
    scheme, rest = s.split("://", 1)
    netloc, sep, tail = rest.partition("/")
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    tail = re.sub(r"(?i)(password=)[^&]*", r"\1***", tail)
    return f"{scheme}://{netloc}{sep}{tail}"


def _connect_postgresql(url: str):
    """A psycopg 3 connection (not autocommit: `CandidateDB` commits) for a libpq URL."""
    try:
        import psycopg
        from psycopg.types.numeric import NumericLoader
    except ImportError as err:  # a dependency of rbcore: only a broken install lacks it
        raise ImportError("PostgreSQL URLs need psycopg 3: pip install 'psycopg[binary]'") from err

    class _IntegralNumericLoader(NumericLoader):
        """NUMERIC as int when integral (SUM of a BIGINT column), else float: the types SQLite
        returns, so reports need not know the backend (psycopg's default is Decimal)."""

        def load(self, data):
            d = super().load(data)
            if d.is_finite() and d == d.to_integral_value():
                return int(d)
            return float(d)

    try:
        conn = psycopg.connect(url, connect_timeout=60)
    except psycopg.OperationalError as err:
        raise ConnectionError(f"candidate database {display_url(url)}: {err}".strip()) from err
    except psycopg.ProgrammingError as err:  # a URL libpq cannot parse (an unknown option)
        raise ValueError(f"candidate database {display_url(url)}: {err}".strip()) from err
    conn.adapters.register_loader("numeric", _IntegralNumericLoader)
    return conn


def _sqlite_file(conn) -> str:
    """The file of a SQLite connection's main database (":memory:" when none)."""
    rows = conn.execute("PRAGMA database_list").fetchall()  # no file is read for this
    return next((r[2] for r in rows if r[1] == "main"), "") or ":memory:"


def _blob(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array).tobytes()


class CandidateDB:
    """The candidate database over one DB-API 2.0 connection.

    Args:
        url_or_conn: "sqlite:///path", a path, ":memory:", "postgresql://..." (see `connect`),
            or an open DB-API connection (sqlite3, or psycopg 3 not in autocommit mode).

    Notes:
        Placeholders are written `?` everywhere and translated here to the driver's
        paramstyle ("qmark" for sqlite3, "format"/"pyformat" `%s` for psycopg): the one place
        that knows about the dialect, with the blob type (BLOB / BYTEA). A connection opened
        here from a URL is closed by `close()` (or leaving a `with` block).
    """

    def __init__(self, url_or_conn):
        if isinstance(url_or_conn, str | Path):
            self.conn = connect(url_or_conn)
        else:
            self.conn = url_or_conn
        self.is_sqlite = isinstance(self.conn, sqlite3.Connection)
        if not self.is_sqlite and getattr(self.conn, "autocommit", False) is True:
            raise ValueError(
                "CandidateDB needs a connection with autocommit off: a chunk's rows must commit "
                "together (psycopg.connect(url) without autocommit=True)"
            )
        module = sqlite3 if self.is_sqlite else __import__(type(self.conn).__module__.split(".")[0])
        self.driver = module  # its IntegrityError etc. (DB-API module attributes)
        self.paramstyle = getattr(module, "paramstyle", "qmark")
        self.blob_type = "BLOB" if self.is_sqlite else "BYTEA"
        self._in_transaction = False
        self.where = _sqlite_file(self.conn) if self.is_sqlite else None
        with self.transaction() as cur:
            for stmt in SCHEMA:
                cur.execute(stmt.format(blob=self.blob_type))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def sql(self, statement: str) -> str:
        """`statement` with `?` placeholders in the driver's paramstyle."""
        if self.paramstyle == "qmark":
            return statement
        if self.paramstyle in ("format", "pyformat"):
            return statement.replace("?", "%s")
        raise ValueError(f"unsupported DB-API paramstyle {self.paramstyle!r}")

    @contextmanager
    def transaction(self):
        """A cursor whose statements commit together, or roll back on any exception."""
        cur = self.conn.cursor()
        self._in_transaction = True
        try:
            yield cur
            self.conn.commit()
        except BaseException as err:
            self.conn.rollback()
            if (named := self._named(err)) is err:
                raise
            raise named from err
        finally:
            self._in_transaction = False
            cur.close()

    def _named(self, err: BaseException) -> BaseException:
        """A SQLite error with the database file in front of its message (sqlite3's own
        messages, "attempt to write a readonly database", do not say which)."""
        if self.where is None or not isinstance(err, sqlite3.Error) or self.where in str(err):
            return err
        return type(err)(f"{self.where}: {err}")

    def query(self, statement: str, params=()) -> pd.DataFrame:
        """Rows of a SELECT as a DataFrame (placeholders `?`).

        Outside `transaction()` the read ends its own transaction (PostgreSQL opens one for a
        SELECT too: left open it would hold a snapshot, and a failed read would abort every
        later statement of the connection).
        """
        cur = self.conn.cursor()
        try:
            if params:
                cur.execute(self.sql(statement), tuple(params))
            else:  # no parameters: psycopg then leaves a literal % alone
                cur.execute(statement)
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
            if not self._in_transaction:
                self.conn.commit()
            return pd.DataFrame(rows, columns=cols)
        except BaseException as err:
            if not self._in_transaction:
                self.conn.rollback()
            if (named := self._named(err)) is err:
                raise
            raise named from err
        finally:
            cur.close()

    def tables(self) -> set[str]:
        """Names of the tables (of the current schema for PostgreSQL)."""
        if self.is_sqlite:
            return set(self.query("SELECT name FROM sqlite_master WHERE type = 'table'")["name"])
        q = ("SELECT table_name AS name FROM information_schema.tables "
             "WHERE table_schema = current_schema()")  # fmt: skip
        return set(self.query(q)["name"])

    def columns(self, table: str) -> list[str]:
        """Column names of `table`, in order."""
        if self.is_sqlite:
            return self.query(f"PRAGMA table_info({table})")["name"].tolist()
        q = ("SELECT column_name AS name FROM information_schema.columns WHERE table_schema = "
             "current_schema() AND table_name = ? ORDER BY ordinal_position")  # fmt: skip
        return self.query(q, (table,))["name"].tolist()

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ run bookkeeping

    def check_fingerprint(self, fingerprint: dict) -> None:
        """Store the run's fingerprint, or check it equals the stored one (resume safety).

        Raises:
            ValueError: the database holds nights of a different run (other models, seed,
                volume...); use another database or `replace_all()`.
        """
        value = json.dumps(fingerprint, sort_keys=True)
        got = self.query("SELECT value FROM meta WHERE key = ?", ("fingerprint",))
        if len(got) == 0:
            with self.transaction() as cur:
                cur.execute(self.sql("INSERT INTO meta (key, value) VALUES (?, ?)"),
                            ("fingerprint", value))  # fmt: skip
            return
        stored = json.loads(got["value"].iloc[0])
        if stored != json.loads(value):
            diff = sorted(k for k in set(stored) | set(fingerprint)
                          if stored.get(k) != fingerprint.get(k))  # fmt: skip
            raise ValueError(
                f"the candidate database holds another run (differs in {diff}); use a new "
                "database or replace=True to start over"
            )

    def replace_all(self) -> None:
        """Delete every night and the fingerprint (start the week over)."""
        with self.transaction() as cur:
            for table in (*NIGHT_TABLES, "meta"):
                cur.execute(f"DELETE FROM {table}")

    def committed_nights(self) -> list[int]:
        """Nights whose `nights` row exists, ascending."""
        return self.query("SELECT night FROM nights ORDER BY night")["night"].astype(int).tolist()

    def done_chunks(self, night: int) -> set[int]:
        """Chunks of `night` already written (each chunk writes night_summary rows)."""
        q = self.query("SELECT DISTINCT chunk FROM night_summary WHERE night = ?", (night,))
        return set(q["chunk"].astype(int))

    def delete_night(self, night: int) -> None:
        """Remove every row of `night` (before rerunning it), in one transaction."""
        with self.transaction() as cur:
            for table in NIGHT_TABLES:
                cur.execute(self.sql(f"DELETE FROM {table} WHERE night = ?"), (night,))

    # --------------------------------------------------------------------------- writes

    def write_chunk(self, *, night, chunk, candidates, summary, hists, cutouts) -> None:
        """Write one chunk's rows in a single transaction.

        Args:
            night, chunk: the chunk's key.
            candidates: DataFrame with `CANDIDATE_COLUMNS` (registered candidates).
            summary: DataFrame (category, is_real_true, pass_current, pass_vat, n, weight).
            hists: {(model, truth): (counts float64[K], weights float64[K])}.
            cutouts: DataFrame with `CUTOUT_COLUMNS` (image: float32[29, 29, 3] per row).
        """
        ins = "INSERT INTO {} ({}) VALUES ({})"
        with self.transaction() as cur:
            if len(candidates):
                cur.executemany(
                    self.sql(ins.format("candidates", ", ".join(CANDIDATE_COLUMNS),
                                        ", ".join("?" * len(CANDIDATE_COLUMNS)))),
                    _records(candidates[list(CANDIDATE_COLUMNS)]),
                )  # fmt: skip
            cols = ("night", "chunk", "category", "is_real_true", "pass_current", "pass_vat", "n",
                    "weight")  # fmt: skip
            summary = summary.assign(night=night, chunk=chunk)
            cur.executemany(
                self.sql(ins.format("night_summary", ", ".join(cols), ", ".join("?" * len(cols)))),
                _records(summary[list(cols)]),
            )
            cur.executemany(
                self.sql("INSERT INTO score_hist (night, chunk, model, truth, counts, weights) "
                         "VALUES (?, ?, ?, ?, ?, ?)"),
                [(night, chunk, m, t, _blob(c.astype(np.float64)), _blob(w.astype(np.float64)))
                 for (m, t), (c, w) in hists.items()],
            )  # fmt: skip
            if len(cutouts):
                rows = cutouts[list(CUTOUT_COLUMNS)].copy()
                rows["image"] = [_blob(np.asarray(im, np.float32)) for im in rows["image"]]
                cur.executemany(
                    self.sql(ins.format("cutouts", ", ".join(CUTOUT_COLUMNS),
                                        ", ".join("?" * len(CUTOUT_COLUMNS)))),
                    _records(rows),
                )  # fmt: skip

    def commit_night(self, night: int, *, seconds: float, committed_at: str) -> dict:
        """Commit `night`: its `nights` row (from its chunks' summaries), and its chunks'
        histograms summed into one row per (model, truth) with chunk -1, in one transaction.

        Returns:
            The `nights` row.
        """
        s = self.query(
            "SELECT SUM(n) AS n, "
            "SUM(CASE WHEN pass_current = 1 THEN n ELSE 0 END) AS rc, "
            "SUM(CASE WHEN pass_vat = 1 THEN n ELSE 0 END) AS rv "
            "FROM night_summary WHERE night = ?",
            (night,),
        ).iloc[0]
        # the weights summed exactly (math.fsum), so the order of the rows (a resumed night
        # wrote its chunks in another order; PostgreSQL returns them as stored) cannot matter
        w = self.query("SELECT weight FROM night_summary WHERE night = ?", (night,))["weight"]
        row = {
            "night": int(night),
            "n_candidates": int(s["n"] or 0),
            "weight": math.fsum(w.astype(float)),
            "n_registered_current": int(s["rc"] or 0),
            "n_registered_vat": int(s["rv"] or 0),
            "seconds": float(seconds),
            "committed_at": committed_at,
        }
        hist = self.query(  # summed in chunk order, however the chunks were written
            "SELECT model, truth, counts, weights FROM score_hist WHERE night = ? "
            "ORDER BY chunk, model, truth",
            (night,),
        )
        merged: dict = {}
        for m, t, c, w in hist.itertuples(index=False):
            c0, w0 = merged.get((m, t), (0.0, 0.0))
            merged[(m, t)] = (c0 + np.frombuffer(bytes(c)), w0 + np.frombuffer(bytes(w)))
        with self.transaction() as cur:
            # the night's histograms summed into one row per (model, truth): chunk -1
            cur.execute(self.sql("DELETE FROM score_hist WHERE night = ?"), (night,))
            cur.executemany(
                self.sql("INSERT INTO score_hist (night, chunk, model, truth, counts, weights) "
                         "VALUES (?, ?, ?, ?, ?, ?)"),
                [(night, -1, m, t, _blob(c), _blob(w)) for (m, t), (c, w) in merged.items()],
            )  # fmt: skip
            cur.execute(
                self.sql(f"INSERT INTO nights ({', '.join(row)}) VALUES "
                         f"({', '.join('?' * len(row))})"),
                tuple(row.values()),
            )  # fmt: skip
        return row

    # ---------------------------------------------------------------------------- reads

    def histograms(self, n_bins: int) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        """Summed logit histograms over committed nights: {(model, truth): (counts, weights)}."""
        rows = self.query(
            "SELECT h.model, h.truth, h.counts, h.weights FROM score_hist h "
            "JOIN nights n ON n.night = h.night ORDER BY h.night, h.chunk, h.model, h.truth"
        )
        out: dict = {}
        for m, t, c, w in rows.itertuples(index=False):
            c = np.frombuffer(bytes(c), np.float64)
            w = np.frombuffer(bytes(w), np.float64)
            if c.size != n_bins or w.size != n_bins:
                raise ValueError(f"score_hist ({m}, {t}): {c.size} bins stored, expected {n_bins}")
            c0, w0 = out.get((m, t), (0.0, 0.0))
            out[(m, t)] = (c0 + c, w0 + w)
        return out

    def cutouts(self) -> tuple[np.ndarray, pd.DataFrame]:
        """Stored cutouts of committed nights: (float32[N, 29, 29, 3], their table)."""
        rows = self.query(
            f"SELECT {', '.join('c.' + k for k in CUTOUT_COLUMNS)} FROM cutouts c "
            "JOIN nights n ON n.night = c.night ORDER BY c.candidate_id"
        )
        images = np.stack([np.frombuffer(bytes(b), np.float32).reshape(29, 29, 3)
                           for b in rows["image"]]) if len(rows) else np.zeros((0, 29, 29, 3),
                                                                               np.float32)  # fmt: skip
        return images, rows.drop(columns="image")


def _records(frame: pd.DataFrame) -> list[tuple]:
    """Rows as tuples of plain Python values (NaN -> NULL), as every DB-API driver accepts."""
    out = []
    for row in frame.itertuples(index=False, name=None):
        out.append(tuple(_plain(v) for v in row))
    return out


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v
