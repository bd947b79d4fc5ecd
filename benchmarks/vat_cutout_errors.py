"""Where the 1 %-label classifiers of vat_few_labels.py err, by simulated category (issue 21).

VAT helps where the unlabeled data show the boundary: where the classes form clusters with a
low-density gap between them (the cluster assumption, Miyato et al. 2018 Sec. 1; Chapelle &
Zien 2005). This script trains vat_few_labels' runs (same data, labels and settings) for one
seed, scores its test set and tabulates, per true category (and S/N bin of the reals), the
fraction each model gets wrong at the threshold where it keeps 90 % of the reals (its own
threshold), so one sees which errors remain and whether VAT removes any.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/vat_cutout_errors.py --method supervised \
        --out build/vat/err_sup.npz      # one process per method, then:
    PYTHONPATH=$PWD .venv/bin/python benchmarks/vat_cutout_errors.py --report build/vat/err_*.npz
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.files import write_json_atomic, write_npz_atomic
from rbcore.inference import predict_logits
from rbcore.simulation import simulate_candidates
from rbcore.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parent
SNR_BINS = (0, 5, 10, 20, 50, np.inf)  # our choice, for the real rows


def _few_labels():
    spec = importlib.util.spec_from_file_location("vfl", ROOT / "vat_few_labels.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def test_table(vfl, cache: Path, x_test: np.ndarray, split: str = "test") -> pd.DataFrame:
    """A split's truth table, re-simulated from its seed and checked against the images."""
    path = cache / f"{split}_params.csv"
    if not path.exists():
        n, seed = vfl.SIZES[split], vfl.DATA_SEEDS[split]
        x, params = simulate_candidates(n, kind="train", seed=seed, n_threads=2)
        if not np.array_equal(x, x_test, equal_nan=True):
            raise RuntimeError(f"{cache}: cached {split} images differ from seed {seed}'s")
        params.to_csv(path, index=False)
    return pd.read_csv(path)


def train_and_score(method: str, seed: int, fraction: float, epochs: int, out: str, cache: Path):
    vfl = _few_labels()
    data = vfl.load_data(cache)
    (x, y), (xv, yv), (xt, _) = data["train"], data["val"], data["test"]
    mask = vfl.labeled_subset(y, fraction, seed)
    cfg = TrainConfig(**{**vfl.BASE, "epochs": epochs, **vfl.METHODS[method]}, seed=seed)
    model, _ = fit(x, y, labeled_mask=mask, val_images=xv, val_labels=yv, config=cfg,
                   progress=False)  # fmt: skip
    write_npz_atomic(out, z=predict_logits(model, xt), method=method, seed=seed,
                     fraction=fraction, epochs=epochs)  # fmt: skip


def report(paths, cache: Path, json_out: str | None) -> None:
    from sklearn.metrics import roc_auc_score

    vfl = _few_labels()
    data = vfl.load_data(cache)
    t = test_table(vfl, cache, data["test"][0])
    y = t["is_real_true"].to_numpy()
    t["group"] = t["category"]
    real = y == 1
    snr = pd.cut(t["snr"], SNR_BINS, right=False).astype(str)
    t.loc[real, "group"] = t.loc[real, "category"] + " snr " + snr[real]
    cols, margins, aucs = {}, {}, {}
    for p in paths:
        with np.load(p) as f:
            z, name = f["z"], f"{f['method']} {float(f['fraction']):g}"
        thr = np.quantile(z[real], 0.1)  # keeps 90 % of the reals
        cols[name] = np.where(real, z < thr, z >= thr)
        margins[name + " margin"] = z - thr  # logit minus the model's threshold
        aucs[name] = roc_auc_score(y, z)
    err = pd.DataFrame({**cols, **margins})
    err["group"], err["n"] = t["group"], 1
    table = err.groupby("group").agg(
        {"n": "sum", **{c: "mean" for c in cols}, **{c: "median" for c in margins}}
    )
    table = table.sort_values(list(cols)[0], ascending=False)
    print("test AUC:", {k: round(v, 4) for k, v in aucs.items()})
    print("fraction wrong at the threshold keeping 90 % of the reals (per model), and the")
    print("median logit minus that threshold:")
    print(table.round(3).to_string())
    if json_out:
        doc = {"test_auc": aucs, "error_fraction": table.reset_index().to_dict("records")}
        write_json_atomic(json_out, doc, indent=1)


def sigma_spread(cache: Path, eps: float = 0.1, border: int = 4) -> dict:
    """Per-cutout sky sigma after the min-max normalization: how big a normalized eps is.

    Returns, per channel, the 5/50/95 % quantiles over the training cutouts of the per-pixel
    RMS of eps (eps / sqrt(29 * 29 * 3)) in units of that cutout's normalized sky sigma
    (1.4826 MAD of the `border`-pixel frame, as `rbcore.vat.sky_sigma`).
    """
    from rbcore.preprocess import normalize

    x = normalize(_few_labels().load_data(cache)["train"][0])
    frame = np.ones(x.shape[1:3], bool)
    frame[border:-border, border:-border] = False
    rms = eps / np.sqrt(np.prod(x.shape[1:]))
    out = {}
    for c, name in enumerate(("ref", "new", "sub")):
        pix = x[..., c][:, frame]
        sig = 1.4826 * np.median(np.abs(pix - np.median(pix, 1, keepdims=True)), 1)
        ratio = rms / sig[sig > 0]
        out[name] = {f"q{q}": float(np.quantile(ratio, q / 100)) for q in (5, 50, 95)}
        out[name]["zero_sigma_fraction"] = float(np.mean(sig == 0))
    return out


def neighbour_agreement(cache: Path, k: int = 5) -> pd.DataFrame:
    """The cluster assumption in VAT's metric: do a test cutout's nearest unlabeled cutouts
    (L2 on the normalized inputs, where VAT measures eps) share its true class?

    Returns, per test category, n, the fraction whose nearest training cutout has the same
    true class, the fraction whose k nearest vote it, and the median distance to the nearest
    one (for scale: the normalized eps of vat_few_labels is 0.1-10).
    """
    from rbcore.preprocess import normalize

    vfl = _few_labels()
    data = vfl.load_data(cache)
    (x, y), (xt, yt) = data["train"], data["test"]
    t = test_table(vfl, cache, xt)
    a = normalize(x).reshape(len(x), -1)
    b = normalize(xt).reshape(len(xt), -1)
    a2 = np.sum(a * a, 1)
    nn_idx, nn_d = [], []
    for i in range(0, len(b), 500):
        d2 = a2[None, :] - 2 * b[i : i + 500] @ a.T + np.sum(b[i : i + 500] ** 2, 1)[:, None]
        idx = np.argsort(d2, axis=1)[:, :k]
        nn_idx.append(idx)
        nn_d.append(np.sqrt(np.maximum(np.take_along_axis(d2, idx[:, :1], 1)[:, 0], 0)))
    idx, dist = np.concatenate(nn_idx), np.concatenate(nn_d)
    t["nn1_same"] = y[idx[:, 0]] == yt
    t["knn_same"] = (y[idx].mean(1) > 0.5) == yt
    t["nn_dist"] = dist
    train_cat = test_table(vfl, cache, x, "train")["category"].to_numpy()
    wrong = ~t["nn1_same"].to_numpy()
    for c in ("galx", "rand"):  # the categories of the other-class nearest neighbours
        sel = wrong & (t["category"] == c).to_numpy()
        print(f"{c}: nearest training cutout of the other class:",
              pd.Series(train_cat[idx[sel, 0]]).value_counts().to_dict())  # fmt: skip
    return t.groupby("category").agg(
        n=("nn1_same", "size"), nn1_same=("nn1_same", "mean"), knn_same=("knn_same", "mean"),
        nn_dist=("nn_dist", "median"))  # fmt: skip


def pixel_metric_baselines(cache: Path, seed: int = 0, fraction: float = 0.01) -> dict:
    """How much class information the normalized-pixel L2 geometry (VAT's metric) carries.

    Graph-based semi-supervised learning in that metric (sklearn LabelSpreading, kNN graph,
    k = 10, alpha 0.2: sklearn's defaults but k, our choice) from vat_few_labels' labeled
    subset of `seed`, against 1-NN on the same labels and 5-NN on all training labels.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.semi_supervised import LabelSpreading

    from rbcore.preprocess import normalize

    vfl = _few_labels()
    data = vfl.load_data(cache)
    (x, y), (xt, yt) = data["train"], data["test"]
    a, b = (normalize(v).reshape(len(v), -1) for v in (x, xt))
    m = vfl.labeled_subset(y, fraction, seed)
    ls = LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.2, max_iter=100, n_jobs=2)
    ls.fit(a, np.where(m, y, -1))
    pool = np.nan_to_num(ls.label_distributions_[~m, 1], nan=0.5)
    one = KNeighborsClassifier(1).fit(a[m], y[m])
    five = KNeighborsClassifier(5, n_jobs=2).fit(a, y)
    return {
        "label_spreading_unlabeled_pool_auc": float(roc_auc_score(y[~m], pool)),
        "label_spreading_unlabeled_pool_accuracy": float(np.mean(ls.transduction_[~m] == y[~m])),
        "nn1_on_labeled_test_accuracy": float(np.mean(one.predict(b) == yt)),
        "nn5_on_all_labels_test_accuracy": float(np.mean(five.predict(b) == yt)),
        "nn5_on_all_labels_test_auc": float(roc_auc_score(yt, five.predict_proba(b)[:, 1])),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="supervised")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label-fraction", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", help="npz of the test logits")
    parser.add_argument("--report", nargs="+", metavar="NPZ")
    parser.add_argument("--sigma-spread", action="store_true", help="print `sigma_spread`")
    parser.add_argument("--neighbours", action="store_true", help="`neighbour_agreement`")
    parser.add_argument("--pixel-metric", action="store_true", help="`pixel_metric_baselines`")
    parser.add_argument("--json", help="with --report: write the table here")
    parser.add_argument("--cache-dir", default="build/vat/cache")
    args = parser.parse_args(argv)
    cache = Path(args.cache_dir)
    if args.sigma_spread:
        print(sigma_spread(cache))
    elif args.pixel_metric:
        doc = pixel_metric_baselines(cache, args.seed, args.label_fraction)
        print({k: round(v, 4) for k, v in doc.items()})
        if args.json:
            write_json_atomic(args.json, doc, indent=1)
    elif args.neighbours:
        table = neighbour_agreement(cache)
        print(table.round(3).sort_values("nn1_same").to_string())
        if args.json:
            write_json_atomic(args.json, table.reset_index().to_dict("records"), indent=1)
    elif args.report:
        report(args.report, cache, args.json)
    else:
        train_and_score(args.method, args.seed, args.label_fraction, args.epochs, args.out,
                        cache)  # fmt: skip


if __name__ == "__main__":
    main()
