"""The ZTF-sim models on the held-out alerts, split by polarity (`isdiffpos` 't' / 'f').

Scores the held-out half of the developer alerts (`split_alerts` with the profiles'
`adapt_fraction` and `split_seed`, as notebook 06) with the models saved by notebook 06
(`run_dir/models/ztf_sim`, `ztf_vada`) and prints, per polarity, the AUC against drb >= 0.5
with its bootstrap interval and the counts (`rbcore.ztf.compare.held_out_report`).
A diagnostic of the fading candidates (`rbcore.ztf.fading`); nothing here is tuned.

    .venv/bin/python benchmarks/ztf_polarity.py build/default/run/models [alerts.npz]
"""

import sys

import numpy as np

from rbcore.profiles import ZTF_ADAPT
from rbcore.ztf import compare, default_alerts_path, load_alerts
from rbcore.ztf.simulated import split_alerts

N_BOOT = 200  # bootstrap resamples of the AUC interval (a diagnostic, not the notebook's 1000)


def main(models_dir, path) -> None:
    alerts = load_alerts(path)
    with np.load(path, allow_pickle=False) as d:
        fading = d["isdiffpos"] == "f"
    adapt = split_alerts(
        alerts.meta["objectId"], fraction=ZTF_ADAPT["adapt_fraction"], seed=ZTF_ADAPT["split_seed"]
    )
    models = compare.load_ztf_models(models_dir)
    for name, sel in (("t (brightening)", ~fading), ("f (fading)", fading)):
        report, _ = compare.held_out_report(models, alerts, ~adapt & sel, n_boot=N_BOOT)
        for model, r in report["models"].items():
            print(
                f"{name} {model}: n={r['n_alerts']} drb-bogus={r['n_drb_bogus']} "
                f"AUC vs drb {r['auc_vs_drb']:.3f} {np.round(r['auc_ci'], 3).tolist()} "
                f"asteroid recall {r['asteroid_recall']}"
            )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else default_alerts_path())
