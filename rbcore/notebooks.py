"""Run the numbered notebooks headless with papermill, in order, for one profile.

    python -m rbcore.notebooks --profile smoke|default|paper [--only 01 03] [--from 03]

Each `notebooks/NN_*.ipynb` is executed with kernel `python3` and the parameters
`profile`, `seed`, `run_dir` and `figures_dir`; the executed copy goes to
`build/<profile>/NN_*.ipynb`. Notebooks share data only through files in `run_dir`
(`build/<profile>/run`). Figures go to `figures/` (the `smoke` profile writes them to
`build/smoke/figures/` so that CI never touches the committed figures). The run stops at the
first failing notebook and names it and the failing cell.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rbcore.profiles import PROFILE_NAMES

REPO_ROOT = Path(__file__).resolve().parent.parent

# glibc malloc settings for the notebook kernels; glibc reads them only at process start, so
# they go into the kernels' environment: transparent huge pages for the heap, and mmap and trim
# thresholds of 4 GiB, so that XLA's per-step buffers are reused rather than mapped and
# page-faulted anew on every step. Measured as a set (benchmarks/bench_ab.py stages, plain and
# tuned processes alternated, three undisturbed pairs on 2 cores): the VAT step +0-17 %, the
# supervised step +2-10 %, scoring -4 to +9 %. Parts of it were worse than nothing: the mmap
# threshold alone cost the supervised step 15-19 % and scoring 5-17 %, hugetlb and trim
# without it 21-31 % and 41-50 %. Opt out with RBCORE_MALLOC_TUNING=0; a GLIBC_TUNABLES of
# the user's own is kept.
MALLOC_TUNABLES = ":".join(
    [
        "glibc.malloc.hugetlb=1",
        "glibc.malloc.mmap_threshold=4294967296",
        "glibc.malloc.trim_threshold=4294967296",
    ]
)


def kernel_environment(environ=None) -> dict[str, str]:
    """Variables to add to the notebook kernels' environment: {} or {"GLIBC_TUNABLES": ...}.

    Nothing when the user set GLIBC_TUNABLES or RBCORE_MALLOC_TUNING=0.
    """
    import os

    environ = os.environ if environ is None else environ
    if environ.get("RBCORE_MALLOC_TUNING", "1") == "0" or "GLIBC_TUNABLES" in environ:
        return {}
    return {"GLIBC_TUNABLES": MALLOC_TUNABLES}


class NotebookFailed(RuntimeError):
    """A notebook raised; the message (one line) names the notebook, the failing cell and
    the error; `where` says where the executed copy and the kernel's log are."""

    where = ""


@dataclass(frozen=True)
class RunPlan:
    """Where one profile's run reads and writes (all absolute paths)."""

    profile: str
    notebooks: tuple[Path, ...]
    build_dir: Path
    run_dir: Path
    figures_dir: Path


def discover(notebooks_dir: Path) -> list[Path]:
    """The numbered notebooks `NN_*.ipynb` of `notebooks_dir`, in order."""
    found = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    return found


def make_plan(
    profile: str,
    *,
    notebooks_dir: Path | None = None,
    build_root: Path | None = None,
    figures_dir: Path | None = None,
    only: list[str] | None = None,
    start: str | None = None,
) -> RunPlan:
    """Resolve which notebooks run and where their outputs go."""
    if profile not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILE_NAMES}")
    notebooks_dir = Path(notebooks_dir or REPO_ROOT / "notebooks")
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(f"{notebooks_dir}: notebook folder not found")
    notebooks = discover(notebooks_dir)
    if only:
        notebooks = [p for p in notebooks if p.name[:2] in only]
        missing = set(only) - {p.name[:2] for p in notebooks}
        if missing:
            raise ValueError(f"no notebook numbered {sorted(missing)} in {notebooks_dir}")
    if start:
        notebooks = [p for p in notebooks if p.name[:2] >= start]
    build_dir = Path(build_root or REPO_ROOT / "build").resolve() / profile
    if figures_dir is None:
        figures_dir = build_dir / "figures" if profile == "smoke" else REPO_ROOT / "figures"
    _check_folder(build_dir / "run", "build")
    _check_folder(Path(figures_dir).resolve(), "figures")
    return RunPlan(
        profile, tuple(notebooks), build_dir, build_dir / "run", Path(figures_dir).resolve()
    )


def _check_folder(path: Path, what: str) -> None:
    """Refuse a folder to be made where `path` or one of its parents is a file."""
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise ValueError(f"{p}: is a file, not a folder; the {what} folder {path} goes there")


@contextmanager
def _kernel_stderr_to(log: Path):
    """The file descriptor 2 of this process, inherited by the kernel it starts, into `log`:
    the kernel's own log lines (ipykernel, XLA) stay out of the runner's output."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log, "wb") as f:
            os.dup2(f.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def run_notebook(path: Path, plan: RunPlan, *, seed: int = 0, extra: dict | None = None) -> Path:
    """Execute one notebook with papermill; raise `NotebookFailed` naming the cell on error."""
    import papermill as pm

    out = plan.build_dir / path.name
    plan.build_dir.mkdir(parents=True, exist_ok=True)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    params = {
        "profile": plan.profile,
        "seed": seed,
        "run_dir": str(plan.run_dir),
        "figures_dir": str(plan.figures_dir),
        **(extra or {}),
    }
    log = out.with_suffix(".kernel.log")
    try:
        with _kernel_stderr_to(log):
            pm.execute_notebook(
                str(path),
                str(out),
                parameters=params,
                kernel_name="python3",
                cwd=str(REPO_ROOT),
                progress_bar=False,
                log_output=False,
            )
    except pm.PapermillExecutionError as e:
        failed = NotebookFailed(
            f"{path.name} failed in cell {e.cell_index} (execution count {e.exec_count}): "
            f"{e.ename}: {' '.join(str(e.evalue).split())}"
        )
        failed.where = f"executed copy with the traceback: {out}; the kernel's log: {log}"
        raise failed from None
    return out


def record_time(plan: RunPlan, name: str, seconds: float) -> Path:
    """Add one notebook's wall time to `build_dir/timings.json` (kept across runs, atomically).

    Each entry holds the seconds, when it finished (UTC), the 1-minute load average then, the
    CPU count and the kernels' GLIBC_TUNABLES, so that a time measured on a busy machine or
    with other malloc settings says so. `total_seconds` sums the
    latest entry of every notebook: the time of `make run` when they all come from one run.
    """
    import json
    import os
    from datetime import UTC, datetime

    from rbcore.files import write_json_atomic

    path = plan.build_dir / "timings.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    notebooks = doc.get("notebooks", {})
    notebooks[name] = {
        "seconds": round(float(seconds), 1),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
    }
    doc = {
        "profile": plan.profile,
        "notebooks": dict(sorted(notebooks.items())),
        "total_seconds": round(sum(v["seconds"] for v in notebooks.values()), 1),
    }
    return write_json_atomic(path, doc, indent=2, trailing_newline=True)


def run_all(plan: RunPlan, *, seed: int = 0, log=print) -> list[Path]:
    """Run every notebook of `plan` in order; stop at the first failure.

    Each notebook's wall time goes to `build_dir/timings.json` (`record_time`). The kernels
    inherit this process's environment plus `kernel_environment()`.
    """
    import os
    from unittest import mock

    if not plan.notebooks:
        log("no numbered notebooks to run")
        return []
    done = []
    with mock.patch.dict(os.environ, kernel_environment()):  # restored afterwards
        for nb in plan.notebooks:
            t0 = time.perf_counter()
            log(f"[{plan.profile}] {nb.name} ...", end=" ", flush=True)
            try:
                done.append(run_notebook(nb, plan, seed=seed))
            except NotebookFailed as e:
                log(f"FAILED\n  {e.where}")  # the error itself: last, alone (main)
                raise
            seconds = time.perf_counter() - t0
            record_time(plan, nb.stem, seconds)
            log(f"done in {seconds:.0f} s")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rbcore.notebooks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--profile", choices=PROFILE_NAMES, default="default", help="work size (default: default)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed passed to every notebook")
    parser.add_argument("--only", nargs="+", metavar="NN", help="run only these notebook numbers")
    parser.add_argument("--from", dest="start", metavar="NN", help="start at this notebook number")
    parser.add_argument(
        "--notebooks-dir", type=Path, help="folder of NN_*.ipynb (default: notebooks/)"
    )
    parser.add_argument("--build-dir", type=Path, help="build root (default: build/)")
    parser.add_argument("--figures-dir", type=Path, help="figure folder (default: by profile)")
    args = parser.parse_args(argv)
    try:
        plan = make_plan(
            args.profile,
            notebooks_dir=args.notebooks_dir,
            build_root=args.build_dir,
            figures_dir=args.figures_dir,
            only=args.only,
            start=args.start,
        )
        run_all(plan, seed=args.seed)
    except (NotebookFailed, OSError, ValueError) as e:  # OSError: a folder it cannot make
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
