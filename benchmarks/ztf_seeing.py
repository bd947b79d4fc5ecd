"""The ZTF-like survey's seeing, from the alerts' own `fwhm` (rbcore.simulation.presets).

Prints the percentiles 5/16/50/84/95 (arcsec) and the lognormal sigma of the SExtractor
FWHM (ZTF `fwhm`, 1.01" pixels) of the asteroid-matched alerts (weak_labels == 1: isolated
point sources by a criterion independent of any model), of all alerts and of drb >= 0.5.

    .venv/bin/python benchmarks/ztf_seeing.py [alerts.npz]
"""

import sys

import numpy as np

from rbcore.ztf import ZTF_PIXEL_SCALE, default_alerts_path


def main(path) -> None:
    with np.load(path, allow_pickle=False) as d:
        fwhm = d["fwhm"].astype(np.float64) * ZTF_PIXEL_SCALE
        weak, drb = d["weak_labels"], d["drb"].astype(np.float64)
    ok = np.isfinite(fwhm) & (fwhm > 0) & (fwhm < 20)  # a few packets carry fwhm ~70 px
    for name, sel in (("asteroid matches", ok & (weak == 1)), ("all", ok),
                      ("drb >= 0.5", ok & (drb >= 0.5))):  # fmt: skip
        f = fwhm[sel]
        q = np.percentile(f, [5, 16, 50, 84, 95])
        print(f"{name} (n={sel.sum()}): fwhm 5/16/50/84/95 % = {np.round(q, 2)} arcsec, "
              f"lognormal sigma {np.std(np.log(f)):.3f}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else default_alerts_path())
