"""A throwaway PostgreSQL server for the candidate-database tests.

`PostgresServer` runs `initdb` and `pg_ctl start` in a new temporary directory, listening only
on a unix socket in that directory (no TCP port, so nothing clashes with another server on
the machine), with trust authentication for its superuser `rbcore`, and `stop()` removes it.
PostgreSQL refuses to run as root: as root the server runs as the user `postgres` when it
exists (Debian's package creates it), else `nobody`, owning the directory.

The binaries are found on PATH or in /usr/lib/postgresql/<version>/bin (Debian's place, not
on PATH); `.ci/run` installs Debian's postgresql package where they are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

BINARIES = ("initdb", "pg_ctl")
SUPERUSER = "rbcore"


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, then Debian's, newest version."""
    on_path = [shutil.which(b) for b in BINARIES]
    if all(on_path):
        return Path(on_path[0]).resolve().parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin")
    for d in sorted(candidates, key=lambda p: int(Path(p).parent.name), reverse=True):
        if all((Path(d) / b).exists() for b in BINARIES):
            return Path(d)
    return None


class PostgresServer:
    """initdb + pg_ctl in a temporary directory; `url(db)` for a database, `stop()` to end."""

    def __init__(self, bindir: Path):
        self.bindir = Path(bindir)
        self.dir = Path(tempfile.mkdtemp(prefix="rbcore-pg-"))  # short: socket paths <= 107
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.user = None  # (uid, gid) to run as, when we are root
        if os.geteuid() == 0:
            name = "postgres" if _user_exists("postgres") else "nobody"
            pw = pwd.getpwnam(name)
            self.user = (pw.pw_uid, pw.pw_gid)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")  # fmt: skip
        options = (
            f"-c listen_addresses='' -k {self.dir} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c shared_buffers=16MB"  # a test server: speed over
        )  # durability (the tests kill the client, never the server)
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60",
                  "start")  # fmt: skip
        self._n_databases = 0

    def _run(self, binary: str, *args) -> None:
        kw = {}
        if self.user is not None:
            kw = dict(user=self.user[0], group=self.user[1], extra_groups=[])
        cmd = [str(self.bindir / binary), *map(str, args)]
        out = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=120, **kw)
        if out.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}\n{log}"
            )

    def url(self, database: str = "postgres") -> str:
        """libpq URL of `database` over the server's unix socket."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.dir}"

    def new_database(self) -> str:
        """Create an empty database; return its URL."""
        import psycopg

        self._n_databases += 1
        name = f"test_{self._n_databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
