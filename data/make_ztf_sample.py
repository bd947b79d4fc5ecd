"""Make data/ztf_alerts_sample.npz from the shared ZTF developer set.

Usage (from anywhere):
    python data/make_ztf_sample.py [SRC] [OUT]

SRC defaults to ../shared/data/ztf_alerts/ztf_alerts_dev.npz beside the repository, OUT to
data/ztf_alerts_sample.npz. Every stamp is cut and resampled to the 29x29 Tomo-e grid by
`rbcore.ztf.load_alerts`, the same function that reads the shared file directly, so the copy
and the shared file give the same cutouts (tests/test_ztf.py checks it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from rbcore import ztf

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SRC = REPO.parent / "shared" / "data" / "ztf_alerts" / "ztf_alerts_dev.npz"


def main(argv: list[str]) -> None:
    src = Path(argv[0]) if argv else DEFAULT_SRC
    out = Path(argv[1]) if len(argv) > 1 else ztf.default_sample_path()
    ztf.write_sample(src, out)
    alerts = ztf.load_alerts(out)
    print(
        f"{out}: {len(alerts)} alerts, {out.stat().st_size / 1e6:.2f} MB, "
        f"NaN pixels {np.isnan(alerts.images).mean():.4f}, "
        f"sentinels masked {alerts.n_sentinel_masked}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
