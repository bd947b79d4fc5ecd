"""Write simulated data sets in the layout of the published Tomo-e real/bogus data.

Training: ``images{d}.npy`` (float32 [N, 29, 29, 3]) + ``params{d}.csv`` per detector d;
test: ``test_real.npy``, ``test_bogus.npy`` (+ ``test_*_params.csv`` with the simulator's
truth). Writing is chunked (``np.lib.format.open_memmap``), so any size fits in memory, and
resumable: a complete file is kept, an interrupted one (``*.partial``) is rewritten, and a
file is renamed to its final name only when complete. Each chunk draws from its own
``SeedSequence`` child (detector, chunk), so the data do not depend on chunk order or on
interruptions. What a folder was simulated with (seed, sizes, `SurveyConfig`) is stored beside
the data (``simulated_train.json``, ``simulated_test.json``); a call with other settings for a
folder that holds data is refused, saying what differs, rather than keeping the other set.

Notes:
    Layout: Takahashi et al. (2022), Zenodo 10.5281/zenodo.6691804.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.files import write_json_atomic
from rbcore.simulation.config import SurveyConfig
from rbcore.simulation.survey import simulate_candidates

SURVEY_CONFIG_NAME = "survey_config.json"  # in run_dir: the survey notebook 01 simulated
RECORD_NAMES = {"train": "simulated_train.json", "test": "simulated_test.json"}  # beside data
WRITE_CHUNK = 8192  # rows per simulate_candidates call while writing (~80 MB of images)
N_TRAIN_NIGHTS = 30  # training candidates come from 30 nights, the test from 30 later ones
TEST_NIGHT0 = 100  # first night of the test set: later than any training night


def _complete(npy: Path, csv: Path, n: int) -> bool:
    """True when both files exist and hold n rows (a finished earlier run)."""
    if not (npy.exists() and csv.exists()):
        return False
    try:
        shape = np.load(npy, mmap_mode="r").shape
        rows = sum(1 for _ in open(csv)) - 1
    except (ValueError, OSError):
        return False
    return shape[0] == n and rows == n


def _differences(stored: dict, record: dict, prefix: str = "") -> list[str]:
    """'key stored -> now' for each field that differs (config fields as config.<name>)."""
    out = []
    for k in sorted(set(stored) | set(record)):
        a, b = stored.get(k), record.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k} {a!r} -> {b!r}")
    return out


def _check_record(out: Path, kind: str, record: dict, data_files: list[Path]) -> None:
    """Refuse a folder holding a set simulated with other settings; record them if new."""
    path = out / RECORD_NAMES[kind]
    record = json.loads(json.dumps(record))  # as stored: tuples become lists
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: damaged record of the simulated set ({err})") from err
        diff = _differences(stored, record)
        if diff:
            raise ValueError(
                f"{out}: holds a {kind} set simulated with other settings ({'; '.join(diff)}); "
                "write to another folder, or delete this one to simulate anew"
            )
        return
    found = sorted(f.name for f in data_files if f.exists())
    if found:
        raise ValueError(
            f"{out}: holds {found[:3]} but no {path.name} saying how they were simulated; "
            "write to another folder, or delete them to simulate anew"
        )
    write_json_atomic(path, record, indent=1, sort_keys=True, trailing_newline=True)


def _write_pair(npy: Path, csv: Path, n: int, make_chunk) -> bool:
    """Write n rows chunk by chunk to npy/csv via *.partial files; False if already complete."""
    if _complete(npy, csv, n):
        return False
    tmp_npy, tmp_csv = npy.with_name(npy.name + ".partial"), csv.with_name(csv.name + ".partial")
    out = np.lib.format.open_memmap(tmp_npy, mode="w+", dtype=np.float32, shape=(n, 29, 29, 3))
    tables = []
    for i, start in enumerate(range(0, n, WRITE_CHUNK)):
        k = min(WRITE_CHUNK, n - start)
        images, table = make_chunk(i, k)
        out[start : start + k] = images
        tables.append(table)
    out.flush()
    del out
    params = (
        pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["object_type"])
    )
    params.to_csv(tmp_csv, index=False)
    os.replace(tmp_npy, npy)
    os.replace(tmp_csv, csv)
    return True


def write_training_set(
    out_dir,
    n: int,
    *,
    seed: int,
    config: SurveyConfig | None = None,
    n_detectors: int = 84,
    n_threads: int = 1,
) -> dict:
    """Write a simulated training set, one images/params pair per detector.

    Args:
        out_dir: folder (created) for images{d}.npy and params{d}.csv, d = 0..n_detectors-1.
        n: total number of candidates, split evenly over the detectors.
        seed: master seed; detector d, chunk i uses SeedSequence(seed, spawn_key=(d, i)).
        config: survey configuration.
        n_detectors: number of detectors to write (84 for Tomo-e; fewer for smoke runs).
        n_threads: simulation threads.

    Returns:
        dict(written=[detector ids written], skipped=[complete ones kept], n=n).

    Raises:
        ValueError: `out_dir` holds a set written with another seed, n, n_detectors or
            config (or data without the record of how they were made), saying what differs.
    """
    cfg = SurveyConfig() if config is None else config
    if not 1 <= n_detectors <= cfg.n_detectors:
        raise ValueError(
            f"write_training_set: n_detectors must be in 1..{cfg.n_detectors}, got {n_detectors}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {"seed": seed, "n": n, "n_detectors": n_detectors, "config": cfg.as_dict()}
    layout = [f for f in out.iterdir() if re.match(r"(images\d+\.npy|params\d+\.csv)$", f.name)]
    _check_record(out, "train", record, layout)
    written, skipped = [], []
    for d in range(n_detectors):
        n_d = n // n_detectors + (d < n % n_detectors)

        def chunk(i, k, d=d):
            seq = np.random.SeedSequence(seed, spawn_key=(d, i))
            return simulate_candidates(
                k,
                kind="train",
                seed=seq,
                config=cfg,
                detector_id=d,
                night=i % N_TRAIN_NIGHTS,
                n_threads=n_threads,
            )

        did = _write_pair(out / f"images{d}.npy", out / f"params{d}.csv", n_d, chunk)
        (written if did else skipped).append(d)
    return {"written": written, "skipped": skipped, "n": n}


def write_test_set(
    out_dir,
    n_real: int,
    n_bogus: int,
    *,
    seed: int,
    config: SurveyConfig | None = None,
    n_threads: int = 1,
    n_detectors: int | None = None,
) -> dict:
    """Write a clean-label test set: test_real.npy, test_bogus.npy and their params csv.

    Args:
        out_dir: folder (created).
        n_real: supernovae (on hosts and hostless, detected, realistic magnitudes).
        n_bogus: bogus detections (no astrophysical sources: labels are clean).
        seed: master seed; population p (0 real, 1 bogus), chunk i uses
            SeedSequence(seed, spawn_key=(1000 + p, i)).
        config: survey configuration.
        n_threads: simulation threads.
        n_detectors: the candidates fall on detectors 0..n_detectors-1, those of a training
            set written with the same `n_detectors` (None: all of the config's); the
            `detector_id` column of the params csv says which.

    Returns:
        dict(written=[names written], skipped=[complete ones kept]).

    Raises:
        ValueError: `out_dir` holds a set written with another seed, sizes or config.
    """
    cfg = SurveyConfig() if config is None else config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {"seed": seed, "n_real": n_real, "n_bogus": n_bogus, "config": cfg.as_dict()}
    if n_detectors is not None and n_detectors != cfg.n_detectors:
        if not 1 <= n_detectors <= cfg.n_detectors:
            raise ValueError(f"write_test_set: n_detectors must be in 1..{cfg.n_detectors}")
        record["n_detectors"] = n_detectors  # recorded only where it changes the data
    names = [f"test_{k}{ext}" for k in ("real", "bogus") for ext in (".npy", "_params.csv")]
    _check_record(out, "test", record, [out / f for f in names])
    written, skipped = [], []
    for p, (name, n, frac) in enumerate((("test_real", n_real, 1.0), ("test_bogus", n_bogus, 0.0))):

        def chunk(i, k, p=p, frac=frac):
            seq = np.random.SeedSequence(seed, spawn_key=(1000 + p, i))
            night = TEST_NIGHT0 + i % N_TRAIN_NIGHTS
            return simulate_candidates(
                k,
                kind="test",
                seed=seq,
                config=cfg,
                night=night,
                real_fraction=frac,
                n_threads=n_threads,
                n_detectors=n_detectors,
            )

        did = _write_pair(out / f"{name}.npy", out / f"{name}_params.csv", n, chunk)
        (written if did else skipped).append(name)
    return {"written": written, "skipped": skipped}


def write_survey_config(run_dir, config: SurveyConfig) -> Path:
    """Store the `SurveyConfig` of a run in `run_dir/survey_config.json` (notebook 01).

    The later notebooks that simulate (05, the week) or compare with the survey (06) read it
    back with `read_survey_config`, so the whole run uses one survey.
    """
    return write_json_atomic(
        Path(run_dir) / SURVEY_CONFIG_NAME, config.as_dict(), indent=1, trailing_newline=True
    )


def read_survey_config(run_dir) -> SurveyConfig:
    """The `SurveyConfig` notebook 01 stored in `run_dir`.

    Raises:
        FileNotFoundError: no survey configuration there (notebook 01 not run with this
            run_dir, or the data are real and nothing was simulated).
        ValueError: the file is not a valid configuration (names the file).
    """
    path = Path(run_dir) / SURVEY_CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no survey configuration; run notebook 01 (data preparation, simulated "
            "survey) with the same run_dir first"
        )
    try:
        config = SurveyConfig.from_dict(json.loads(path.read_text()))
        config.validate()
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: not a valid SurveyConfig ({err})") from err
    return config
