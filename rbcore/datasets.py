"""The data layer: the published Tomo-e real/bogus layout, read lazily and validated.

Layout (Takahashi et al. 2022, PASJ 74, 946; Zenodo 10.5281/zenodo.6691804), which the
simulator (`rbcore.simulation`) also writes:

- training: ``images{d}.npy`` float32 [N, 29, 29, 3] (ref, new, sub) and ``params{d}.csv``
  (one row per image, column ``object_type`` in {artifact, rand_artificial_real,
  galx_artificial_real}) per detector d;
- test: a real and a bogus ``.npy`` (names are parameters), with ``<stem>_params.csv`` when
  the simulator wrote them (truth columns).

Images are memory-mapped, so millions of cutouts need not fit in memory. NaN pixels (masked)
are allowed, counted on request and never changed on disk. Also: the dihedral (8
rotations/flips) augmentation; FITS triplet I/O lives in `rbcore.fits` (re-exported here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.fits import read_fits_triplets as read_fits_triplets
from rbcore.fits import write_fits_triplets as write_fits_triplets
from rbcore.model import IMAGE_SHAPE

OBJECT_TYPES = {"artifact": 0, "rand_artificial_real": 1, "galx_artificial_real": 1}
TRUTH_COLUMNS = ("category", "is_real_true", "label_is_wrong", "mag", "snr", "seeing_new", "night")
NUMERIC_TRUTH = tuple(c for c in TRUTH_COLUMNS if c != "category")
RESERVED_COLUMNS = ("id",)  # numbered by the loaders: a column of that name would be lost
# Case-insensitive, so that images0.NPY is paired with params0.csv rather than skipped.
_IMAGES_RE = re.compile(r"^images(\d+)\.npy$", re.IGNORECASE)
_PARAMS_RE = re.compile(r"^params(\d+)\.csv$", re.IGNORECASE)


class LazyImages:
    """Concatenation of memory-mapped [N_i, 29, 29, 3] arrays, read on indexing.

    ``images[idx]`` with an int, a slice, an int array (any order, repeats allowed) or a bool
    mask returns float32[len(idx), 29, 29, 3] in the requested order.
    """

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays
        self.offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *IMAGE_SHAPE)

    dtype = np.dtype(np.float32)

    def __getitem__(self, idx) -> np.ndarray:
        if isinstance(idx, (int, np.integer)):
            return self[np.array([idx])][0]
        if isinstance(idx, slice):
            idx = np.arange(len(self))[idx]
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean index of shape {idx.shape} for {len(self)} images")
            idx = np.flatnonzero(idx)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise IndexError(f"images must be indexed by integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64).ravel()
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} images")
        idx = np.where(idx < 0, idx + len(self), idx)
        out = np.empty((len(idx), *IMAGE_SHAPE), np.float32)
        file_of = np.searchsorted(self.offsets, idx, side="right") - 1
        for f in np.unique(file_of):
            pos = np.flatnonzero(file_of == f)
            local = idx[pos] - self.offsets[f]
            order = np.argsort(local, kind="stable")  # sorted reads are sequential on disk
            out[pos[order]] = self.arrays[f][local[order]]
        return out

    def __array__(self, dtype=None, copy=None):
        arr = self[np.arange(len(self))]
        return arr if dtype is None else arr.astype(dtype)

    def locate(self, row: int) -> str:
        """'<file>: triplet <row in that file>' of a row, for error messages."""
        f = int(np.searchsorted(self.offsets, row, side="right") - 1)
        return locate_row(self.arrays[f], int(row - self.offsets[f]))


class Subset:
    """Lazy view `images[index]` that indexes like the full image set (by int arrays).

    Args:
        images: anything indexable by an int array (e.g. `TrainingSet.images`).
        index: int[M] rows of `images` in this view.
    """

    def __init__(self, images, index):
        self.images, self.index = images, np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.index.size)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *tuple(np.shape(self.images[self.index[:1]]))[1:])

    def locate(self, row: int) -> str:
        """Where a row of this view comes from, for error messages."""
        return locate_row(self.images, int(self.index[row]))

    def __getitem__(self, idx):
        sel = self.index[np.asarray(idx)]
        order = np.argsort(sel, kind="stable")  # sorted reads are fast on memory maps
        out = np.asarray(self.images[sel[order]])
        res = np.empty_like(out)
        res[order] = out
        return res


def locate_row(images, row: int) -> str:
    """'<file>: triplet <row>' for a row of `images` (a LazyImages, Subset or memory map),
    'triplet <row>' for an array in memory."""
    if hasattr(images, "locate"):
        return images.locate(row)
    name = getattr(images, "filename", None)  # np.memmap
    return f"{name}: triplet {row}" if name else f"triplet {row}"


def count_nan_pixels(images, chunk: int = 16384) -> int:
    """Number of NaN pixels, read in chunks (the data are not modified)."""
    return int(
        sum(
            np.isnan(images[np.arange(s, min(s + chunk, len(images)))]).sum()
            for s in range(0, len(images), chunk)
        )
    )


def _open_npy(path: Path) -> np.ndarray:
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes); expected a .npy array [N, 29, 29, 3]")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from err
    if arr.ndim != 4 or arr.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{path}: expected images of shape (N, 29, 29, 3), got {arr.shape}")
    if arr.dtype != np.float32:
        raise ValueError(f"{path}: expected dtype float32, got {arr.dtype}")
    return arr


def read_csv_table(path) -> pd.DataFrame:
    """A CSV table, or a ValueError naming the file when it is empty or not a table."""
    path = Path(path)
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{path}: empty file; expected a CSV table with a header line") from err
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        text = " ".join(str(err).split())
        raise ValueError(f"{path}: not a readable CSV table ({text})") from err


def _check_params(path: Path, table: pd.DataFrame) -> None:
    """Refuse reserved column names and non-numeric truth values, naming the file."""
    for c in RESERVED_COLUMNS:
        if c in table.columns:
            raise ValueError(
                f"{path}: has a column {c!r}, which rbcore fills itself (row numbers); "
                "rename it (e.g. to 'candidate_id')"
            )
    for c in NUMERIC_TRUTH:
        if c in table.columns and not pd.api.types.is_numeric_dtype(table[c]):
            bad = pd.to_numeric(table[c], errors="coerce").isna() & table[c].notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
            raise ValueError(
                f"{path}: column {c!r} must be numeric, row {row} holds {table[c].iloc[row]!r}"
            )


def _has_truth(paths: list[Path], tables: list[pd.DataFrame]) -> bool:
    """Whether every table carries the truth columns; a mix is an error naming the file."""
    have = [[c for c in TRUTH_COLUMNS if c in t.columns] for t in tables]
    full = [len(h) == len(TRUTH_COLUMNS) for h in have]
    if any(full):
        for path, h in zip(paths, have, strict=True):
            if len(h) != len(TRUTH_COLUMNS):
                missing = [c for c in TRUTH_COLUMNS if c not in h]
                absent = "" if path.exists() else " (no such file)"
                raise ValueError(
                    f"{path}{absent}: missing truth columns {missing} that the other files of "
                    "this set carry"
                )
    return bool(full) and all(full)


def _layout_files(d: Path, pattern: re.Pattern) -> dict[int, Path]:
    """{detector id: file} of the files matching `pattern`; two files for one id are an error."""
    out: dict[int, Path] = {}
    for name in sorted(p.name for p in d.iterdir()):
        if m := pattern.match(name):
            det = int(m.group(1))
            if det in out:
                raise ValueError(f"{out[det]} and {d / name} both name detector {det}")
            out[det] = d / name
    return out


@dataclass
class TrainingSet:
    """A training set: `params` (one row per image, with `id`, `detector_id`, `label`),
    lazy `images`, and `has_truth` (the simulator's truth columns are present)."""

    params: pd.DataFrame
    images: LazyImages
    has_truth: bool
    data_dir: Path

    @property
    def labels(self) -> np.ndarray:
        return self.params["label"].to_numpy(np.int64)

    def __len__(self) -> int:
        return len(self.params)


def load_training(data_dir) -> TrainingSet:
    """Read a training set in the Tomo-e layout (simulated or the Zenodo data).

    Args:
        data_dir: folder with images{d}.npy / params{d}.csv pairs.

    Returns:
        TrainingSet with detectors concatenated in ascending id order; params gains `id`
        (0..N-1), `detector_id` (from the file name) and `label` (0 artifact, 1 real).

    Raises:
        FileNotFoundError: no folder, no pairs, or a .npy without its .csv (or vice versa).
        ValueError: wrong shape/dtype, an empty or unreadable file, row counts that differ,
            a missing `object_type` column or an unknown object_type, a column named `id`,
            non-numeric truth values, truth columns in some files only, or two files for one
            detector (images01.npy beside images1.npy); each message names the file.
    """
    d = Path(data_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"training data folder {d} does not exist")
    npys = _layout_files(d, _IMAGES_RE)
    csvs = _layout_files(d, _PARAMS_RE)
    if not npys and not csvs:
        raise FileNotFoundError(f"{d}: no images{{d}}.npy / params{{d}}.csv files")
    for det in sorted(set(npys) - set(csvs)):
        raise FileNotFoundError(f"{npys[det]} has no matching {d / f'params{det}.csv'}")
    for det in sorted(set(csvs) - set(npys)):
        raise FileNotFoundError(f"{csvs[det]} has no matching {d / f'images{det}.npy'}")
    arrays, tables = [], []
    for det in sorted(npys):
        arr = _open_npy(npys[det])
        table = read_csv_table(csvs[det])
        _check_params(csvs[det], table)
        if "object_type" not in table.columns:
            raise ValueError(
                f"{csvs[det]}: missing column 'object_type' (columns: {list(table.columns)})"
            )
        if len(table) != len(arr):
            raise ValueError(
                f"{csvs[det]} has {len(table)} rows but {npys[det]} has {len(arr)} images"
            )
        unknown = sorted(set(table["object_type"].astype(str)) - set(OBJECT_TYPES))
        if unknown:
            raise ValueError(
                f"{csvs[det]}: unknown object_type {unknown}; expected one of {sorted(OBJECT_TYPES)}"
            )
        if "detector_id" in table.columns and (table["detector_id"] != det).any():
            raise ValueError(
                f"{csvs[det]}: column detector_id disagrees with the file name ({det})"
            )
        table["detector_id"] = det
        arrays.append(arr)
        tables.append(table)
    params = pd.concat(tables, ignore_index=True)
    params.insert(0, "id", np.arange(len(params)))
    params["label"] = params["object_type"].map(OBJECT_TYPES).astype(np.int64)
    has_truth = _has_truth([csvs[det] for det in sorted(npys)], tables)
    return TrainingSet(params=params, images=LazyImages(arrays), has_truth=has_truth, data_dir=d)


@dataclass
class TestSet:
    """A test set: lazy `images` (real first, then bogus), `labels` (1 real, 0 bogus),
    `params` (truth columns when the simulator wrote them), `has_truth`."""

    images: LazyImages
    labels: np.ndarray
    params: pd.DataFrame
    has_truth: bool

    def __len__(self) -> int:
        return len(self.labels)


def load_test(
    data_dir, real_name: str = "test_real.npy", bogus_name: str = "test_bogus.npy"
) -> TestSet:
    """Read a test set: a real and a bogus .npy (+ optional ``<stem>_params.csv``).

    Args:
        data_dir: folder holding the two files.
        real_name, bogus_name: file names of the real and bogus cutouts.

    Returns:
        TestSet; params has `id`, `label`, `source` (file name) and any truth columns.

    Raises:
        FileNotFoundError: a file is missing. ValueError: shape/dtype or row-count mismatch.
    """
    d = Path(data_dir)
    arrays, tables, csvs = [], [], []
    for name, label in ((real_name, 1), (bogus_name, 0)):
        path = d / name
        if not path.exists():
            raise FileNotFoundError(f"test file {path} does not exist")
        arr = _open_npy(path)
        csv = d / f"{path.stem}_params.csv"
        table = read_csv_table(csv) if csv.exists() else pd.DataFrame(index=range(len(arr)))
        _check_params(csv, table)
        if len(table) != len(arr):
            raise ValueError(f"{csv} has {len(table)} rows but {path} has {len(arr)} images")
        table["label"] = label
        table["source"] = name
        arrays.append(arr)
        tables.append(table)
        csvs.append(csv)
    params = pd.concat(tables, ignore_index=True)
    params.insert(0, "id", np.arange(len(params)))
    has_truth = _has_truth(csvs, tables)
    return TestSet(LazyImages(arrays), params["label"].to_numpy(np.int64), params, has_truth)


# --------------------------------------------------------------------------- augmentation
def dihedral_transform(images: np.ndarray, k) -> np.ndarray:
    """Apply dihedral transform k in 0..7 (k % 4 quarter turns, then a flip if k >= 4).

    Args:
        images: float[N, H, W, C] (square H = W); k: int or int[N].

    Returns:
        float[N, H, W, C].
    """
    images = np.asarray(images)
    k = np.broadcast_to(np.asarray(k), (len(images),))
    out = np.empty_like(images)
    for t in range(8):
        sel = np.flatnonzero(k == t)
        if sel.size:
            x = np.rot90(images[sel], t % 4, axes=(1, 2))
            out[sel] = x[:, :, ::-1] if t >= 4 else x
    return out


def dihedral_inverse(images: np.ndarray, k) -> np.ndarray:
    """Undo `dihedral_transform(., k)`."""
    k = np.broadcast_to(np.asarray(k), (len(images),))
    inv = np.where(k >= 4, k, (4 - k % 4) % 4)  # flips are their own inverses
    return dihedral_transform(images, inv)


def dihedral_augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random one of the 8 rotations/flips per cutout (off by default in training).

    Notes:
        The sky has no preferred orientation; ref, new and sub are transformed together.
    """
    return dihedral_transform(images, rng.integers(0, 8, len(images)))


def detector_validation_split(
    detector_ids, labels, *, fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole detectors of the training data as the validation split.

    Args:
        detector_ids: int[N] detector of each training sample (Tomo-e has 84).
        labels: int[N] 0/1 labels (the split must hold both classes).
        fraction: target share of samples held out; detectors are drawn in a seeded random
            order until at least this share is reached (at least one detector, never all).
        seed: the draw's seed.

    Returns:
        (train_idx, val_idx): sorted int64 arrays partitioning 0..N-1.

    Notes:
        Whole detectors, so that no detector's artifacts are both trained on and validated
        on; from the training data, never the test set (our choice, issue 4).
    """
    det = np.asarray(detector_ids)
    labels = np.asarray(labels)
    if det.shape != labels.shape or det.ndim != 1:
        raise ValueError(f"detector_ids {det.shape} and labels {labels.shape} must be [N] alike")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    unique = np.unique(det)
    if len(unique) < 2:
        raise ValueError(f"need at least 2 detectors to hold one out, got {unique.tolist()}")
    order = np.random.default_rng(seed).permutation(unique)
    counts = np.array([np.sum(det == d) for d in order])
    n_take = int(np.searchsorted(np.cumsum(counts), fraction * len(det)) + 1)
    n_take = min(max(n_take, 1), len(unique) - 1)
    is_val = np.isin(det, order[:n_take])
    for name, part in (("validation", is_val), ("training", ~is_val)):
        if len(np.unique(labels[part])) < 2:
            raise ValueError(
                f"the {name} part of the detector split (seed {seed}) holds one class only"
            )
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
