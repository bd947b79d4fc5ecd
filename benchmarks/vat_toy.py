"""rbcore's VAT where VAT is known to win: two moons / two circles with a handful of labels.

Miyato et al. (2016, arXiv:1507.00677, Sec. 3.1 and Fig. 2; 2018, TPAMI, Fig. 3) show VAT on
2-D synthetic sets (moons, circles) with a few labeled points and ~1,000 unlabeled ones: the
supervised boundary cuts through the unlabeled clusters, the VAT boundary follows the gap
between them. This script repeats that with `rbcore.vat.virtual_adversarial_loss` (the
function `rbcore.train.step.loss_fn` calls) on a small flax NNX MLP, supervised vs VAT on the
same labels, several seeds; eps is chosen on a labeled validation split (never the test set).
A broken VAT (wrong direction, sign, target or gradient path) does not win here.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/vat_toy.py     # -> benchmarks/vat_toy.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from rbcore.files import write_json_atomic
from rbcore.vat import virtual_adversarial_loss

ROOT = Path(__file__).resolve().parent
# Our choice, of the size of Miyato et al.'s synthetic experiments: a handful of labels per
# class, 1,000 unlabeled, a labeled validation split for eps, a large test set.
N_LABELED_PER_CLASS = 4
N_UNLABELED = 1000
N_VAL = 200
N_TEST = 2000
# Our choice: a 2-100-100-1 ReLU MLP, full batch, Adam 1e-2 (converges in a few hundred
# steps on 2-D data); alpha = 1 (Miyato et al. 2018); xi 1e-2 relative to an input scale ~1.
HIDDEN = 100
STEPS = 500
LR = 1e-2
ALPHA = 1.0
XI = 1e-2
EPS_GRID = (0.05, 0.1, 0.2, 0.3, 0.5)  # our choice, around the noise of the sets (0.1)
DATASETS = ("moons", "circles")


class MLP(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(2, HIDDEN, rngs=rngs)
        self.l2 = nnx.Linear(HIDDEN, HIDDEN, rngs=rngs)
        self.out = nnx.Linear(HIDDEN, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(jax.nn.relu(self.l2(jax.nn.relu(self.l1(x)))))[:, 0]


def make_set(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32[n, 2] points and int labels of the moons (noise 0.1) or circles (0.05) set."""
    from sklearn.datasets import make_circles, make_moons

    if name == "moons":
        x, y = make_moons(n, noise=0.1, random_state=seed)
        x = (x - np.array([0.5, 0.25])) / 0.9  # centred, unit scale (our choice)
    elif name == "circles":
        x, y = make_circles(n, noise=0.05, factor=0.5, random_state=seed)
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    return x.astype(np.float32), y.astype(np.int64)


def toy_data(name: str, seed: int) -> dict:
    """Labeled (a few per class), unlabeled, validation and test points; `seed` draws all."""
    x, y = make_set(name, N_UNLABELED + N_VAL + N_TEST, 1000 + seed)
    rng = np.random.default_rng([seed, 7])
    pool = np.arange(N_UNLABELED)
    lab = np.concatenate(
        [rng.choice(pool[y[pool] == c], N_LABELED_PER_CLASS, replace=False) for c in (0, 1)]
    )
    v, t = slice(N_UNLABELED, N_UNLABELED + N_VAL), slice(N_UNLABELED + N_VAL, None)
    return {"xl": x[lab], "yl": y[lab], "xu": x[:N_UNLABELED], "xv": x[v], "yv": y[v],
            "xt": x[t], "yt": y[t]}  # fmt: skip


def train(data: dict, *, seed: int, eps: float, alpha: float, steps: int = STEPS):
    """Train the MLP on BCE(labeled) + alpha * LDS(labeled + unlabeled); returns the model."""
    model = MLP(rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)
    opt = optax.adam(LR)
    xl, yl = jnp.asarray(data["xl"]), jnp.asarray(data["yl"], jnp.float32)
    x_all = jnp.concatenate([xl, jnp.asarray(data["xu"])])

    def loss_fn(p, key):
        f = nnx.merge(graphdef, p)
        loss = jnp.mean(optax.sigmoid_binary_cross_entropy(f(xl), yl))
        if alpha > 0:
            loss = loss + alpha * virtual_adversarial_loss(f, x_all, key=key, eps=eps, xi=XI)
        return loss

    def body(carry, i):
        p, s = carry
        g = jax.grad(loss_fn)(p, jax.random.fold_in(jax.random.key(seed), i))
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(jax.jit(body), (params, opt.init(params)), jnp.arange(steps))
    return nnx.merge(graphdef, params)


def accuracy(model, x, y) -> float:
    return float(np.mean((np.asarray(model(jnp.asarray(x))) > 0) == y))


def run_seed(name: str, seed: int, eps_grid=EPS_GRID) -> dict:
    data = toy_data(name, seed)
    sup = train(data, seed=seed, eps=0.0, alpha=0.0)
    val = {}
    for eps in eps_grid:
        val[eps] = (accuracy(m := train(data, seed=seed, eps=eps, alpha=ALPHA), *_v(data)), m)
    best = max(eps_grid, key=lambda e: val[e][0])  # first (smallest) eps on a tie
    return {
        "dataset": name,
        "seed": seed,
        "supervised_val": accuracy(sup, *_v(data)),
        "supervised_test": accuracy(sup, data["xt"], data["yt"]),
        "vat_val_by_eps": {f"{e:g}": val[e][0] for e in eps_grid},
        "vat_eps": best,
        "vat_val": val[best][0],
        "vat_test": accuracy(val[best][1], data["xt"], data["yt"]),
    }


def _v(data):
    return data["xv"], data["yv"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--out", default=str(ROOT / "vat_toy.json"))
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    runs = []
    print(f"{'set':<8}{'seed':>5}{'supervised':>12}{'VAT':>8}{'eps':>6}   (test accuracy)")
    for name in args.datasets:
        for seed in args.seeds:
            r = run_seed(name, seed)
            runs.append(r)
            print(f"{name:<8}{seed:>5}{r['supervised_test']:>12.3f}{r['vat_test']:>8.3f}"
                  f"{r['vat_eps']:>6g}", flush=True)  # fmt: skip
    summary = {}
    for name in args.datasets:
        rs = [r for r in runs if r["dataset"] == name]
        s, v = (np.array([r[k] for r in rs]) for k in ("supervised_test", "vat_test"))
        summary[name] = {"supervised_mean": float(s.mean()), "supervised_sd": float(s.std(ddof=1)),
                         "vat_mean": float(v.mean()), "vat_sd": float(v.std(ddof=1)),
                         "vat_wins": int(np.sum(v > s)), "n_seeds": len(rs)}  # fmt: skip
        print(f"{name}: supervised {s.mean():.3f} ±{s.std(ddof=1):.3f}, VAT {v.mean():.3f} "
              f"±{v.std(ddof=1):.3f}, VAT better in {np.sum(v > s)}/{len(rs)} seeds")  # fmt: skip
    # For scale (eps): the median distance between neighbouring unlabeled points of seed 0.
    from scipy.spatial import cKDTree

    spacing = {n: float(np.median(cKDTree(x := toy_data(n, 0)["xu"]).query(x, 2)[0][:, 1]))
               for n in args.datasets}  # fmt: skip
    print("median nearest-neighbour spacing of the unlabeled points:", spacing)
    setup = {"nn_spacing_seed0": spacing, "n_labeled_per_class": N_LABELED_PER_CLASS, "n_unlabeled": N_UNLABELED,
             "n_val": N_VAL, "n_test": N_TEST, "hidden": HIDDEN, "steps": STEPS, "lr": LR,
             "alpha": ALPHA, "xi": XI, "eps_grid": EPS_GRID}  # fmt: skip
    write_json_atomic(args.out, {"setup": setup, "runs": runs, "summary": summary}, indent=1)
    print(f"({time.perf_counter() - t0:.0f} s) -> {args.out}")


if __name__ == "__main__":
    main()
