"""Shared fixtures: the candidate database on both backends (SQLite, PostgreSQL), toy data.

`make_db` (parametrized "sqlite", "postgresql") returns a function giving a new, empty
`CandidateDB` at each call (`make_url`: the URL of one); a test taking either runs once per
backend. PostgreSQL runs on one throwaway server per test session (tests/postgres_server.py),
a new database per call.
Without the server binaries the PostgreSQL cases skip, saying so, except under CI=true, where
they fail: CI must run them (.ci/run installs the binaries).
"""

import os

import numpy as np
import pytest
from postgres_server import PostgresServer, find_bindir

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server():
    bindir = find_bindir()
    if bindir is None:
        reason = (
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
            "/usr/lib/postgresql/*/bin"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the PostgreSQL tests (see .ci/run)")
        pytest.skip(reason)
    server = PostgresServer(bindir)
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture()
def make_url(request, backend, tmp_path):
    """A function returning the URL of a new, empty database on the test's backend."""
    n = []

    def make():
        n.append(1)
        if backend == "sqlite":
            return f"sqlite:///{tmp_path}/c{len(n)}.sqlite"
        return request.getfixturevalue("postgres_server").new_database()

    return make


@pytest.fixture()
def make_db(make_url):
    """A function returning a new empty CandidateDB on the test's backend at each call."""
    from rbcore.deploy.db import CandidateDB

    opened = []

    def make():
        opened.append(CandidateDB(make_url()))
        return opened[-1]

    yield make
    for db in opened:
        db.close()


@pytest.fixture(scope="module")
def data():
    """Toy cutouts for the training tests: (x, y, x_val, y_val, labeled mask)."""
    from toy import toy

    x, y = toy(192, 0)
    xv, yv = toy(64, 1)
    mask = np.random.default_rng(2).random(len(y)) > 0.25
    return x, y, xv, yv, mask
