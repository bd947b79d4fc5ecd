"""Issue 25 (reliability, round 3): ZTF packets, the packet writer and FITS triplets.

An empty objectId is skipped like a missing one; a gzip-bomb stamp is refused before it is
inflated; astropy's VerifyWarning about a non-standard SIMPLE card is silenced (and counted);
the packet writer refuses a missing output folder, leaves no temporary file, can be run twice
on a glob that matches its own output, and ends on Ctrl-C with one line and status 130. FITS:
a finite float64 beyond float32's range is named as such; lower-case extension names are
accepted (astropy's own lookup ignores case).
"""

import gzip
import io
import os
import signal
import warnings

import numpy as np
import pytest
from astropy.io import fits
from test_ztf_packets import packet, write_avro

from rbcore.files import write_bytes_atomic
from rbcore.fits import read_fits_triplets, write_fits_triplets
from rbcore.ztf import packets as packets_module
from rbcore.ztf import stamps
from rbcore.ztf.packets import main, read_packets
from rbcore.ztf.stamps import PacketError, decode_stamp

MAX_STAMP_BYTES = getattr(stamps, "MAX_STAMP_BYTES", 1 << 20)


def test_empty_object_id_is_skipped_like_a_missing_one(tmp_path):
    empty, missing = packet(2), packet(3)
    empty["objectId"] = ""
    missing["objectId"] = None
    write_avro(tmp_path / "a.avro", [packet(1), empty])
    got = read_packets(tmp_path / "a.avro")
    assert got.arrays["ids"].tolist() == ["1"]
    assert got.summary.skipped == {"missing id": 1}, got.summary.problems
    assert "a.avro#1: missing id" in got.summary.problems[0]


def test_gzip_bomb_stamp_is_refused_before_it_is_inflated():
    # a 2000x2000 float32 image: 16 MB inflated from ~16 kB (the was 20000x20000)
    buf = io.BytesIO()
    fits.PrimaryHDU(np.zeros((2000, 2000), np.float32)).writeto(buf)
    bomb = gzip.compress(buf.getvalue())
    assert len(bomb) < MAX_STAMP_BYTES < len(buf.getvalue())
    with pytest.raises(PacketError, match=rf"inflates to more than {MAX_STAMP_BYTES} bytes"):
        decode_stamp({"stampData": bomb}, "cutoutScience")


def test_non_standard_simple_card_warns_nothing_and_is_counted(tmp_path):
    rec = packet(1)
    raw = gzip.decompress(rec["cutoutScience"]["stampData"])
    card = b"SIMPLE  =                   T / file does conform to FITS standard".ljust(80)
    rec["cutoutScience"]["stampData"] = gzip.compress(card + raw[80:])
    write_avro(tmp_path / "a.avro", [rec, packet(2)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = read_packets(tmp_path / "a.avro")
    assert len(got) == 2
    assert not [w for w in caught if "SIMPLE" in str(w.message)], [str(w.message) for w in caught]
    assert got.arrays["n_nonstandard_fits"].tolist() == [1, 0]


def test_packet_writer_refuses_a_missing_output_folder(tmp_path, capsys):
    write_avro(tmp_path / "a.avro", [packet(1)])
    out = tmp_path / "nowhere" / "alerts.npz"
    assert main(["--input", str(tmp_path / "a.avro"), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "output folder does not exist" in err, err
    assert str(out.parent) in err
    assert not out.parent.exists()


def test_packet_writer_output_folder_leaves_no_temporary_file(tmp_path, capsys):
    write_avro(tmp_path / "a.avro", [packet(1)])
    (tmp_path / "alerts.npz").mkdir()
    assert (
        main(["--input", str(tmp_path / "a.avro"), "--output", str(tmp_path / "alerts.npz")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "is a folder" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.avro", "alerts.npz"]


def test_write_bytes_atomic_removes_its_temporary_file_when_the_rename_fails(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(OSError):
        write_bytes_atomic(tmp_path / "out", b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_packet_writer_run_twice_on_a_glob_that_matches_its_output(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    write_avro(tmp_path / "in" / "a.avro", [packet(1)])
    argv = ["--input", str(tmp_path / "in" / "*"), "--output", str(tmp_path / "in" / "out.npz")]
    assert main(argv) == 0
    first = (tmp_path / "in" / "out.npz").read_bytes()
    assert main(argv) == 0, capsys.readouterr().err
    assert (tmp_path / "in" / "out.npz").read_bytes() == first


def test_packet_writer_ctrl_c_one_line_status_130_no_output(tmp_path, capsys, monkeypatch):
    write_avro(tmp_path / "a.avro", [packet(1), packet(2)])
    real = packets_module.packet_to_alert

    def interrupted(rec, **kwargs):  # Ctrl-C while the packets are read
        if rec["candid"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(rec, **kwargs)

    monkeypatch.setattr(packets_module, "packet_to_alert", interrupted)
    # As at a terminal: under a background job of a non-interactive shell SIGINT is inherited
    # ignored (POSIX) and os.kill would do nothing.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        status = main(["--input", str(tmp_path / "a.avro"), "--output", str(tmp_path / "o.npz")])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the packet writer as a KeyboardInterrupt traceback")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert status == 130
    err = capsys.readouterr().err.strip()
    assert err == "rbcore.ztf.packets: interrupted; no output written", err
    assert [p.name for p in tmp_path.iterdir()] == ["a.avro"]


# ------------------------------------------------------------------------------ FITS


def _triplets(n=4):
    return np.random.default_rng(0).normal(size=(n, 29, 29, 3)).astype(np.float32)


def test_fits_float64_beyond_float32_is_named_as_such(tmp_path):
    x = _triplets()
    cubes = [x[..., c].astype(np.float64) for c in range(3)]
    cubes[2][3, 1, 1] = 1e300  # finite, but no float32
    hdus = [fits.PrimaryHDU()] + [
        fits.ImageHDU(c, name=n) for c, n in zip(cubes, ("REF", "NEW", "SUB"), strict=True)
    ]
    fits.HDUList(hdus).writeto(tmp_path / "big.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning on the way
        with pytest.raises(ValueError, match=r"big.fits\[SUB\]: triplet 3: pixel value 1e\+300 "):
            read_fits_triplets(tmp_path / "big.fits")


def test_fits_lower_case_extension_names_are_accepted(tmp_path):
    x = _triplets()
    write_fits_triplets(tmp_path / "upper.fits", x)
    hdus = [fits.PrimaryHDU()]
    for c, n in enumerate(("ref", "new", "sub")):
        hdus.append(fits.ImageHDU(x[..., c]))
        hdus[-1].header["EXTNAME"] = n  # as written (the name= argument would upper-case it)
    fits.HDUList(hdus).writeto(tmp_path / "lower.fits")
    got, _ = read_fits_triplets(tmp_path / "lower.fits")
    np.testing.assert_array_equal(got, read_fits_triplets(tmp_path / "upper.fits")[0])
    # the same name in two cases is still one name twice
    fits.HDUList([*hdus, fits.ImageHDU(x[..., 0], name="REF")]).writeto(tmp_path / "twice.fits")
    with pytest.raises(ValueError, match="'REF' appears 2 times"):
        read_fits_triplets(tmp_path / "twice.fits")
