"""Command-line scorer: how a pipeline calls rbcore.

    python -m rbcore score --checkpoint CKPT --input FILE --output scores.csv [--batch-size N]

FILE is a FITS file of triplets (REF, NEW, SUB image cubes + optional META table, see
`rbcore.fits.write_fits_triplets`) or a .npy array float32[N, 29, 29, 3] in the dataset
layout (`images{detector_id}.npy`, `test_real.npy`...); its params table, when present beside
it (`params{detector_id}.csv`, `test_real_params.csv`) or given with --params, supplies the
candidates' ids. FILE may also be ZTF alert packets: a folder, a glob or a file of .avro /
.parquet alerts (`rbcore.ztf_packets`); their 63x63 stamps are cut and resampled onto the
29x29 model grid by `rbcore.ztf.resample_to_tomoe`, as notebook 06 does, damaged packets are
reported and counted on stderr, and the rows carry `candid` and `objectId`. The output CSV
has one row per triplet: `row`, the id columns found, `logit` and `score` (the probability of
real). Bad input (unreadable file, wrong shape, missing FITS extension, infinite pixels or
values beyond float32's range, missing checkpoint) prints one line "rbcore score: error: ..."
and exits with status 2; the output is written to a temporary file renamed at the end, so a
failed run leaves no output file.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.model import IMAGE_SHAPE

# copied to the output if present; candid and objectId are the ZTF alert packets' ids
ID_COLUMNS = ("candidate_id", "id", "detector_id", "object_id", "candid", "objectId")
EXIT_BAD_INPUT = 2  # the argparse convention for usage errors


class InputError(ValueError):
    """Bad input: reported as one line, exit status 2."""


def _open_input(path: Path, params_path: Path | None) -> tuple[np.ndarray, pd.DataFrame | None]:
    """(images float32[N, 29, 29, 3] (memory-mapped for .npy), id table or None)."""
    if _is_packets(path):
        if params_path is not None:
            raise InputError("--params does not apply to ZTF alert packets (they carry their ids)")
        return _open_packets(str(path))
    if not path.exists():
        raise InputError(f"{path}: input file does not exist")
    name = path.name.lower()
    if name.endswith((".fits", ".fit", ".fits.gz", ".fts")):
        from rbcore.fits import read_fits_triplets

        try:
            images, table = read_fits_triplets(path)
        except (ValueError, OSError) as err:
            raise InputError(str(err)) from err
    elif name.endswith(".npy"):
        try:
            images = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise InputError(f"{path}: not a readable .npy array ({err})") from err
        table = None
    else:
        raise InputError(f"{path}: unknown input type; expected .fits or .npy")
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise InputError(f"{path}: expected triplets of shape (N, 29, 29, 3), got {images.shape}")
    if images.dtype.kind != "f":
        raise InputError(f"{path}: expected floating-point pixels, got dtype {images.dtype}")
    params_path = params_path or _sibling_params(path)
    if params_path is not None:
        try:
            table = pd.read_csv(params_path)
        except (OSError, ValueError) as err:
            raise InputError(f"{params_path}: not a readable CSV ({err})") from err
        if len(table) != len(images):
            raise InputError(
                f"{params_path}: {len(table)} rows for {len(images)} triplets in {path}"
            )
    return images, table


def _is_packets(path: Path) -> bool:
    """Whether --input names ZTF alert packets (a folder, a glob, an .avro or .parquet file)."""
    return (
        path.is_dir() or glob.has_magic(str(path)) or path.suffix.lower() in (".avro", ".parquet")
    )


def _input_files(path: Path) -> list[Path]:
    """The files --input names (none if it names nothing: `_open_input` says why)."""
    if not _is_packets(path):
        return [path.resolve()]
    from rbcore.ztf_packets import find_packet_files

    try:
        return find_packet_files(str(path))
    except (FileNotFoundError, ValueError):
        return []


def _open_packets(spec: str) -> tuple[np.ndarray, pd.DataFrame]:
    """ZTF alert packets on the model grid, and their candid / objectId."""
    from rbcore.ztf import resample_to_tomoe
    from rbcore.ztf_packets import read_packets

    try:
        packets = read_packets(spec)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(str(err)) from err
    for line in packets.summary.problems:
        print(f"rbcore score: skipped {line}", file=sys.stderr)
    print(f"rbcore score: {packets.summary.text()}", file=sys.stderr)
    if not len(packets):
        raise InputError(f"{spec}: no readable ZTF alert packet ({packets.summary.text()})")
    table = pd.DataFrame({"candid": packets.arrays["ids"], "objectId": packets.arrays["objectId"]})
    return resample_to_tomoe(packets.images), table


def _sibling_params(path: Path) -> Path | None:
    """The dataset layout's params file of an images file, if it exists."""
    m = re.fullmatch(r"images(\d+)\.npy", path.name)
    cand = (
        path.with_name(f"params{m.group(1)}.csv")
        if m
        else path.with_name(path.stem + "_params.csv")
    )
    return cand if path.suffix == ".npy" and cand.exists() else None


def score_file(checkpoint, input_path, output, *, batch_size=1024, params=None, progress=True):
    """Score the triplets of `input_path` with the model at `checkpoint` into CSV `output`.

    Args:
        checkpoint: a checkpoint directory (`rbcore.checkpoint.save_model`).
        input_path: FITS or .npy triplets (see the module docstring).
        output: CSV path; written atomically (temporary file, then rename).
        batch_size: triplets per XLA call.
        params: optional CSV with one row per triplet (ids).
        progress: show a tqdm progress bar.

    Returns:
        The number of triplets scored.

    Raises:
        InputError: bad input, naming the file and what was expected.
    """
    from tqdm.auto import tqdm

    from rbcore.checkpoint import load_model
    from rbcore.inference import Scorer, sigmoid
    from rbcore.preprocess import as_pixels

    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    output = Path(output)
    if not output.parent.is_dir():
        raise InputError(f"{output.parent}: output directory does not exist")
    if output.resolve() in _input_files(Path(input_path)):
        raise InputError(f"{output}: the output would replace an input file")
    images, table = _open_input(Path(input_path), Path(params) if params else None)
    try:
        model, _ = load_model(checkpoint)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(f"checkpoint: {err}") from err
    scorer = Scorer({"model": model}, batch_size)
    n = len(images)
    logits = np.empty(n, np.float32)
    block = batch_size * 8  # triplets read from disk at a time (bounded memory)
    with tqdm(total=n, unit="triplet", disable=not progress, desc="score") as bar:
        for s in range(0, n, block):
            try:  # the one pixel rule (NaN masked, +-inf an error), naming file and triplet
                x = as_pixels(
                    images[s : s + block], lambda i, s=s: f"{input_path}: triplet {s + i}"
                )
            except ValueError as err:
                raise InputError(str(err)) from err
            logits[s : s + len(x)] = scorer(x)["model"]
            bar.update(len(x))
    out = pd.DataFrame({"row": np.arange(n)})
    if table is not None:
        for c in ID_COLUMNS:
            if c in table.columns:
                out[c] = table[c].to_numpy()
    out["logit"] = logits
    out["score"] = sigmoid(logits)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    try:
        with os.fdopen(fd, "w") as f:
            out.to_csv(f, index=False)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rbcore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="score cutout triplets with a checkpoint")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (save_model)")
    p.add_argument(
        "--input",
        required=True,
        help="triplets: .fits (REF/NEW/SUB) or .npy; or ZTF alert packets: a folder, a quoted "
        "glob or file of .avro / .parquet",
    )
    p.add_argument("--output", required=True, help="output CSV (row, ids, logit, score)")
    p.add_argument("--batch-size", type=int, default=1024, help="triplets per XLA call")
    p.add_argument("--params", default=None, help="CSV of ids, one row per triplet")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    """Entry point of `python -m rbcore`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        n = score_file(args.checkpoint, args.input, args.output, batch_size=args.batch_size,
                       params=args.params, progress=not args.no_progress)  # fmt: skip
    except InputError as err:
        print(f"rbcore score: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"rbcore score: {n} triplets -> {args.output}", file=sys.stderr)
    return 0
