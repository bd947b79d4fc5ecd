"""ZTF alert packets as users have them (Avro, Parquet) -> the shared alert-file layout.

    python -m rbcore.ztf.packets --input ALERTS_DIR_OR_GLOB [...] --output alerts.npz

Inputs: Avro container files of ZTF alerts (the public alert archive's nightly tarballs
unpack to one .avro per alert; brokers such as Fink write part files of many alerts) and
Parquet exports with the same fields (the alert schema as nested columns: `candidate` a
struct, each cutout a struct {fileName, stampData}; flat candidate columns are accepted too).
A folder is searched recursively for *.avro and *.parquet; a glob is expanded; files are
read in sorted order, records in file order.

Output: the arrays of `shared/data/ztf_alerts/ztf_alerts_dev.npz` (see its README), which
`rbcore.ztf.load_alerts` reads and notebook 06 uses: `images` float32[N, 63, 63, 3] with
channels (ref, new, sub) = (cutoutTemplate, cutoutScience, cutoutDifference), raw pixel
values; `ids` (candid as text), `objectId`, the candidate metadata (`FLOAT_FIELDS`,
`INT_FIELDS`, `TEXT_FIELDS`), `weak_labels`, `labels` (all -1), `peer_scores` (= drb),
`diff_fileName`, `diff_is_ref_minus_sci`, `padded`, `src` (file#record); here also
`sub_flipped`, `n_sentinel`, `n_nonstandard_fits` (per alert: stamps whose FITS SIMPLE card is
not in the standard's fixed format, read all the same) and `n_packets_skipped` (a scalar).

Damaged packets are never dropped silently: an unreadable Avro block or record, a corrupt
gzip/FITS cutout, a stamp of the wrong shape, +-inf pixels, a missing candid or objectId or
an unknown `isdiffpos` is reported with its file and record index and skipped; a repeated
candid is skipped after its first occurrence. `ReadSummary` counts what was read and what
was skipped, by reason (a damaged block counts the records it declared; a file that is not
Avro or Parquet at all counts as one).
"""

from __future__ import annotations

import argparse
import glob
import io
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rbcore._xla import EXIT_INTERRUPTED, exit_with
from rbcore.ztf.stamps import (
    FLOAT_FIELDS,
    INT_FIELDS,
    STAMP_SIZE,
    TEXT_FIELDS,
    PacketError,
    packet_to_alert,
    weak_labels,
)

PACKET_SUFFIXES = (".avro", ".parquet")
_AVRO_MAGIC = b"Obj\x01"
_AVRO_HEADER = {
    "type": "record", "name": "org.apache.avro.file.Header",
    "fields": [
        {"name": "magic", "type": {"type": "fixed", "name": "magic", "size": 4}},
        {"name": "meta", "type": {"type": "map", "values": "bytes"}},
        {"name": "sync", "type": {"type": "fixed", "name": "sync", "size": 16}},
    ],
}  # fmt: skip


@dataclass
class ReadSummary:
    """What `read_packets` read and skipped.

    Attributes:
        files: packet files read (or attempted).
        n_read: alerts kept.
        skipped: reason -> number of records skipped for it.
        problems: one line per skipped record or damaged block: "file#record: reason: detail".
    """

    files: list[str] = field(default_factory=list)
    n_read: int = 0
    skipped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def skip(self, where: str, err: PacketError, n: int = 1) -> None:
        self.skipped[err.reason] += n
        self.problems.append(f"{where}: {err}")

    def text(self) -> str:
        """One line: read, skipped, why."""
        why = ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items()))
        return (
            f"{self.n_read} alerts read from {len(self.files)} files; "
            f"{self.n_skipped} skipped" + (f" ({why})" if why else "")
        )


@dataclass
class Packets:
    """Alerts read from packets: stamps in the dataset layout and one array per field."""

    images: np.ndarray  # float32[N, 63, 63, 3] (ref, new, sub), NaN = masked or off-chip
    arrays: dict  # name -> 1-D array of length N (the developer set's metadata)
    summary: ReadSummary

    def __len__(self) -> int:
        return len(self.images)


# ------------------------------------------------------------------ finding and reading files


def find_packet_files(inputs, *, exclude=None) -> list[Path]:
    """The packet files named by folders, globs or paths, sorted, each once.

    `exclude` (the output file) is left out of what a folder or a glob finds, so that a
    command whose glob matches its own output can run again.

    Raises:
        FileNotFoundError: an input that names nothing (with the input as given).
        ValueError: a file that is neither .avro nor .parquet.
    """
    found = []
    for spec in [inputs] if isinstance(inputs, str | Path) else inputs:
        p = Path(spec).expanduser()
        if p.is_dir():
            hits = [q for q in p.rglob("*") if q.suffix.lower() in PACKET_SUFFIXES]
        elif p.is_file():
            hits = [p]
        elif glob.has_magic(str(spec)):
            hits = [Path(q) for q in glob.glob(str(p), recursive=True) if Path(q).is_file()]
        else:
            raise FileNotFoundError(f"{spec}: no such file, folder or matching glob")
        hits = [q for q in hits if q.is_file()]
        if exclude is not None and not p.is_file():
            hits = [q for q in hits if q.resolve() != Path(exclude).resolve()]
        if not hits:
            raise FileNotFoundError(f"{spec}: no .avro or .parquet alert files here")
        bad = [q for q in hits if q.suffix.lower() not in PACKET_SUFFIXES]
        if bad:
            raise ValueError(f"{bad[0]}: not an alert packet file; expected .avro or .parquet")
        found += [q.resolve() for q in hits]
    return sorted(set(found))


def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """An Avro zig-zag varint at `pos`: (value, next position)."""
    shift = acc = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise PacketError("unreadable avro", f"block header cut at byte {pos}")
        b = buf[pos]
        acc |= (b & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not b & 0x80:
            return (acc >> 1) ^ -(acc & 1), pos


def _avro_records(path: Path, summary: ReadSummary):
    """Yield (record index, record) from an Avro container, block by block.

    Each data block is decoded on its own (the header plus that block), so a damaged block
    costs its own records only; reading resumes at the next sync marker.
    """
    import fastavro

    data = path.read_bytes()
    if not data.startswith(_AVRO_MAGIC):
        summary.skip(f"{path}", PacketError("unreadable avro", "not an Avro container file"))
        return
    try:
        f = io.BytesIO(data)
        sync = fastavro.schemaless_reader(f, _AVRO_HEADER, None)["sync"]
        header = data[: f.tell()]
    except Exception as err:  # noqa: BLE001 - any decoding error means a damaged header
        summary.skip(f"{path}", PacketError("unreadable avro", f"header: {err}"))
        return
    pos, index = len(header), 0
    while pos < len(data):
        start, count = pos, None
        try:
            count, pos = _read_long(data, pos)
            size, pos = _read_long(data, pos)
            end = pos + size
            if count < 0 or size < 0 or data[end : end + 16] != sync:
                raise PacketError("unreadable avro", f"block at byte {start} is cut or damaged")
        except PacketError as err:
            n = count if count is not None and count > 0 else 1
            nxt = data.find(sync, start)
            tail = "; the rest of the file is lost" if nxt < 0 else ""
            summary.skip(
                f"{path}#{index}", PacketError(err.reason, f"{err}; {n} record(s){tail}"), n
            )
            if nxt < 0:
                return
            index, pos = index + n, nxt + 16
            continue
        got = 0
        try:
            for rec in fastavro.reader(io.BytesIO(header + data[start : end + 16])):
                yield index + got, rec
                got += 1
        except Exception as err:  # noqa: BLE001 - fastavro raises many types on bad bytes
            lost = max(count - got, 1)
            summary.skip(
                f"{path}#{index + got}",
                PacketError("unreadable avro", f"{type(err).__name__}: {err}; {lost} record(s)"),
                n=lost,
            )
        index += max(count, got)
        pos = end + 16


def _parquet_records(path: Path, summary: ReadSummary):
    """Yield (row index, row as a dict) from a Parquet file, one row group at a time."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError...
        summary.skip(f"{path}", PacketError("unreadable parquet", f"{type(err).__name__}: {err}"))
        return
    index = 0
    for g in range(pf.num_row_groups):
        try:
            rows = pf.read_row_group(g).to_pylist()
        except Exception as err:  # noqa: BLE001
            n = pf.metadata.row_group(g).num_rows
            summary.skip(
                f"{path}#{index}",
                PacketError("unreadable parquet", f"row group {g}: {err}; {n} record(s)"),
                n=n,
            )
            index += n
            continue
        for row in rows:
            yield index, row
            index += 1


# ------------------------------------------------------------------ one packet -> arrays


def read_packets(inputs, *, keep_blank: bool = False) -> Packets:
    """Read every alert of the packet files that `inputs` names (see `find_packet_files`).

    `keep_blank`: ZTF's blank value stays in the stamps instead of NaN (`packet_to_alert`).

    Damaged records are skipped, each reported in `summary.problems` and counted by reason.

    Raises:
        FileNotFoundError, ValueError: inputs that name no packet file.
    """
    summary = ReadSummary()
    stamps, rows, seen = [], [], {}
    for path in find_packet_files(inputs):
        summary.files.append(str(path))
        reader = _avro_records if path.suffix.lower() == ".avro" else _parquet_records
        for index, rec in reader(path, summary):
            where = f"{path}#{index}"
            try:
                if not isinstance(rec, dict):
                    raise PacketError("unreadable avro", f"record is {type(rec).__name__}")
                img, meta = packet_to_alert(rec, keep_blank=keep_blank)
                if meta["ids"] in seen:
                    raise PacketError(
                        "duplicate candid", f"{meta['ids']} already at {seen[meta['ids']]}"
                    )
            except PacketError as err:
                summary.skip(where, err)
                continue
            seen[meta["ids"]] = where
            meta["src"] = where
            stamps.append(img)
            rows.append(meta)
    summary.n_read = len(rows)
    return Packets(_stack(stamps), _columns(rows), summary)


def _stack(stamps) -> np.ndarray:
    if not stamps:
        return np.zeros((0, STAMP_SIZE, STAMP_SIZE, 3), np.float32)
    return np.stack(stamps).astype(np.float32)


def _columns(rows: list[dict]) -> dict:
    """Per-field arrays with the developer set's dtypes."""
    col = lambda k: [r[k] for r in rows]  # noqa: E731
    out = {"ids": np.array(col("ids"), dtype=str), "objectId": np.array(col("objectId"), str)}
    for k, dt in FLOAT_FIELDS.items():
        out[k] = np.array(col(k), dtype=dt)
    for k, dt in INT_FIELDS.items():
        out[k] = np.array(col(k), dtype=dt)
    for k in (*TEXT_FIELDS, "schemavsn", "diff_fileName", "src"):
        out[k] = np.array(col(k), dtype=str)
    for k in ("diff_is_ref_minus_sci", "sub_flipped", "padded"):
        out[k] = np.array(col(k), dtype=bool)
    out["n_sentinel"] = np.array(col("n_sentinel"), dtype=np.int32)
    out["n_nonstandard_fits"] = np.array(col("n_nonstandard_fits"), dtype=np.int8)
    out["weak_labels"] = weak_labels(out["ssdistnr"], out["ssmagnr"], out["magpsf"])
    out["labels"] = np.full(len(rows), -1, np.int8)  # no human labels in alert packets
    out["peer_scores"] = out["drb"].copy()
    return out


# ------------------------------------------------------------------ the alert file


def build_alert_file(inputs, output) -> ReadSummary:
    """Read packets and write them as one .npz in the developer-set layout (atomically).

    Raises:
        ValueError: the output is one of the inputs or a folder, or no alert could be read.
        FileNotFoundError: inputs that name no packet file, an output folder that does not
            exist (it is not created, as `python -m rbcore score` does not).
    """
    from rbcore.files import write_bytes_atomic

    output = Path(output).expanduser()
    if output.is_dir():
        raise ValueError(f"{output}: is a folder; expected the path of the .npz to write")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"{output.parent}: output folder does not exist")
    files = find_packet_files(inputs, exclude=output)
    if output.resolve() in files:
        raise ValueError(f"{output}: the output is one of the input packet files")
    packets = read_packets(files)
    if not len(packets):
        raise ValueError(
            f"no readable alert in {len(files)} input file(s); {packets.summary.text()}"
        )
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        images=packets.images,
        channel_order=np.array(
            ["ref(cutoutTemplate)", "new(cutoutScience)", "sub(cutoutDifference)"]
        ),
        n_packets_skipped=np.int64(packets.summary.n_skipped),  # why: on stderr
        **packets.arrays,
    )
    write_bytes_atomic(output, buf.getvalue())
    return packets.summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rbcore.ztf.packets", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--input", required=True, nargs="+",
                        help="folders, globs or files of .avro / .parquet ZTF alert packets")  # fmt: skip
    parser.add_argument("--output", required=True, help="the .npz to write (never an input)")
    parser.add_argument("--quiet", action="store_true", help="no per-packet problem lines")
    return parser


def main(argv=None) -> int:
    """Entry point of `python -m rbcore.ztf.packets`; returns the exit status (2 = bad input)."""
    args = build_parser().parse_args(argv)
    try:
        summary = build_alert_file(args.input, args.output)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"rbcore.ztf.packets: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: nothing is written before the final atomic rename
        print("rbcore.ztf.packets: interrupted; no output written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        for line in summary.problems:
            print(f"rbcore.ztf.packets: skipped {line}", file=sys.stderr)
    print(f"rbcore.ztf.packets: {summary.text()} -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    exit_with(main())
