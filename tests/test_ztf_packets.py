"""Tests of `rbcore.ztf.packets`: ZTF alert packets (Avro, Parquet) into the alert-file layout.

The packets are written here with fastavro from a minimal schema that has the fields of the
ZTF alert schema the reader uses; cutouts are gzip-compressed FITS made with astropy.
"""

import gzip
import io
from pathlib import Path

import fastavro
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from rbcore import ztf
from rbcore.ztf.packets import (
    STAMP_SIZE,
    build_alert_file,
    main,
    read_packets,
)

_CUTOUT = {
    "type": "record", "name": "cutout", "namespace": "ztf.alert",
    "fields": [{"name": "fileName", "type": "string"}, {"name": "stampData", "type": "bytes"}],
}  # fmt: skip
_FLOATS = ("xpos", "ypos", "magpsf", "sigmapsf", "rb", "drb", "ssdistnr", "ssmagnr",
           "sgscore1", "distpsnr1", "fwhm", "elong")  # fmt: skip
SCHEMA = {
    "type": "record", "name": "alert", "namespace": "ztf",
    "fields": [
        {"name": "schemavsn", "type": "string"},
        {"name": "objectId", "type": "string"},
        {"name": "candid", "type": "long"},
        {"name": "candidate", "type": {
            "type": "record", "name": "candidate",
            "fields": [
                {"name": "jd", "type": "double"}, {"name": "fid", "type": "int"},
                {"name": "programid", "type": "int"}, {"name": "isdiffpos", "type": "string"},
                {"name": "ra", "type": "double"}, {"name": "dec", "type": "double"},
                *({"name": k, "type": ["null", "float"], "default": None} for k in _FLOATS),
                {"name": "nbad", "type": ["null", "int"], "default": None},
                {"name": "ndethist", "type": "int"},
                {"name": "rbversion", "type": "string"},
                {"name": "drbversion", "type": ["null", "string"], "default": None},
            ],
        }},
        {"name": "cutoutScience", "type": ["null", _CUTOUT], "default": None},
        {"name": "cutoutTemplate", "type": ["null", "ztf.alert.cutout"], "default": None},
        {"name": "cutoutDifference", "type": ["null", "ztf.alert.cutout"], "default": None},
    ],
}  # fmt: skip


def gz_fits(img) -> bytes:
    buf = io.BytesIO()
    fits.PrimaryHDU(np.asarray(img, np.float32)).writeto(buf)
    return gzip.compress(buf.getvalue())


def star(amp, shape=(STAMP_SIZE, STAMP_SIZE), centre=(31, 31), sigma=1.5):
    y, x = np.mgrid[: shape[0], : shape[1]]
    return amp * np.exp(-((y - centre[0]) ** 2 + (x - centre[1]) ** 2) / (2 * sigma**2))


def packet(candid, *, isdiffpos="t", stored=None, ref=None, sci=None, diff=None, **cand):
    """One alert record. By default a source of 500 counts appears ('t') or fades ('f')
    over a flat sky of 100; `stored` is the subtraction ZTF wrote ('scimref'/'refmsci')."""
    rng = np.random.default_rng(candid)
    sky = 100 + rng.normal(0, 1, (STAMP_SIZE, STAMP_SIZE))
    fading = isdiffpos in ("f", "0")
    ref = sky + (star(500) if fading else 0) if ref is None else ref
    sci = sky + (0 if fading else star(500)) if sci is None else sci
    stored = stored or ("refmsci" if fading else "scimref")
    if diff is None:
        diff = ref - sci if stored == "refmsci" else sci - ref
    base = f"candid{candid}_pid1_targ"
    c = {
        "jd": 2459000.5 + candid, "fid": 1 + candid % 2, "programid": 1, "isdiffpos": isdiffpos,
        "ra": 10.0, "dec": -5.0, "xpos": 1500.0, "ypos": 1500.0, "magpsf": 18.5,
        "sigmapsf": 0.05, "rb": 0.8, "drb": 0.9, "ssdistnr": -999.0, "ssmagnr": -999.0,
        "sgscore1": 0.1, "distpsnr1": 5.0, "fwhm": 2.1, "elong": 1.1, "nbad": 0,
        "ndethist": 3, "rbversion": "t17_f5_c3", "drbversion": "d6_m7",
    }  # fmt: skip
    c.update(cand)
    cut = lambda img, kind: {"fileName": f"{base}_{kind}.fits.gz", "stampData": gz_fits(img)}  # noqa: E731
    return {
        "schemavsn": "3.3", "objectId": f"ZTF20aaaa{candid:03d}", "candid": candid,
        "candidate": c, "cutoutScience": cut(sci, "sci"), "cutoutTemplate": cut(ref, "ref"),
        "cutoutDifference": cut(diff, stored),
    }  # fmt: skip


def write_avro(path, records):
    with open(path, "wb") as f:
        fastavro.writer(f, fastavro.parse_schema(SCHEMA), records)
    return path


def centre(img, r=2):
    return float(np.nanmean(img[31 - r : 32 + r, 31 - r : 32 + r]))


def test_avro_packets_fill_the_developer_layout(tmp_path):
    recs = [
        packet(1),
        packet(2, isdiffpos="f", drb=None, ssdistnr=1.2, ssmagnr=19.0),  # asteroid match
        packet(3, ssdistnr=1.2, ssmagnr=20.5),  # near, but 2 mag off: not a match
    ]
    write_avro(tmp_path / "a.avro", recs[:2])
    write_avro(tmp_path / "b.avro", recs[2:])
    p = read_packets(tmp_path)
    assert len(p) == 3 and p.summary.n_skipped == 0 and p.summary.problems == []
    assert p.images.shape == (3, STAMP_SIZE, STAMP_SIZE, 3) and p.images.dtype == np.float32
    a = p.arrays
    assert a["ids"].tolist() == ["1", "2", "3"]
    assert a["objectId"].tolist() == ["ZTF20aaaa001", "ZTF20aaaa002", "ZTF20aaaa003"]
    assert a["src"][1].endswith("a.avro#1")
    # channels (ref, new, sub) = (cutoutTemplate, cutoutScience, cutoutDifference)
    r0 = recs[0]
    for c, name in enumerate(("cutoutTemplate", "cutoutScience", "cutoutDifference")):
        with fits.open(io.BytesIO(gzip.decompress(r0[name]["stampData"]))) as h:
            np.testing.assert_array_equal(p.images[0, :, :, c], h[0].data)
    assert np.isnan(a["drb"][1]) and a["drb"][0] == np.float32(0.9)
    np.testing.assert_array_equal(a["peer_scores"][[0, 2]], a["drb"][[0, 2]])
    assert a["weak_labels"].tolist() == [-1, 1, -1]
    assert a["labels"].tolist() == [-1, -1, -1]
    assert a["isdiffpos"].tolist() == ["t", "f", "t"]
    assert a["diff_is_ref_minus_sci"].tolist() == [False, True, False]
    assert a["fid"].dtype == np.int8 and a["jd"].dtype == np.float64
    assert a["fwhm"].tolist() == pytest.approx([2.1] * 3)


def test_source_is_positive_in_sub_whichever_subtraction_was_stored(tmp_path):
    recs = [
        packet(1, isdiffpos="t"),  # sci - ref stored: as is
        packet(2, isdiffpos="f"),  # ZTF's refmsci stamp of a fading source: already positive
        packet(3, isdiffpos="0", stored="scimref"),  # sci - ref of a fading source: negated
        packet(4, isdiffpos="1", stored="refmsci"),  # ref - sci of a brightening one: negated
    ]
    write_avro(tmp_path / "a.avro", recs)
    p = read_packets(tmp_path / "a.avro")
    sub = p.images[..., 2]
    assert all(centre(sub[i], r=0) > 400 for i in range(4)), [centre(s, 0) for s in sub]
    assert p.arrays["sub_flipped"].tolist() == [False, False, True, True]
    assert p.arrays["diff_is_ref_minus_sci"].tolist() == [False, True, True, False]
    # the faded source: new - ref is negative where sub is positive (sub = ref - new)
    new_minus_ref = p.images[1, ..., 1] - p.images[1, ..., 0]
    np.testing.assert_allclose(sub[1], -new_minus_ref, atol=1e-3)
    with fits.open(io.BytesIO(gzip.decompress(recs[2]["cutoutDifference"]["stampData"]))) as h:
        np.testing.assert_array_equal(sub[2], -h[0].data)


def test_nan_and_sentinel_pixels_and_chip_edge_padding(tmp_path):
    ref = 100 + star(50)
    ref[:, :5] = np.finfo(np.float32).min  # the template's chip-edge blank (developer set)
    sci = 100 + star(500)
    sci[10, 12] = np.nan  # a pixel ZTF masked
    high = 100 + star(500, shape=(STAMP_SIZE, 55))  # x cut at the chip's high edge
    low = 100 + star(500, shape=(40, STAMP_SIZE), centre=(8, 31))  # y cut at the low edge
    recs = [
        packet(1, ref=ref, sci=sci, diff=sci - 100 - star(50)),
        packet(2, ref=high, sci=high, diff=high, xpos=3049.4),
        packet(3, ref=low, sci=low, diff=low, ypos=9.0),
    ]
    write_avro(tmp_path / "a.avro", recs)
    p = read_packets(tmp_path / "a.avro")
    assert p.summary.n_skipped == 0
    im, a = p.images, p.arrays
    assert np.isnan(im[0, :, :5, 0]).all() and np.isfinite(im[0, :, 5:, 0]).all()
    assert np.isnan(im[0, 10, 12, 1]) and np.isfinite(im[0, ..., 1]).sum() == 63 * 63 - 1
    assert a["n_sentinel"].tolist() == [63 * 5, 0, 0]
    assert (np.abs(np.nan_to_num(im)) < 1e30).all()
    assert a["padded"].tolist() == [False, True, True]
    assert np.isnan(im[1, :, 55:]).all() and np.isfinite(im[1, :, :55]).all()
    assert np.isnan(im[2, :23]).all() and np.isfinite(im[2, 23:]).all()
    for i in (1, 2):  # the candidate is back at the centre of the 63x63 stamp
        assert np.unravel_index(np.nanargmax(im[i, ..., 1]), (63, 63)) == (31, 31)


def test_damaged_packets_are_reported_and_counted(tmp_path, capsys):
    good = [packet(i) for i in range(1, 4)]
    bad_gzip = packet(10)
    bad_gzip["cutoutScience"]["stampData"] = bad_gzip["cutoutScience"]["stampData"][:200]
    not_fits = packet(11)
    not_fits["cutoutTemplate"]["stampData"] = gzip.compress(b"hello, not a FITS file" * 200)
    small = packet(12, ref=np.zeros((10, 10)), diff=np.zeros((63, 63)))
    missing = packet(13)
    missing["cutoutDifference"] = None
    misplaced = packet(14, ref=np.ones((63, 40)), diff=np.ones((63, 40)), xpos=20.0)  # keeps 52
    recs = [good[0], bad_gzip, not_fits, good[1], small, missing, misplaced]
    write_avro(tmp_path / "mixed.avro", recs)
    one = io.BytesIO()
    fastavro.writer(one, fastavro.parse_schema(SCHEMA), [good[2]])
    (tmp_path / "truncated.avro").write_bytes(one.getvalue()[:-5000])  # a cut download
    (tmp_path / "garbage.avro").write_bytes(b"not avro at all")
    write_avro(tmp_path / "dupe.avro", [good[0]])

    p = read_packets(tmp_path)
    s = p.summary
    assert p.arrays["ids"].tolist() == ["1", "2"]
    assert s.n_read == 2 and s.n_skipped == 8 and len(s.problems) == 8
    assert dict(s.skipped) == {
        "corrupt cutout": 2, "wrong shape": 2, "missing cutout": 1,
        "unreadable avro": 2, "duplicate candid": 1,
    }  # fmt: skip
    text = "\n".join(s.problems)
    for where in ("mixed.avro#1", "mixed.avro#2", "mixed.avro#4", "mixed.avro#5", "mixed.avro#6",
                  "truncated.avro#0", "garbage.avro", "dupe.avro#0"):  # fmt: skip
        assert where in text, (where, text)
    assert "cutoutScience" in text and "cutoutTemplate" in text and "10x10" in text
    assert "low edge keeps 51" in text
    assert "2 alerts read from 4 files; 8 skipped" in s.text()

    out = tmp_path / "out" / "alerts.npz"
    out.parent.mkdir()  # not created by the writer (issue 25), as by `score`
    assert main(["--input", str(tmp_path), "--output", str(out)]) == 0
    with np.load(out) as z:
        assert z["ids"].tolist() == ["1", "2"] and int(z["n_packets_skipped"]) == 8
    err = capsys.readouterr().err
    assert err.count("skipped ") == 8 + 1 and "2 alerts read from 4 files; 8 skipped" in err


def test_damaged_avro_block_costs_only_its_records(tmp_path):
    buf = io.BytesIO()
    w = fastavro.write.Writer(buf, fastavro.parse_schema(SCHEMA))
    for i in range(1, 4):  # one block per record
        w.write(packet(i))
        w.flush()
    w.flush()
    data = bytearray(buf.getvalue())
    # corrupt the middle block's payload (its candid's objectId length), keep the sync markers
    i = data.find(b"ZTF20aaaa002")
    data[i - 1] = 0x7F  # an absurd string length
    (tmp_path / "x.avro").write_bytes(bytes(data))
    p = read_packets(tmp_path / "x.avro")
    assert p.arrays["ids"].tolist() == ["1", "3"]
    assert p.summary.skipped == {"unreadable avro": 1}
    assert "x.avro#1" in p.summary.problems[0]


def test_parquet_export_reads_like_the_avro(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    recs = [packet(1), packet(2, isdiffpos="f", ssdistnr=0.5, ssmagnr=18.9)]
    write_avro(tmp_path / "a.avro", recs)
    pq.write_table(pa.Table.from_pylist(recs), tmp_path / "a.parquet")
    flat = [{**{k: v for k, v in r.items() if k != "candidate"}, **r["candidate"]} for r in recs]
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "flat.parquet")
    from_avro = read_packets(tmp_path / "a.avro")
    typo = [{**flat[0], "magpsf": "18.5 mag"}]  # a hand-made export with text in a number field
    pq.write_table(pa.Table.from_pylist(typo), tmp_path / "typo.parquet")
    bad = read_packets(tmp_path / "typo.parquet").summary
    assert bad.skipped == {"bad field": 1} and "typo.parquet#0" in bad.problems[0]
    assert "magpsf = '18.5 mag'" in bad.problems[0]
    for name in ("a.parquet", "flat.parquet"):
        got = read_packets(tmp_path / name)
        assert got.summary.n_skipped == 0
        np.testing.assert_array_equal(got.images, from_avro.images)
        for k, v in from_avro.arrays.items():
            if k != "src":
                np.testing.assert_array_equal(got.arrays[k], v, err_msg=f"{name}: {k}")


def test_alert_file_round_trip_into_load_alerts(tmp_path):
    recs = [packet(i, isdiffpos="tf"[i % 2]) for i in range(1, 6)]
    recs[0]["candidate"].update(ssdistnr=0.3, ssmagnr=18.6)
    (tmp_path / "night").mkdir()
    write_avro(tmp_path / "night" / "a.avro", recs)
    out = tmp_path / "alerts.npz"
    summary = build_alert_file(str(tmp_path / "night" / "*.avro"), out)
    assert summary.n_read == 5 and not list(tmp_path.glob("*.tmp"))
    alerts = ztf.load_alerts(out)
    packets = read_packets(tmp_path / "night")
    assert alerts.resampled_on_load and alerts.images.shape == (5, 29, 29, 3)
    np.testing.assert_array_equal(alerts.images, ztf.resample_to_tomoe(packets.images))
    assert alerts.meta["ids"].tolist() == [str(i) for i in range(1, 6)]
    assert alerts.meta["weak_labels"].tolist() == [1, -1, -1, -1, -1]
    # every array the developer set's readers use, with its dtype kind
    dev_like = {"images": "f", "drb": "f", "rb": "f", "weak_labels": "i", "labels": "i",
                "ids": "U", "objectId": "U", "jd": "f", "fid": "i", "magpsf": "f",
                "fwhm": "f", "isdiffpos": "U", "diff_is_ref_minus_sci": "b", "padded": "b"}  # fmt: skip
    with np.load(out, allow_pickle=False) as d:
        for k, kind in dev_like.items():
            assert d[k].dtype.kind == kind, k


def test_alert_file_command_errors(tmp_path, capsys):
    write_avro(tmp_path / "a.avro", [packet(1)])
    before = (tmp_path / "a.avro").read_bytes()
    assert main(["--input", str(tmp_path / "a.avro"), "--output", str(tmp_path / "a.avro")]) == 2
    assert (tmp_path / "a.avro").read_bytes() == before
    assert "the output is one of the input" in capsys.readouterr().err
    assert main(["--input", str(tmp_path / "none*.avro"), "--output", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rbcore.ztf.packets: error:") and "\n" not in err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "bad.avro").write_bytes(b"junk")
    assert main(["--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o.npz")]) == 2
    assert "no readable alert" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_score_command_on_avro_packets(tmp_path, capsys):
    from flax import nnx

    from rbcore.checkpoint import save_model
    from rbcore.cli import main as cli_main
    from rbcore.model import RBCNN
    from rbcore.preprocess import normalize

    model = RBCNN(rngs=nnx.Rngs(0))
    save_model(tmp_path / "ckpt", model)
    model.eval()
    bad = packet(9)
    bad["cutoutScience"]["stampData"] = b"\x1f\x8b broken"
    (tmp_path / "in").mkdir()
    write_avro(tmp_path / "in" / "a.avro", [packet(1), bad])
    write_avro(tmp_path / "in" / "b.avro", [packet(2, isdiffpos="f")])
    argv = ["score", "--checkpoint", str(tmp_path / "ckpt"), "--output", str(tmp_path / "s.csv"),
            "--no-progress", "--input"]  # fmt: skip
    assert cli_main([*argv, str(tmp_path / "in" / "*.avro")]) == 0
    err = capsys.readouterr().err
    assert "a.avro#1: corrupt cutout" in err and "2 alerts read from 2 files; 1 skipped" in err
    out = pd.read_csv(tmp_path / "s.csv", dtype={"candid": str})
    assert list(out.columns) == ["row", "candid", "objectId", "logit", "score"]
    assert out["candid"].tolist() == ["1", "2"]
    assert out["objectId"].tolist() == ["ZTF20aaaa001", "ZTF20aaaa002"]
    x = ztf.resample_to_tomoe(read_packets(tmp_path / "in").images)
    np.testing.assert_allclose(out["logit"], np.asarray(model(normalize(x))), atol=1e-4)
    # a folder works too, and --params makes no sense for packets
    assert cli_main([*argv, str(tmp_path / "in")]) == 0
    assert cli_main([*argv, str(tmp_path / "in"), "--params", str(tmp_path / "p.csv")]) == 2
    assert cli_main([*argv, str(tmp_path / "nothing")]) == 2
    before = (tmp_path / "in" / "b.avro").read_bytes()
    argv[argv.index("--output") + 1] = str(tmp_path / "in" / "b.avro")
    assert cli_main([*argv, str(tmp_path / "in")]) == 2
    assert "would replace the input" in capsys.readouterr().err
    assert (tmp_path / "in" / "b.avro").read_bytes() == before


SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ztf_alerts"
DEV = SHARED / "ztf_alerts_dev.npz"


def dev_packet(d, i):
    """The alert `i` of the developer set as ZTF would send it: its stamps as gzipped FITS
    (a padded chip-edge stamp cut back to what the chip held), its metadata as fields."""
    ints, texts = ("fid", "programid", "nbad", "ndethist"), ("isdiffpos", "rbversion")
    c = {k: None if np.isnan(d[k][i]) else float(d[k][i]) for k in _FLOATS + ("jd", "ra", "dec")}
    c.update({k: int(d[k][i]) for k in ints} | {k: str(d[k][i]) for k in texts})
    c["drbversion"] = str(d["drbversion"][i]) or None
    img = d["images"][i]
    if d["padded"][i]:
        keep_y, keep_x = ~np.isnan(img).all((1, 2)), ~np.isnan(img).all((0, 2))
        img = img[keep_y][:, keep_x]
    diff = str(d["diff_fileName"][i])
    cut = lambda c_, name: {"fileName": name, "stampData": gz_fits(img[..., c_])}  # noqa: E731
    return {
        "schemavsn": str(d["schemavsn"][i]), "objectId": str(d["objectId"][i]),
        "candid": int(d["ids"][i]), "candidate": c, "cutoutTemplate": cut(0, "ref.fits.gz"),
        "cutoutScience": cut(1, "sci.fits.gz"), "cutoutDifference": cut(2, diff),
    }  # fmt: skip


@pytest.mark.skipif(not DEV.exists(), reason=f"shared ZTF developer set absent at {DEV}")
def test_packets_of_the_developer_set_rebuild_it(tmp_path):
    with np.load(DEV, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    sentinel = (np.abs(d["images"]) >= ztf.SENTINEL_ABS).any((1, 2, 3))
    pick = np.unique(np.concatenate([
        np.nonzero(d["padded"])[0], np.nonzero(sentinel)[0],
        np.nonzero(d["isdiffpos"] == "f")[0][:8], np.nonzero(d["weak_labels"] == 1)[0][:8],
        np.nonzero(np.isnan(d["drb"]))[0][:4], np.arange(0, 750, 75),
    ]))  # fmt: skip
    assert d["padded"].any() and sentinel.any() and len(pick) > 25
    write_avro(tmp_path / "dev.avro", [dev_packet(d, i) for i in pick])
    out = tmp_path / "rebuilt.npz"
    assert build_alert_file(tmp_path / "dev.avro", out).n_skipped == 0
    with np.load(out, allow_pickle=False) as z:
        got = {k: z[k] for k in z.files}
    want = d["images"][pick]
    want = np.where(np.abs(np.nan_to_num(want)) >= ztf.SENTINEL_ABS, np.nan, want)
    np.testing.assert_array_equal(got["images"], want)  # NaN in the same places
    assert got["n_sentinel"].sum() == (np.abs(d["images"][pick]) >= ztf.SENTINEL_ABS).sum()
    for k in ("ids", "objectId", "jd", "fid", "ra", "dec", "magpsf", "sigmapsf", "rb", "drb",
              "ssdistnr", "ssmagnr", "fwhm", "elong", "nbad", "ndethist", "xpos", "ypos",
              "isdiffpos", "diff_is_ref_minus_sci", "padded", "weak_labels", "labels",
              "peer_scores", "diff_fileName", "schemavsn", "rbversion", "drbversion",
              "channel_order"):  # fmt: skip
        want_k = d[k] if k == "channel_order" else d[k][pick]
        np.testing.assert_array_equal(got[k], want_k, err_msg=k)
        assert got[k].dtype.kind == want_k.dtype.kind, k
    assert not got["sub_flipped"].any()  # ZTF's own stamps: the source is already positive
    new = ztf.load_alerts(out)
    np.testing.assert_array_equal(new.images, ztf.load_alerts(DEV).images[pick])
