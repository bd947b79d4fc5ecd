"""Command-line scorer: how a pipeline calls rbcore.

    python -m rbcore score --checkpoint CKPT --input FILE --output scores.csv [--batch-size N]
                           [--engine jax|onnx]
    python -m rbcore score --model braai-d6_m7 --weights-dir DIR --input PACKETS --output scores.csv
    python -m rbcore export --checkpoint CKPT --output model.onnx

`export` writes the checkpoint as an ONNX model for pipelines without JAX, and `--engine onnx`
scores through onnxruntime, from a checkpoint or an exported .onnx file (`rbcore.onnx_export`;
the optional extra `rbcore[onnx]`).

FILE is a FITS file of triplets (REF, NEW, SUB image cubes + optional META table, see
`rbcore.fits.write_fits_triplets`) or a .npy array float32[N, 29, 29, 3] in the dataset
layout (`images{detector_id}.npy`, `test_real.npy`...); its params table, when present beside
it (`params{detector_id}.csv`, `test_real_params.csv`) or given with --params, supplies the
candidates' ids. FILE may also be ZTF alert packets: a folder, a glob or a file of .avro /
.parquet alerts (`rbcore.ztf.packets`); their 63x63 stamps are cut and resampled onto the
29x29 model grid by `rbcore.ztf.resample_to_tomoe`, as notebook 06 does, damaged packets are
reported and counted on stderr, and the rows carry `candid` and `objectId`. The output CSV
has one row per triplet: `row`, the id columns found, `logit` and `score` (the probability of
real). Bad input (unreadable file, wrong shape, missing FITS extension, infinite pixels or
values beyond float32's range, missing checkpoint, a params table without an id column or with
an id twice, an output that is a folder or one of the inputs) prints one line
"rbcore score: error: ..." and exits with status 2 (the output and the inputs are checked
before any scoring). The output is written to a temporary file `.<output>.<pid>.tmp` (with the permissions of
any new file, umask applied) renamed at the end, so a failed run leaves no output file; the
temporary file of a killed run is removed by the next run.

`--model braai-d6_m7` (or `braai-d6_m9`) scores ZTF alert packets with ZTF's own classifier
braai instead (`score_braai`, `rbcore.ztf.braai`): its 63x63 stamps unresampled, braai's
input recipe, the HDF5 weights from `--weights-dir`; d6_m7's score is the packets' `drb`.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore._xla import EXIT_INTERRUPTED
from rbcore.model import IMAGE_SHAPE

# copied to the output if present; candid and objectId are the ZTF alert packets' ids
ID_COLUMNS = ("candidate_id", "id", "detector_id", "object_id", "candid", "objectId")
KEY_COLUMNS = ("candidate_id", "id", "candid")  # each names one candidate (with detector_id)
EXIT_BAD_INPUT = 2  # the argparse convention for usage errors
READ_BLOCK = 32768  # most triplets read from disk at a time (~330 MB of float32), any batch size


class InputError(ValueError):
    """Bad input: reported as one line, exit status 2."""


def _open_input(path: Path, params_path: Path | None) -> tuple[np.ndarray, pd.DataFrame | None]:
    """(images float32[N, 29, 29, 3] (memory-mapped for .npy), id table or None)."""
    images, table = _open_images(path, params_path)
    explicit = params_path is not None
    if params_path is None and not _is_packets(path):
        params_path = _sibling_params(path)
    if params_path is not None:
        table = _read_params(params_path, len(images), path)
    return images, _check_ids(params_path or path, table, explicit)


def _read_params(params_path: Path, n: int, path: Path) -> pd.DataFrame:
    """The table of `path`'s triplets in `params_path`: readable, one row per triplet."""
    from rbcore.datasets import read_csv_table

    try:
        table = read_csv_table(params_path)
    except (OSError, ValueError) as err:
        raise InputError(str(err)) from err
    if len(table) != n:
        raise InputError(f"{params_path}: {len(table)} rows for {n} triplets in {path}")
    return table


def _check_ids(source: Path, table: pd.DataFrame | None, explicit: bool) -> pd.DataFrame | None:
    """The id table, if it has an id column (named as in ID_COLUMNS), each candidate once.

    A table given with --params must have one; a table found beside the input (or a FITS
    META table) without one is reported on stderr and not used.
    """
    if table is None:
        return None
    if not any(c in table.columns for c in ID_COLUMNS):
        what = f"{source}: no id column; expected one of {list(ID_COLUMNS)}"
        found = f"found {list(table.columns)[:8]}"
        if explicit:
            raise InputError(f"{what} ({found}); rename the id column")
        print(f"rbcore score: note: {what} ({found}); rows are identified by 'row' only",
              file=sys.stderr)  # fmt: skip
        return None
    keys = [c for c in KEY_COLUMNS if c in table.columns]
    if keys and "detector_id" in table.columns:
        keys.append("detector_id")
    dup = table.duplicated(subset=keys, keep=False) if keys else pd.Series(False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        first = table.iloc[rows[0]][keys].to_dict()
        same = rows[(table.iloc[rows][keys] == table.iloc[rows[0]][keys]).all(axis=1).to_numpy()]
        raise InputError(
            f"{source}: candidate {first} appears on rows {same[:5].tolist()}; ids must be unique"
        )
    return table


def _open_images(path: Path, params_path: Path | None) -> tuple[np.ndarray, pd.DataFrame | None]:
    """The triplets of --input, and the ids it carries itself (FITS META, packets) or None."""
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
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file (0 bytes); expected a .npy array [N, 29, 29, 3]")
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
    from rbcore.ztf.packets import find_packet_files

    try:
        return find_packet_files(str(path))
    except (FileNotFoundError, ValueError):
        return []


def _open_packets(spec: str) -> tuple[np.ndarray, pd.DataFrame]:
    """ZTF alert packets on the model grid, and their candid / objectId."""
    from rbcore.ztf import resample_to_tomoe
    from rbcore.ztf.packets import read_packets

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
    m = re.fullmatch(r"images(\d+)\.npy", path.name, re.IGNORECASE)
    cand = (
        path.with_name(f"params{m.group(1)}.csv")
        if m
        else path.with_name(path.stem + "_params.csv")
    )
    return cand if path.suffix.lower() == ".npy" and cand.exists() else None


def _check_output(output: Path, input_path: Path, params: Path | None, checkpoint) -> None:
    """Refuse, before any work, an output that is a folder or would replace an input."""
    if output.is_dir():
        raise InputError(f"{output}: is a directory; expected the path of a CSV file")
    if not output.parent.is_dir():
        raise InputError(f"{output.parent}: output directory does not exist")
    inputs = list(_input_files(input_path))
    if not _is_packets(input_path):
        inputs.append(params or _sibling_params(input_path))
    ckpt = Path(checkpoint)
    inputs += list(ckpt.iterdir()) if ckpt.is_dir() else [ckpt]
    for p in inputs:
        if p is not None and (
            output.resolve() == p.resolve()
            or (output.exists() and p.exists() and os.path.samefile(output, p))
        ):
            raise InputError(f"{output}: the output would replace the input {p}")


def _temp_path(output: Path, pid: int) -> Path:
    return output.with_name(f".{output.name}.{pid}.tmp")


def _remove_stale_temps(output: Path) -> None:
    """Remove the temporary files of earlier runs on `output` that were killed."""
    pattern = re.compile(rf"\.{re.escape(output.name)}\.(\d+)\.tmp")
    for p in output.parent.glob(f".{glob.escape(output.name)}.*.tmp"):
        m = pattern.fullmatch(p.name)
        if m and not _running(int(m.group(1))):
            p.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _write_csv(table: pd.DataFrame, output: Path) -> None:
    """`table` to `output` via a temporary file and a rename; normal permissions (umask)."""
    _remove_stale_temps(output)
    tmp = _temp_path(output, os.getpid())
    tmp.unlink(missing_ok=True)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w") as f:
            table.to_csv(f, index=False)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _survey_note(checkpoint, meta: dict, input_path: Path) -> None:
    """Say so on stderr when the checkpoint's survey (`extra.survey`, "tomoe" when absent: the
    Tomo-e models of notebook 03 do not record it) is not the input's (ZTF packets or Tomo-e)."""
    trained = str((meta.get("extra") or {}).get("survey", "tomoe"))
    given, what = (
        ("ztf", "ZTF alert packets") if _is_packets(input_path) else ("tomoe", "Tomo-e cutouts")
    )
    if trained.lower() != given:
        print(f"rbcore score: note: {checkpoint} was trained on the {trained!r} survey "
              f"(config.json extra.survey) and scores {what} here", file=sys.stderr)  # fmt: skip


def score_file(checkpoint, input_path, output, *, batch_size=1024, params=None, progress=True,
               engine=None):  # fmt: skip
    """Score the triplets of `input_path` with the model at `checkpoint` into CSV `output`.

    Args:
        checkpoint: a checkpoint directory (`rbcore.checkpoint.save_model`).
        input_path: FITS or .npy triplets (see the module docstring).
        output: CSV path; written atomically (temporary file, then rename).
        batch_size: triplets per XLA call.
        params: optional CSV with one row per triplet (ids).
        progress: show a tqdm progress bar.
        engine: "jax" or "onnx" (`rbcore.onnx_export.ENGINES`; default `DEFAULT_ENGINE`).

    Returns:
        The number of triplets scored.

    Raises:
        InputError: bad input, naming the file and what was expected.
    """
    from tqdm.auto import tqdm

    from rbcore.inference import sigmoid
    from rbcore.onnx_export import DEFAULT_ENGINE, checkpoint_scorer
    from rbcore.preprocess import as_pixels

    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    output, params = Path(output), Path(params) if params else None
    _check_output(output, Path(input_path), params, checkpoint)
    images, table = _open_input(Path(input_path), params)
    try:
        scorer, meta = checkpoint_scorer(checkpoint, batch_size, engine or DEFAULT_ENGINE)
    except ImportError as err:  # the onnx engine without the extra: says what to install
        raise InputError(str(err)) from err
    except (OSError, ValueError) as err:
        raise InputError(f"checkpoint: {err}") from err
    _survey_note(checkpoint, meta, Path(input_path))
    n = len(images)
    logits = np.empty(n, np.float32)
    block = min(batch_size * 8, READ_BLOCK)  # triplets read from disk at a time
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
    _write_csv(out, output)
    return n


def score_braai(model, weights_dir, input_path, output, *, batch_size=512) -> int:
    """Score ZTF alert packets with braai (`--model braai-d6_m7` / `braai-d6_m9`) into `output`.

    The packets' 63x63 stamps go to braai unresampled, with its own input recipe
    (`rbcore.ztf.braai`); rows carry `candid`, `objectId`, `logit` and `score` (d6_m7: `drb`).
    """
    from rbcore.inference import sigmoid
    from rbcore.ztf.braai import braai_inputs, braai_logits, load_braai, weights_path
    from rbcore.ztf.packets import read_packets

    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    input_path, output = Path(input_path), Path(output)
    if not _is_packets(input_path):
        raise InputError(f"{input_path}: braai scores ZTF alert packets (.avro / .parquet)")
    try:
        weights = weights_path(weights_dir, model)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(f"--weights-dir: {err}") from err
    _check_output(output, input_path, None, weights)
    try:
        packets = read_packets(str(input_path), keep_blank=True)  # braai's recipe needs them
        braai = load_braai(model, weights_dir)
    except (FileNotFoundError, ValueError, OSError) as err:
        raise InputError(str(err)) from err
    for line in packets.summary.problems:
        print(f"rbcore score: skipped {line}", file=sys.stderr)
    if not len(packets):
        raise InputError(f"{input_path}: no readable ZTF alert packet ({packets.summary.text()})")
    a = packets.arrays
    x = braai_inputs(packets.images, version=braai.version, padded=a["padded"],
                     sub_flipped=a["sub_flipped"])  # fmt: skip
    logits = braai_logits(braai, x, batch_size)
    out = pd.DataFrame({"row": np.arange(len(x)), "candid": a["ids"], "objectId": a["objectId"],
                        "logit": logits, "score": sigmoid(logits)})  # fmt: skip
    _write_csv(out, output)
    return len(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rbcore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="score cutout triplets with a checkpoint")
    p.add_argument("--checkpoint", help="checkpoint directory (save_model)")
    p.add_argument(
        "--model",
        choices=("braai-d6_m7", "braai-d6_m9"),
        help="instead of --checkpoint: ZTF's braai (Duev et al. 2019) on ZTF packets",
    )
    p.add_argument("--weights-dir", help="with --model: the folder with braai's .h5 weights")
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
    p.add_argument("--engine", choices=("jax", "onnx"), default=None,
                   help="jax (rbcore's XLA scorer) or onnx (onnxruntime; --checkpoint may then "
                   "be an exported .onnx file); default: the faster here, see "
                   "benchmarks/README.md")  # fmt: skip
    e = sub.add_parser("export", help="write a checkpoint as an ONNX model (raw triplets in)")
    e.add_argument("--checkpoint", required=True, help="checkpoint directory (save_model)")
    e.add_argument("--output", required=True, help="the .onnx file to write")
    return parser


def _export(args) -> int:
    from rbcore.onnx_export import export_checkpoint, read_metadata

    try:
        path = export_checkpoint(args.checkpoint, args.output)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"rbcore export: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    version = read_metadata(path)["model_version"]
    print(f"rbcore export: {args.checkpoint} ({version}) -> {path}", file=sys.stderr)
    return 0


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    """Entry point of `python -m rbcore`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "export":
        return _export(args)
    # SIGTERM (a scheduler's kill) unwinds like Ctrl-C, so the temporary output is removed.
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        if (args.checkpoint is None) == (args.model is None):
            raise InputError("give exactly one of --checkpoint and --model")
        if args.model is not None:
            if args.weights_dir is None or args.params is not None:
                raise InputError("--model needs --weights-dir (and takes no --params)")
            if args.engine is not None:
                raise InputError("--engine applies to --checkpoint (rbcore's models)")
            n = score_braai(args.model, args.weights_dir, args.input, args.output,
                            batch_size=args.batch_size)  # fmt: skip
        else:
            n = score_file(args.checkpoint, args.input, args.output, batch_size=args.batch_size,
                           params=args.params, progress=not args.no_progress,
                           engine=args.engine)  # fmt: skip
    except InputError as err:
        print(f"rbcore score: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # Ctrl-C: the temporary output is already removed
        print("rbcore score: interrupted; no output written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"rbcore score: {n} triplets -> {args.output}", file=sys.stderr)
    return 0
