"""FITS files of cutout triplets, for cutouts from other pipelines.

A triplet file holds three image extensions REF, NEW and SUB, each a cube [N, H, W], and an
optional binary table META with one row per triplet (ids, magnitudes...). Files are written
with FITS checksums (CHECKSUM/DATASUM), and reading verifies them when present, so a damaged
file is refused instead of read as other pixels. Reading also refuses a truncated file, a
damaged gzip stream and an extension name that appears twice, each with one message naming
the file. Extension names are matched in any case (`ref` is REF), as astropy's own lookup
matches them.
"""

from __future__ import annotations

import gzip
import io
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

CHANNEL_EXT = ("REF", "NEW", "SUB")
META_EXT = "META"
# astropy reports these damages as warnings and reads on; here each is an error.
_DAMAGE_WARNINGS = ("truncated", "extra bytes", "verification failed", "not multiple of 2880")


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
    for ch, name in enumerate(CHANNEL_EXT):
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
        hdus.append(fits.BinTableHDU(Table.from_pandas(t), name=META_EXT))
    fits.HDUList(hdus).writeto(path, overwrite=overwrite, checksum=True)


def _file_bytes(p: Path) -> bytes:
    """The file's bytes, decompressed (checking the gzip CRC) when gzipped."""
    data = p.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{p}: damaged gzip stream ({err})") from err
    return data


def _damage(caught) -> str | None:
    """The first of astropy's damage warnings among `caught`, as one line."""
    for w in caught:
        text = " ".join(str(w.message).split())
        if any(k in text for k in _DAMAGE_WARNINGS):
            return text
    return None


def _open_checked(p: Path, data: bytes):
    """All HDUs of the FITS bytes, read now; astropy's damage warnings become errors."""
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyUserWarning)
        try:
            hdul = fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False, checksum=True)
            for h in hdul:
                _ = h.data  # read every extension now, so damage shows here
        except Exception as err:  # astropy raises many types on damaged files
            what = _damage(caught) or f"{type(err).__name__}: {err}"
            kind = "damaged or truncated" if data[:6] == b"SIMPLE" else "not a readable"
            raise ValueError(f"{p}: {kind} FITS file ({what})") from err
    if (what := _damage(caught)) is not None:
        hdul.close()
        raise ValueError(f"{p}: damaged FITS file ({what})")
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return hdul


def _channel(p: Path, hdul, names: list[str], name: str) -> np.ndarray:
    """Extension `name` (in any case, as astropy looks names up) as float32[N, H, W]."""
    upper = [n.upper() for n in names]
    if name not in upper:
        raise ValueError(f"{p}: missing image extension {name!r} (found {names})")
    if upper.count(name) > 1:
        raise ValueError(f"{p}: extension {name!r} appears {upper.count(name)} times; expected one")
    data = hdul[upper.index(name)].data
    if data is None or data.ndim != 3:
        shape = None if data is None else data.shape
        raise ValueError(f"{p}[{name}]: expected an image cube [N, H, W], got {shape}")
    if data.dtype.itemsize > 4 or data.dtype.kind != "f":  # float64, integers: check the range
        from rbcore.preprocess import as_pixels

        return as_pixels(data, lambda i: f"{p}[{name}]: triplet {i}")
    return np.asarray(data, np.float32)


def read_fits_triplets(path) -> tuple[np.ndarray, pd.DataFrame | None]:
    """Read triplets written by `write_fits_triplets` (or any file with REF/NEW/SUB cubes).

    Returns:
        images float32[N, H, W, 3]; the META table as a DataFrame, or None.

    Raises:
        FileNotFoundError, or ValueError naming the file and what is wrong: not FITS,
        truncated, a failed checksum or gzip check, an extension missing, repeated or of the
        wrong shape.
    """
    from astropy.table import Table

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"FITS file {p} does not exist")
    with _open_checked(p, _file_bytes(p)) as hdul:
        names = [h.name for h in hdul]
        chans = [_channel(p, hdul, names, name) for name in CHANNEL_EXT]
        if len({c.shape for c in chans}) != 1:
            raise ValueError(f"{p}: REF/NEW/SUB shapes differ: {[c.shape for c in chans]}")
        table = None
        upper = [n.upper() for n in names]
        if META_EXT in upper:
            if upper.count(META_EXT) > 1:
                raise ValueError(f"{p}: extension 'META' appears {upper.count(META_EXT)} times")
            table = Table.read(hdul[upper.index(META_EXT)]).to_pandas()
            if len(table) != len(chans[0]):
                raise ValueError(f"{p}[META]: {len(table)} rows for {len(chans[0])} triplets")
    return np.stack(chans, axis=-1), table
