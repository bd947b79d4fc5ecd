"""Throughput of reading ZTF alert packets (`rbcore.ztf.packets.read_packets`).

Writes the alerts of the shared developer set (or, without it, `--n` synthetic alerts) as
ZTF-like Avro packets, one file per alert as in the public archive's nightly tarballs, into a
temporary folder, then reads them back. Prints on stdout

    read: N alerts/s        (Avro decode, 3 gzip + FITS cutouts per alert, sentinel mask)
    resample: N alerts/s    (rbcore.ztf.resample_to_tomoe onto the 29x29 model grid)

and on stderr the CPU-seconds and the load average (the machine is shared).

    .venv/bin/python benchmarks/bench_ztf_packets.py [--n 750] [--synthetic]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import fastavro
import numpy as np
from astropy.io import fits

from rbcore.ztf import resample_to_tomoe
from rbcore.ztf.packets import read_packets

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "ztf_alerts" / "ztf_alerts_dev.npz"
_CUTOUT = {
    "type": "record", "name": "cutout", "namespace": "ztf.alert",
    "fields": [{"name": "fileName", "type": "string"}, {"name": "stampData", "type": "bytes"}],
}  # fmt: skip
# the part of the ZTF alert schema that the reader uses
SCHEMA = fastavro.parse_schema({
    "type": "record", "name": "alert", "namespace": "ztf",
    "fields": [
        {"name": "objectId", "type": "string"}, {"name": "candid", "type": "long"},
        {"name": "candidate", "type": {"type": "record", "name": "candidate", "fields": [
            {"name": "isdiffpos", "type": "string"}, {"name": "magpsf", "type": "float"},
            {"name": "xpos", "type": "float"}, {"name": "ypos", "type": "float"},
        ]}},
        {"name": "cutoutScience", "type": _CUTOUT},
        {"name": "cutoutTemplate", "type": "ztf.alert.cutout"},
        {"name": "cutoutDifference", "type": "ztf.alert.cutout"},
    ],
})  # fmt: skip


def _gz_fits(img) -> bytes:
    buf = io.BytesIO()
    fits.PrimaryHDU(np.asarray(img, np.float32)).writeto(buf)
    return gzip.compress(buf.getvalue())


def _stamps(n: int, synthetic: bool) -> tuple[np.ndarray, str]:
    if DEV.exists() and not synthetic:
        with np.load(DEV) as d:
            keep = ~d["padded"]  # full 63x63 stamps (a padded one needs its chip position)
            return d["images"][keep][:n], f"the shared developer set ({DEV})"
    rng = np.random.default_rng(0)
    return rng.normal(100, 10, (n, 63, 63, 3)).astype(np.float32), "synthetic noise stamps"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=750, help="alerts (at most the developer set)")
    parser.add_argument("--synthetic", action="store_true", help="noise stamps, not ZTF's")
    args = parser.parse_args()
    images, origin = _stamps(args.n, args.synthetic)
    with tempfile.TemporaryDirectory() as tmp:
        for i, img in enumerate(images):
            rec = {
                "objectId": f"ZTF00{i:07d}", "candid": i,
                "candidate": {"isdiffpos": "t", "magpsf": 19.0, "xpos": 1500.0, "ypos": 1500.0},
                **{name: {"fileName": f"{i}_{name}.fits.gz", "stampData": _gz_fits(img[..., c])}
                   for c, name in enumerate(("cutoutTemplate", "cutoutScience",
                                             "cutoutDifference"))},
            }  # fmt: skip
            with open(Path(tmp) / f"{i}.avro", "wb") as f:
                fastavro.writer(f, SCHEMA, [rec])
        t0, c0 = time.perf_counter(), time.process_time()
        packets = read_packets(tmp)
        t1, c1 = time.perf_counter(), time.process_time()
        resample_to_tomoe(packets.images)
        t2, c2 = time.perf_counter(), time.process_time()
    n = len(packets)
    assert packets.summary.n_skipped == 0, packets.summary.text()
    print(f"read: {n / (t1 - t0):,.0f} alerts/s")
    print(f"resample: {n / (t2 - t1):,.0f} alerts/s")
    print(f"  {n} alerts from {origin}, one .avro each; read {t1 - t0:.2f} s wall, "
          f"{c1 - c0:.2f} CPU-s; resample {t2 - t1:.2f} s wall, {c2 - c1:.2f} CPU-s; "
          f"load {os.getloadavg()[0]:.2f}", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
