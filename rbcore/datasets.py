"""The data layer: the published Tomo-e real/bogus layout, read lazily and validated.

Layout (Takahashi et al. 2022, PASJ 74, 946; Zenodo 10.5281/zenodo.6691804), which the
simulator (`rbcore.simulation`) also writes:

- training: ``images{d}.npy`` float32 [N, 29, 29, 3] (ref, new, sub) and ``params{d}.csv``
  (one row per image, column ``object_type`` in {artifact, rand_artificial_real,
  galx_artificial_real}) per detector d;
- test: a real and a bogus ``.npy`` (names are parameters), with ``<stem>_params.csv`` when
  the simulator wrote them (truth columns).

Images are memory-mapped, so millions of cutouts need not fit in memory. NaN pixels (masked)
are allowed, counted on request and never changed on disk. Also: FITS triplet I/O for
cutouts from other pipelines, and the dihedral (8 rotations/flips) augmentation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

IMAGE_SHAPE = (29, 29, 3)  # the published cutouts: 29x29 pixels, channels (ref, new, sub)
OBJECT_TYPES = {"artifact": 0, "rand_artificial_real": 1, "galx_artificial_real": 1}
TRUTH_COLUMNS = ("category", "is_real_true", "label_is_wrong", "mag", "snr", "seeing_new", "night")
_IMAGES_RE = re.compile(r"^images(\d+)\.npy$")
_PARAMS_RE = re.compile(r"^params(\d+)\.csv$")


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


def count_nan_pixels(images, chunk: int = 16384) -> int:
    """Number of NaN pixels, read in chunks (the data are not modified)."""
    return int(
        sum(
            np.isnan(images[np.arange(s, min(s + chunk, len(images)))]).sum()
            for s in range(0, len(images), chunk)
        )
    )


def _open_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from err
    if arr.ndim != 4 or arr.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{path}: expected images of shape (N, 29, 29, 3), got {arr.shape}")
    if arr.dtype != np.float32:
        raise ValueError(f"{path}: expected dtype float32, got {arr.dtype}")
    return arr


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
        ValueError: wrong shape/dtype, row counts that differ, a missing `object_type`
            column or an unknown object_type (each message names the file).
    """
    d = Path(data_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"training data folder {d} does not exist")
    npys = {
        int(m.group(1)): d / f
        for f in sorted(p.name for p in d.iterdir())
        if (m := _IMAGES_RE.match(f))
    }
    csvs = {
        int(m.group(1)): d / f
        for f in sorted(p.name for p in d.iterdir())
        if (m := _PARAMS_RE.match(f))
    }
    if not npys and not csvs:
        raise FileNotFoundError(f"{d}: no images{{d}}.npy / params{{d}}.csv files")
    for det in sorted(set(npys) - set(csvs)):
        raise FileNotFoundError(f"{npys[det]} has no matching {d / f'params{det}.csv'}")
    for det in sorted(set(csvs) - set(npys)):
        raise FileNotFoundError(f"{csvs[det]} has no matching {d / f'images{det}.npy'}")
    arrays, tables = [], []
    for det in sorted(npys):
        arr = _open_npy(npys[det])
        table = pd.read_csv(csvs[det])
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
    has_truth = all(c in params.columns for c in TRUTH_COLUMNS)
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
    arrays, tables = [], []
    for name, label in ((real_name, 1), (bogus_name, 0)):
        path = d / name
        if not path.exists():
            raise FileNotFoundError(f"test file {path} does not exist")
        arr = _open_npy(path)
        csv = d / f"{path.stem}_params.csv"
        table = pd.read_csv(csv) if csv.exists() else pd.DataFrame(index=range(len(arr)))
        if len(table) != len(arr):
            raise ValueError(f"{csv} has {len(table)} rows but {path} has {len(arr)} images")
        table["label"] = label
        table["source"] = name
        arrays.append(arr)
        tables.append(table)
    params = pd.concat(tables, ignore_index=True)
    params.insert(0, "id", np.arange(len(params)))
    has_truth = all(c in params.columns for c in TRUTH_COLUMNS)
    return TestSet(LazyImages(arrays), params["label"].to_numpy(np.int64), params, has_truth)


# --------------------------------------------------------------------------- FITS triplets
_CHANNEL_EXT = ("REF", "NEW", "SUB")


def write_fits_triplets(
    path, images: np.ndarray, table: pd.DataFrame | None = None, *, overwrite: bool = False
) -> None:
    """Write triplets as a FITS file: REF, NEW, SUB image extensions [N, 29, 29] + META table.

    Args:
        path: output .fits path.
        images: float[N, H, W, 3] (ref, new, sub); NaN allowed.
        table: optional metadata, one row per triplet (written as a binary table "META").
        overwrite: replace an existing file.
    """
    from astropy.io import fits
    from astropy.table import Table

    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"write_fits_triplets({path}): images must be [N, H, W, 3], got {images.shape}"
        )
    hdus = [fits.PrimaryHDU()]
    hdus[0].header["NTRIPLET"] = (len(images), "number of cutout triplets")
    for ch, name in enumerate(_CHANNEL_EXT):
        hdus.append(fits.ImageHDU(np.ascontiguousarray(images[..., ch]), name=name))
    if table is not None:
        if len(table) != len(images):
            raise ValueError(
                f"write_fits_triplets({path}): table has {len(table)} rows for {len(images)} images"
            )
        t = table.copy()
        for c in t.columns:
            if t[c].dtype == object:
                t[c] = t[c].astype(str)
        hdus.append(fits.BinTableHDU(Table.from_pandas(t), name="META"))
    fits.HDUList(hdus).writeto(path, overwrite=overwrite)


def read_fits_triplets(path) -> tuple[np.ndarray, pd.DataFrame | None]:
    """Read triplets written by `write_fits_triplets` (or any file with REF/NEW/SUB cubes).

    Returns:
        images float32[N, H, W, 3]; the META table as a DataFrame, or None.

    Raises:
        FileNotFoundError, or ValueError naming the file and extension that is missing or
        has the wrong shape.
    """
    from astropy.io import fits
    from astropy.table import Table

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"FITS file {p} does not exist")
    try:
        hdul = fits.open(p, memmap=False)
    except OSError as err:
        raise ValueError(f"{p}: not a readable FITS file ({err})") from err
    with hdul:
        names = [h.name for h in hdul]
        chans = []
        for name in _CHANNEL_EXT:
            if name not in names:
                raise ValueError(f"{p}: missing image extension {name!r} (found {names})")
            data = hdul[name].data
            if data is None or data.ndim != 3:
                shape = None if data is None else data.shape
                raise ValueError(f"{p}[{name}]: expected an image cube [N, H, W], got {shape}")
            chans.append(np.asarray(data, np.float32))
        if len({c.shape for c in chans}) != 1:
            raise ValueError(f"{p}: REF/NEW/SUB shapes differ: {[c.shape for c in chans]}")
        table = None
        if "META" in names:
            table = Table.read(hdul["META"]).to_pandas()
            if len(table) != len(chans[0]):
                raise ValueError(f"{p}[META]: {len(table)} rows for {len(chans[0])} triplets")
    return np.stack(chans, axis=-1), table


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


# --------------------------------------------------------------------------- summaries
def examples_per_group(
    params: pd.DataFrame, by: str, n: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Up to n random row positions per value of column `by` (for galleries).

    Returns:
        dict value -> int array of row positions (sorted by value name).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for key, rows in sorted(params.groupby(by).indices.items(), key=lambda kv: str(kv[0])):
        out[str(key)] = np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))
    return out


def label_noise_summary(params: pd.DataFrame) -> dict:
    """Measured label noise of a training table with truth columns (issue 12).

    Args:
        params: training params with label, is_real_true, label_is_wrong and noise_cause (the
            cause of each wrong label, "" where the label is right).

    Returns:
        dict with label_noise_rate_real (wrong among real labels), label_noise_rate_bogus
        (wrong among bogus labels), n_wrong_real, n_wrong_bogus and wrong_by_cause_real,
        wrong_by_cause_bogus (counts per cause).
    """
    missing = {"label", "is_real_true", "label_is_wrong", "noise_cause"} - set(params.columns)
    if missing:
        raise ValueError(f"label_noise_summary: params lack truth columns {sorted(missing)}")
    wrong = params["label"].to_numpy() != params["is_real_true"].to_numpy()
    if (wrong != params["label_is_wrong"].astype(bool).to_numpy()).any():
        raise ValueError("label_noise_summary: label_is_wrong disagrees with label != is_real_true")
    out: dict = {}
    for lab, name in ((1, "real"), (0, "bogus")):
        part = params[params["label"] == lab]
        bad = part[part["label_is_wrong"] == 1]
        out[f"label_noise_rate_{name}"] = float(len(bad) / len(part)) if len(part) else None
        out[f"n_wrong_{name}"] = int(len(bad))
        causes = bad["noise_cause"].fillna("").astype(str)
        out[f"wrong_by_cause_{name}"] = {k: int(v) for k, v in causes.value_counts().items()}
    return out


def dataset_summary(train: TrainingSet, test: TestSet | None = None) -> dict:
    """Counts and rates of a training (and test) set, JSON-ready.

    Returns:
        dict with n, labels, counts per object_type, per detector (train); per category and
        label, label-noise rates (`label_noise_summary`, also label_noise_rate_real/_bogus at
        the top level) and NaN-pixel counts when truth columns exist; the same for
        the test set (real, bogus, prevalence).
    """
    p = train.params
    s: dict = {
        "train": {
            "n": len(p),
            "n_detectors": int(p["detector_id"].nunique()),
            "n_label_real": int(p["label"].sum()),
            "n_label_bogus": int((p["label"] == 0).sum()),
            "object_type": {k: int(v) for k, v in p["object_type"].value_counts().items()},
            "nan_pixels": count_nan_pixels(train.images),
            "has_truth": train.has_truth,
        }
    }
    if train.has_truth:
        t = s["train"]
        t["category_by_label"] = {
            f"{c}|{lab}": int(v) for (c, lab), v in p.groupby(["category", "label"]).size().items()
        }
        for lab, name in ((1, "real"), (0, "bogus")):
            part = p[p["label"] == lab]
            t[f"label_noise_{name}"] = float(part["label_is_wrong"].mean()) if len(part) else None
            t[f"n_wrong_{name}"] = int(part["label_is_wrong"].sum())
        causes = p.loc[p["label_is_wrong"] == 1, "noise_cause"].fillna("").astype(str)
        t["wrong_by_cause"] = {k: int(v) for k, v in causes.value_counts().items()}
        t.update(label_noise_summary(p))  # label_noise_rate_real/_bogus, causes (issue 12)
        for k in ("label_noise_rate_real", "label_noise_rate_bogus"):
            s[k] = t[k]  # top level too: issue 12's checks read them from summary.json
    if test is not None:
        q = test.params
        s["test"] = {
            "n": len(test),
            "n_real": int(test.labels.sum()),
            "n_bogus": int((test.labels == 0).sum()),
            "bogus_per_real": float((test.labels == 0).sum() / max(test.labels.sum(), 1)),
            "nan_pixels": count_nan_pixels(test.images),
            "has_truth": test.has_truth,
        }
        if test.has_truth:
            s["test"]["category"] = {k: int(v) for k, v in q["category"].value_counts().items()}
            s["test"]["n_label_wrong"] = int(q["label_is_wrong"].sum())
    return s
