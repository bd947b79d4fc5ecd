"""One ZTF alert packet -> stamps and metadata in the alert-file layout.

Cutouts: each stamp is gzip-compressed FITS (gzip is optional here); the image of its
first HDU with data is read as float32, without flipping (row 0 = FITS row 1, as astropy
gives it). Pixels with |x| >= `rbcore.ztf.SENTINEL_ABS` (ZTF's float32-lowest blank value)
become NaN, as `rbcore.ztf.load_alerts` does; the count per alert is `n_sentinel`.
A stamp cut at a chip edge (fewer than 63 rows or columns) is padded with NaN on the side
the chip ended, found from the candidate position (`xpos`, `ypos`, 1-based chip pixels): a
candidate within 31 pixels of the low edge lost its low side, otherwise the high side.

Sign of the difference: ZTF detects on both sci - ref (`isdiffpos` 't'/'1') and ref - sci
('f'/'0', a source that faded) and stores the cutout of the subtraction it detected on;
its file name says which (`..._scimref.fits.gz` / `..._refmsci.fits.gz`). The source is
therefore positive in the stored stamp either way, as in the developer set (all its 197
'f' alerts carry `refmsci` stamps whose centre lies above the background). `sub` is
negated only where the stored subtraction disagrees with `isdiffpos` (a `scimref` stamp for
an 'f' alert or the reverse), so the source is positive in `sub` for every alert; such
alerts have `sub_flipped` = True, and `diff_is_ref_minus_sci` describes `sub` as written.
"""

from __future__ import annotations

import io
import warnings
import zlib

import numpy as np

from rbcore.ztf.alerts import SENTINEL_ABS

# ZTF alert cutouts are 63x63 pixels around the candidate (ZTF alert schema, ztf-avro-alert;
# the shared developer set's README).
STAMP_SIZE = 63
# Channel order (ref, new, sub) of the dataset layout and the packet fields that fill it.
CUTOUT_FIELDS = ("cutoutTemplate", "cutoutScience", "cutoutDifference")
# Asteroid match of `weak_labels` (shared data README): a known solar-system object within
# 2" (`ssdistnr`, arcsec; -999 = none) and 1.5 mag (|ssmagnr - magpsf|).
SS_MATCH_ARCSEC = 2.0
SS_MATCH_DMAG = 1.5
# Candidate fields copied, with the dtypes of the developer set (missing or null -> NaN).
FLOAT_FIELDS = {
    "jd": np.float64, "ra": np.float64, "dec": np.float64, "magpsf": np.float32,
    "sigmapsf": np.float32, "rb": np.float32, "drb": np.float32, "ssdistnr": np.float32,
    "ssmagnr": np.float32, "sgscore1": np.float32, "distpsnr1": np.float32,
    "fwhm": np.float32, "elong": np.float32, "xpos": np.float32, "ypos": np.float32,
}  # fmt: skip
# Integer candidate fields (missing or null -> -1, which none of them takes in ZTF).
INT_FIELDS = {"fid": np.int8, "programid": np.int8, "nbad": np.int16, "ndethist": np.int32}
# Text candidate fields (missing or null -> "").
TEXT_FIELDS = ("isdiffpos", "rbversion", "drbversion")
# isdiffpos values: positive subtraction (sci - ref) or negative (ref - sci), ZTF schema.
POSITIVE, NEGATIVE = ("t", "1"), ("f", "0")
MISSING_INT = -1
PACKET_SUFFIXES = (".avro", ".parquet")
# Most bytes a gzipped stamp may inflate to, checked before it is inflated further (a gzip
# bomb). Our choice: a 63x63 float64 stamp with a long header is under 40 kB, 1 MiB is 25x
# that; the bomb (a 20000x20000 image in a 1.6 MB packet) inflates to 1.6 GB.
MAX_STAMP_BYTES = 1 << 20
# The Avro object container header (Avro 1.x specification, "Object Container Files").


class PacketError(ValueError):
    """One packet (record) cannot be used; `reason` is its category in the summary."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


# ------------------------------------------------------------------ one packet -> arrays


def _gunzip_capped(raw: bytes, name: str) -> bytes:
    """The gzip stream `raw` inflated, refused as soon as it passes `MAX_STAMP_BYTES`."""
    out, total = [], 0
    while raw:  # one gzip member after another, as gzip.decompress reads them
        d = zlib.decompressobj(wbits=31)
        out.append(d.decompress(raw, MAX_STAMP_BYTES + 1 - total))
        total += len(out[-1])
        if total > MAX_STAMP_BYTES:
            raise PacketError(
                "corrupt cutout",
                f"{name}: gzip stream inflates to more than {MAX_STAMP_BYTES} bytes (a 63x63 "
                "stamp needs under 40 kB); not inflated further",
            )
        if not d.eof:
            raise PacketError("corrupt cutout", f"{name}: gzip stream cut short")
        raw = d.unused_data
    return b"".join(out)


def _is_simple_card_warning(w) -> bool:
    from astropy.io.fits.verify import VerifyWarning

    return issubclass(w.category, VerifyWarning) and "SIMPLE card" in str(w.message)


def decode_stamp(cutout, name: str, nonstandard: list | None = None) -> np.ndarray:
    """The image of one cutout: float32[H, W] from {fileName, stampData} or raw bytes.

    The gzip stream is inflated up to `MAX_STAMP_BYTES` only. astropy's VerifyWarning about
    a SIMPLE card not in the standard's fixed format (real ZTF stamps have one) is silenced;
    `name` is appended to `nonstandard` (if given) for such a stamp, so it can be counted.

    Raises:
        PacketError: missing, not gzip/FITS, inflating past the bound, no 2-D image.
    """
    from astropy.io import fits

    raw = cutout.get("stampData") if isinstance(cutout, dict) else cutout
    if not isinstance(raw, bytes | bytearray) or not raw:
        raise PacketError("missing cutout", f"{name} has no stampData")
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = _gunzip_capped(bytes(raw), name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(io.BytesIO(raw), memmap=False) as hdus:
                img = next((h.data for h in hdus if h.data is not None), None)
                img = None if img is None else np.array(img, dtype=np.float32)
    except PacketError:
        raise
    except Exception as err:  # noqa: BLE001 - zlib and astropy raise many types
        raise PacketError("corrupt cutout", f"{name}: {type(err).__name__}: {err}") from err
    for w in caught:
        if not _is_simple_card_warning(w):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif nonstandard is not None and name not in nonstandard:
            nonstandard.append(name)
    if img is None or img.ndim != 2:
        shape = None if img is None else img.shape
        raise PacketError("wrong shape", f"{name}: expected a 2-D image, got {shape}")
    if np.isinf(img).any():
        raise PacketError("corrupt cutout", f"{name}: +-inf pixels (masked pixels are NaN)")
    return img


def pad_to_stamp(img: np.ndarray, xpos: float, ypos: float, name: str) -> tuple[np.ndarray, bool]:
    """A 63x63 stamp: as is, or a chip-edge cut padded with NaN on the chip's side.

    Args:
        img: float32[H, W], H, W <= 63; rows are y, columns x.
        xpos, ypos: candidate position on the chip, 1-based pixels (ZTF `xpos`, `ypos`).
        name: the cutout field, for messages.

    Returns:
        (float32[63, 63], padded).
    """
    half = STAMP_SIZE // 2
    if img.shape == (STAMP_SIZE, STAMP_SIZE):
        return img, False
    if any(n > STAMP_SIZE or n <= half for n in img.shape):
        raise PacketError(
            "wrong shape",
            f"{name}: {img.shape[0]}x{img.shape[1]}; expected {STAMP_SIZE}x{STAMP_SIZE} "
            f"or a chip-edge cut of it that still holds the centre",
        )
    pads = []
    for n, pos, axis in ((img.shape[0], ypos, "ypos"), (img.shape[1], xpos, "xpos")):
        miss = STAMP_SIZE - n
        if miss and not np.isfinite(pos):
            raise PacketError("wrong shape", f"{name}: chip-edge cut and no {axis} to place it")
        # the stamp spans round(pos) +- 31; it lost its low side when round(pos) - 31 < 1,
        # then 32 - round(pos) pixels (1 more or less: rounding of a position near .5)
        low = half + 1 - int(np.rint(pos)) if miss else 0
        if low > 0 and abs(low - miss) > 1:
            raise PacketError(
                "wrong shape",
                f"{name}: {n} of {STAMP_SIZE} pixels along {axis} = {pos:.1f}; a cut at the "
                f"chip's low edge keeps {STAMP_SIZE - low}",
            )
        pads.append((miss, 0) if low > 0 else (0, miss))
    return np.pad(img, pads, constant_values=np.nan), True


def _difference_is_ref_minus_sci(cutout) -> bool | None:
    """What the stored difference stamp is, from its file name; None if it does not say."""
    name = (cutout.get("fileName") or "") if isinstance(cutout, dict) else ""
    if "refmsci" in name:
        return True
    if "scimref" in name:
        return False
    return None


def packet_metadata(rec: dict) -> dict:
    """The ids and candidate fields of one alert record (see `FLOAT_FIELDS`...).

    Raises:
        PacketError: no candid/objectId, an unknown `isdiffpos`, a field of the wrong type.
    """
    cand = rec.get("candidate")
    cand = cand if isinstance(cand, dict) else rec  # flat exports: candidate fields on top
    candid, object_id = rec.get("candid", cand.get("candid")), rec.get("objectId")
    if candid is None or object_id is None or str(object_id).strip() == "" or candid == "":
        raise PacketError("missing id", "the packet has no candid or objectId (or an empty one)")
    flag = str(cand.get("isdiffpos") or "").lower()
    if flag not in POSITIVE + NEGATIVE:
        raise PacketError("bad isdiffpos", f"isdiffpos {cand.get('isdiffpos')!r}; expected t/f/1/0")
    meta = {"objectId": str(object_id), "schemavsn": str(rec.get("schemavsn") or "")}
    key = "candid"
    try:
        meta["ids"] = str(int(candid))
        for key in FLOAT_FIELDS:
            meta[key] = np.nan if cand.get(key) is None else float(cand[key])
        for key in INT_FIELDS:
            meta[key] = MISSING_INT if cand.get(key) is None else int(cand[key])
    except (TypeError, ValueError) as err:
        raise PacketError("bad field", f"{key} = {cand.get(key, candid)!r}: {err}") from err
    meta.update({k: str(cand.get(k) or "") for k in TEXT_FIELDS}, isdiffpos=flag)
    return meta


def packet_to_alert(rec: dict, *, keep_blank: bool = False) -> tuple[np.ndarray, dict]:
    """One alert record (Avro/Parquet row) -> (float32[63, 63, 3] stamps, metadata).

    `keep_blank` keeps ZTF's blank value in the stamps instead of NaN (`n_sentinel` still
    counts it): braai's input recipe needs it (`rbcore.ztf.braai`).

    Raises:
        PacketError: naming the field and what was expected.
    """
    meta = packet_metadata(rec)
    stamps, padded, nonstandard = [], False, []
    for name in CUTOUT_FIELDS:
        img = decode_stamp(rec.get(name), name, nonstandard)
        img, pad = pad_to_stamp(img, meta["xpos"], meta["ypos"], name)
        stamps.append(img)
        padded |= pad
    images = np.stack(stamps, axis=-1)
    with np.errstate(invalid="ignore"):
        sentinel = np.abs(images) >= SENTINEL_ABS  # NaN compares False
    if not keep_blank:
        images[sentinel] = np.nan
    want = meta["isdiffpos"] in NEGATIVE  # the source is positive in ref - sci then
    diff = rec["cutoutDifference"]
    stored = _difference_is_ref_minus_sci(diff)
    flip = stored is not None and stored != want
    if flip:
        images[..., 2] = -images[..., 2]
    meta.update(
        diff_fileName=str(diff.get("fileName") or "") if isinstance(diff, dict) else "",
        diff_is_ref_minus_sci=want,
        sub_flipped=flip,
        padded=padded,
        n_sentinel=int(sentinel.sum()),
        n_nonstandard_fits=len(nonstandard),
    )
    return images, meta


def weak_labels(ssdistnr, ssmagnr, magpsf) -> np.ndarray:
    """1 where a known solar-system object lies < 2" away within 1.5 mag, else -1 (int8)."""
    d, m = np.asarray(ssdistnr, np.float64), np.asarray(ssmagnr, np.float64)
    with np.errstate(invalid="ignore"):
        hit = (d >= 0) & (d < SS_MATCH_ARCSEC) & (np.abs(m - np.asarray(magpsf)) < SS_MATCH_DMAG)
    return np.where(hit, 1, -1).astype(np.int8)
