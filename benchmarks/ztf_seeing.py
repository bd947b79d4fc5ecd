"""The ZTF-like survey's seeing, from the alerts' own `fwhm` (rbcore.simulation.presets).

Prints the percentiles 5/16/50/84/95 (arcsec) and the lognormal sigma of the SExtractor
FWHM (ZTF `fwhm`, 1.01" pixels) of the asteroid-matched alerts (weak_labels == 1: isolated
point sources by a criterion independent of any model), of all alerts and of drb >= 0.5;
and the share of fading candidates (`isdiffpos` 'f', detected on ref - sci) among the
adaptation alerts (`rbcore.ztf.simulated.split_alerts` with the profiles' `adapt_fraction`
and `split_seed`: the held-out alerts stay unseen), the preset's `ZTF_FADING_FRACTION`.

    .venv/bin/python benchmarks/ztf_seeing.py [alerts.npz]
"""

import sys

import numpy as np

from rbcore.profiles import ZTF_ADAPT
from rbcore.ztf import ZTF_PIXEL_SCALE, default_alerts_path
from rbcore.ztf.simulated import split_alerts


def main(path) -> None:
    with np.load(path, allow_pickle=False) as d:
        fwhm = d["fwhm"].astype(np.float64) * ZTF_PIXEL_SCALE
        weak, drb = d["weak_labels"], d["drb"].astype(np.float64)
        fading, object_ids = d["isdiffpos"] == "f", d["objectId"]
    ok = np.isfinite(fwhm) & (fwhm > 0) & (fwhm < 20)  # a few packets carry fwhm ~70 px
    for name, sel in (("asteroid matches", ok & (weak == 1)), ("all", ok),
                      ("drb >= 0.5", ok & (drb >= 0.5))):  # fmt: skip
        f = fwhm[sel]
        q = np.percentile(f, [5, 16, 50, 84, 95])
        print(f"{name} (n={sel.sum()}): fwhm 5/16/50/84/95 % = {np.round(q, 2)} arcsec, "
              f"lognormal sigma {np.std(np.log(f)):.3f}")  # fmt: skip

    adapt = split_alerts(
        object_ids, fraction=ZTF_ADAPT["adapt_fraction"], seed=ZTF_ADAPT["split_seed"]
    )
    k, n = int(fading[adapt].sum()), int(adapt.sum())
    se = np.sqrt(k / n * (1 - k / n) / n)
    print(f"fading (isdiffpos 'f') among the adaptation alerts: {k}/{n} = {k / n:.3f} +- {se:.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else default_alerts_path())
