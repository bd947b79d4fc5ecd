"""A/B in one process: rbcore's fast paths against the plain ones, interleaved, as bound fractions.

On a shared machine absolute timings drift with the load; this script times each variant in
turn, several rounds, together with the float32 GEMM that measures the bound, and prints the
median fraction of the bound of each variant:

    training step, convolutions in pieces of CONV_PIECE (default) / in one pass
        (rbcore.train.step.conv_in_pieces; supervised and VAT steps of 128 + 128)
    scoring by two models, first convolutions as one product (default) / one per model
        (rbcore.model.shared_input_logits, used by rbcore.inference.Scorer)
    conv2d_1 and its pooling in the form the training step picks (rbcore.train.step.
        conv1_form: phase for VAT, direct for supervised) / in the other; scoring in phase
        form (default, rbcore.model._pooled_conv1) / direct (_direct_pooled_conv1)

    .venv/bin/python benchmarks/bench_ab.py [--rounds 5] [--seconds 0.6] [--resnet]

With --resnet, the paper's ResNet's steps instead: convolutions in pieces of 64 (default) / one
pass / pieces of 16.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from functools import partial

from _bound import FLOPS_INFERENCE, FLOPS_SUPERVISED, FLOPS_VAT, resnet_flops

import rbcore  # noqa: F401  (sets the XLA flags before jax starts)


@contextlib.contextmanager
def _swapped(module, name: str, value):
    """module.name replaced by value inside the block (the benchmark's switch, read while
    tracing: the jitted functions keep the variant they were traced with)."""
    default = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, default)


def _train_variants(alpha: float, b: int, flops: float, architecture: str = "RBCNN") -> dict:
    import jax
    import numpy as np
    from flax import nnx

    from rbcore.model import build_model
    from rbcore.train import TrainConfig
    from rbcore.train import step as S

    rng = np.random.default_rng(0)
    x = jax.device_put(rng.normal(size=(b, 29, 29, 3)).astype(np.float32))
    y = jax.device_put(rng.integers(0, 2, b).astype(np.int32))
    xu = x if alpha else x[:0]
    config = TrainConfig(
        batch_size=b, unlabeled_batch_size=b, alpha=alpha, architecture=architecture
    )
    model = build_model(config.model_config, seed=0)
    model.train()
    gd_train, params, rest = nnx.split(model, nnx.Param, ...)
    model.eval()
    gd_eval = nnx.split(model, nnx.Param, ...)[0]
    opt = S.make_optimizer(config).init(params)
    out = {}
    other = "direct" if S.conv1_form(config) == "phase" else "phase"
    variants = (
        ("pieces", S.CONV_PIECE, S.conv1_form(config)),
        ("one pass", 10**9, S.conv1_form(config)),
        (f"{other} conv1", S.CONV_PIECE, other),
    )
    if architecture == "PaperResNet":  # no phase form; pieces of another size instead
        variants = (*variants[:2], ("pieces of 16", 16, "direct"))
    for name, piece, conv1 in variants:

        def step(p, o, x, y, xu, piece=piece, conv1=conv1):
            with _swapped(S, "CONV_PIECE", piece), _swapped(S, "conv1_form", lambda c: conv1):
                return S.train_step(
                    p, o, rest, 0, (x, y, xu), np.float32(config.eps), np.float32(alpha),
                    config=config, graphdefs=(gd_train, gd_eval),
                )[2]["grad_norm"]  # fmt: skip

        f = jax.jit(step)
        out[name] = (partial(f, params, opt, x, y, xu), flops * (b + len(xu)))
    return out


def _scoring_variants(b: int) -> dict:
    import jax
    import numpy as np
    from flax import nnx

    from rbcore import inference
    from rbcore.model import RBCNN
    from rbcore.preprocess import normalize_jax

    views = [inference.eval_view(RBCNN(rngs=nnx.Rngs(s))) for s in (0, 1)]
    gds, sts = tuple(g for g, _ in views), tuple(s for _, s in views)
    x = jax.device_put(np.random.default_rng(0).normal(size=(b, 29, 29, 3)).astype(np.float32))
    chunk = inference.INFERENCE_CHUNK

    @partial(jax.jit, static_argnums=0)
    def separate(graphdefs, states, x):  # the plain pass: each model on its own
        def logits(xc):
            xn = normalize_jax(xc)
            return tuple(nnx.merge(g, s)(xn) for g, s in zip(graphdefs, states, strict=True))

        return jax.lax.map(logits, x.reshape(b // chunk, chunk, *x.shape[1:]))

    @partial(jax.jit, static_argnums=0)
    def direct(graphdefs, states, x):  # the shared pass with conv2d_1 and its pool direct
        from rbcore import model

        with _swapped(model, "_pooled_conv1", model._direct_pooled_conv1):
            return inference._forward.__wrapped__(graphdefs, states, x)

    fl = 2 * b * FLOPS_INFERENCE
    return {
        "shared conv1": (partial(inference._forward, gds, sts, x), fl),
        "per model": (partial(separate, gds, sts, x), fl),
        "direct conv1": (partial(direct, gds, sts, x), fl),
    }


def _gemm(n: int = 2048):
    import jax
    import jax.numpy as jnp
    import numpy as np

    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)).astype(np.float32))
    f = jax.jit(lambda a, b: a @ b)
    return partial(f, a, a), 2 * n**3


def _interleaved(variants: dict, rounds: int, seconds: float) -> dict:
    """{name: median GFLOP/s over the rounds}, variants timed in turn within each round."""
    import jax
    import numpy as np

    for f, _ in variants.values():
        jax.block_until_ready(f())
        jax.block_until_ready(f())
    rates = {k: [] for k in variants}
    for _ in range(rounds):
        for k, (f, flops) in variants.items():
            n, t0 = 0, time.perf_counter()
            while n == 0 or time.perf_counter() - t0 < seconds:
                jax.block_until_ready(f())
                n += 1
            rates[k].append(n * flops / (time.perf_counter() - t0) / 1e9)
    return {k: float(np.median(v)) for k, v in rates.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of interleaved timing")
    parser.add_argument("--seconds", type=float, default=0.6, help="seconds per variant per round")
    parser.add_argument(
        "--resnet", action="store_true",
        help="time the paper's ResNet's training steps instead (pieces of 64, one pass, 16)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    per_sample = {"supervised": FLOPS_SUPERVISED, "vat": FLOPS_VAT}
    if args.resnet:
        flops = resnet_flops()
        per_sample = {"resnet supervised": flops["supervised"], "resnet vat": flops["vat"]}
        groups = {
            g: _train_variants(alpha, 128, per_sample[g], "PaperResNet")
            for g, alpha in (("resnet supervised", 0.0), ("resnet vat", 1.0))
        }
    else:
        groups = {
            "supervised": _train_variants(0.0, 128, FLOPS_SUPERVISED),
            "vat": _train_variants(1.0, 128, FLOPS_VAT),
            "scoring (per model)": _scoring_variants(1024),
        }
    variants = {"gemm": _gemm()}
    for g, vs in groups.items():
        variants.update({(g, k): v for k, v in vs.items()})
    rates = _interleaved(variants, args.rounds, args.seconds)
    bound = rates.pop("gemm")
    print(f"bound: {bound:,.1f} GFLOP/s (median of the rounds)")
    for (g, k), r in rates.items():
        n = r * 1e9 / per_sample.get(g, FLOPS_INFERENCE)
        print(f"{g}, {k}: {n:,.0f} samples/s, {r / bound:.0%} of the bound")


if __name__ == "__main__":
    main()
