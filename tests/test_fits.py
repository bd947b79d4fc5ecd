"""Tests of rbcore.fits: FITS triplet files, and one clear error for each kind of damage."""

import gzip

import numpy as np
import pandas as pd
import pytest

from rbcore.fits import read_fits_triplets, write_fits_triplets


def test_fits_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(5, 29, 29, 3)).astype(np.float32)
    images[0, :3, :3, 0] = np.nan
    table = pd.DataFrame(
        {"id": np.arange(5), "category": list("abcde"), "mag": rng.uniform(14, 18, 5)}
    )
    path = tmp_path / "t.fits"
    write_fits_triplets(path, images, table)
    got, meta = read_fits_triplets(path)
    assert got.dtype == np.float32 and np.array_equal(got, images, equal_nan=True)
    assert list(meta["category"]) == list("abcde")
    np.testing.assert_allclose(meta["mag"], table["mag"])
    with pytest.raises(OSError):
        write_fits_triplets(path, images)  # no silent overwrite
    write_fits_triplets(tmp_path / "notable.fits", images)
    assert read_fits_triplets(tmp_path / "notable.fits")[1] is None
    (tmp_path / "t.fits.gz").write_bytes(gzip.compress(path.read_bytes()))
    got, meta = read_fits_triplets(tmp_path / "t.fits.gz")
    assert np.array_equal(got, images, equal_nan=True) and len(meta) == 5


def test_fits_errors(tmp_path):
    from astropy.io import fits

    bad = tmp_path / "bad.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 29, 29), np.float32), name="REF")]
    ).writeto(bad)
    with pytest.raises(ValueError, match=r"bad\.fits: missing image extension 'NEW'"):
        read_fits_triplets(bad)
    (tmp_path / "junk.fits").write_text("not fits")
    with pytest.raises(ValueError, match=r"junk\.fits"):
        read_fits_triplets(tmp_path / "junk.fits")
    with pytest.raises(FileNotFoundError):
        read_fits_triplets(tmp_path / "none.fits")
    with pytest.raises(ValueError, match="images must be"):
        write_fits_triplets(tmp_path / "x.fits", np.zeros((2, 29, 29)))


@pytest.fixture()
def fits_bytes(tmp_path):
    images = np.random.default_rng(2).normal(size=(20, 29, 29, 3)).astype(np.float32)
    write_fits_triplets(tmp_path / "good.fits", images, pd.DataFrame({"id": np.arange(20)}))
    return (tmp_path / "good.fits").read_bytes()


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x10
    return bytes(b)


@pytest.mark.parametrize(
    "name, damage, match",
    [
        ("half.fits", lambda b: b[: len(b) // 2], "truncated"),
        ("no_meta_end.fits", lambda b: b[:-3000], "damaged FITS"),  # META silently lost before
        ("pixel.fits", lambda b: _flip(b, 2 * 2880 + 1000), "Checksum verification failed"),
        ("half.fits.gz", lambda b: gzip.compress(b)[:-4000], "damaged gzip"),
        ("crc.fits.gz", lambda b: _flip(gzip.compress(b), -6), "damaged gzip"),
    ],
)
def test_damaged_fits_is_one_clear_error(tmp_path, fits_bytes, name, damage, match):
    (tmp_path / name).write_bytes(damage(fits_bytes))
    with pytest.raises(ValueError, match=match) as err:
        read_fits_triplets(tmp_path / name)
    assert str(err.value).startswith(str(tmp_path / name))


def test_repeated_extension_is_refused(tmp_path):
    from astropy.io import fits

    cube = np.zeros((2, 29, 29), np.float32)
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(cube, name=n) for n in ("REF", "REF", "NEW", "SUB")]
    fits.HDUList(hdus).writeto(tmp_path / "two_ref.fits")
    with pytest.raises(ValueError, match=r"two_ref\.fits: extension 'REF' appears 2 times"):
        read_fits_triplets(tmp_path / "two_ref.fits")
