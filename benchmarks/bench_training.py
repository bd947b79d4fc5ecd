"""Throughput of the real/bogus models: inference, supervised and VAT training steps.

Prints the compute bound (`bound: G GFLOP/s`, a float32 GEMM timed in this process), then
`inference: N samples/s (F of the bound)`, `supervised: ...` and `vat: ...` (VAT: 128 labeled
+ 128 unlabeled per step, all 256 counted; F = N x FLOPs per sample / bound, see _bound.py),
timing the jitted device steps
of `rbcore.train` on random cutouts already on the device (the data pipeline runs in a
background thread during training and is not timed here). The talk's CNN first, then the
paper's ResNet (rbcore.resnet; lines `resnet inference: ...`, after its FLOPs per sample,
counted layer by layer: _bound.resnet_flops).

    .venv/bin/python benchmarks/bench_training.py [--seconds 10] [--batch-size 128]
        [--architecture RBCNN|PaperResNet ...] [--resnet-batch-size B]

Run it on a quiet machine: the numbers scale with the free cores (the load is printed);
benchmarks/bench_ab.py compares rbcore's fast paths with the plain ones within one process. The
XLA flags of rbcore/_xla.py apply (RBCORE_XLA_DEFAULTS=0 to compare without). glibc's malloc
can only be tuned at process start: the notebook runner gives its kernels
GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296
(rbcore.notebooks.MALLOC_TUNABLES); prefix the command with it to time what the notebooks get.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _bound import (
    FLOPS_INFERENCE,
    FLOPS_SUPERVISED,
    FLOPS_VAT,
    fraction,
    gemm_gflops,
    resnet_flops,
)

import rbcore  # noqa: F401  (sets the XLA flags before jax starts)


def _rate(fn, n_per_call: int, seconds: float) -> tuple[float, float]:
    """(samples per wall second, samples per CPU second of this process)."""
    import jax

    jax.block_until_ready(fn())  # compile
    jax.block_until_ready(fn())
    calls, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        out = fn()
        calls += 1
        if calls % 5 == 0:
            jax.block_until_ready(out)
            if time.perf_counter() - t0 >= seconds:
                break
    jax.block_until_ready(out)
    n = calls * n_per_call
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def _report(name: str, rates: tuple[float, float], flops: float, bound: float) -> None:
    frac = fraction(rates[0], flops, bound)
    print(f"{name}: {rates[0]:,.0f} samples/s ({frac:.0%} of the bound)", flush=True)
    # On stderr, so that stdout keeps its three lines: a shared machine lowers the first
    # number, much less the second (~ samples/s per busy core).
    print(
        f"  {name}: {rates[1]:,.0f} samples per CPU-second; load {os.getloadavg()[0]:.2f}",
        file=sys.stderr,
        flush=True,
    )


def _train_step_timer(alpha: float, x, y, architecture: str = "RBCNN"):
    """(a function running one training step, samples per step) for batch x, labels y."""
    from flax import nnx

    from rbcore.model import build_model
    from rbcore.train import TrainConfig
    from rbcore.train.step import make_optimizer, make_train_step

    b = len(x)
    config = TrainConfig(
        batch_size=b, unlabeled_batch_size=b, alpha=alpha, architecture=architecture
    )
    model = build_model(config.model_config, seed=0)
    model.train()
    gd_train, params, rest = nnx.split(model, nnx.Param, ...)
    model.eval()
    gd_eval = nnx.split(model, nnx.Param, ...)[0]
    optimizer = make_optimizer(config)
    step = make_train_step(config, gd_train, gd_eval)
    carry = {"params": params, "opt": optimizer.init(params), "i": 0}
    xu = x if alpha > 0 else x[:0]  # VAT: the same images stand in for the unlabeled batch

    def one():
        carry["params"], carry["opt"], aux = step(
            carry["params"], carry["opt"], rest, carry["i"], x, y, xu
        )
        carry["i"] += 1
        return aux["loss"]

    return one, b + len(xu)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per line")
    parser.add_argument("--batch-size", type=int, default=128, help="labeled (and unlabeled) batch")
    parser.add_argument(
        "--inference-batch-size", type=int, default=1024, help="predict_logits batch"
    )
    parser.add_argument("--only", choices=["inference", "supervised", "vat"], action="append")
    parser.add_argument(
        "--architecture", choices=["RBCNN", "PaperResNet"], action="append",
        help="model(s) to time (default both; the ResNet's lines start with 'resnet')",
    )  # fmt: skip
    parser.add_argument(
        "--resnet-batch-size", type=int, default=None,
        help="the ResNet's labeled (and unlabeled) batch (default --batch-size)",
    )  # fmt: skip
    parser.add_argument(
        "--resnet-inference-batch-size", type=int, default=256, help="its predict batch"
    )
    args = parser.parse_args(argv)

    import jax

    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind} x{jax.device_count()}; "
        f"load average {os.getloadavg()[0]:.2f}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
    )
    # The bound, measured before and after the stages (a change means the load changed).
    bound = gemm_gflops()
    print(f"bound: {bound:,.1f} GFLOP/s (float32 GEMM 2048^3, this process)", flush=True)
    only = args.only or ["inference", "supervised", "vat"]
    for arch in args.architecture or ["RBCNN", "PaperResNet"]:
        if arch == "RBCNN":
            flops = {"inference": FLOPS_INFERENCE, "supervised": FLOPS_SUPERVISED, "vat": FLOPS_VAT}
            _time_model(arch, "", flops, only, bound, args.batch_size, args.inference_batch_size,
                        args.seconds)  # fmt: skip
        else:
            flops = resnet_flops()
            inside, xla = _resnet_flop_checks()
            print(
                f"resnet FLOPs per sample: forward {flops['inference'] / 1e6:.2f} M (counted by "
                f"layer, rbcore.resnet.forward_flops; {inside / 1e6:.2f} M without the taps on "
                f"'same' padding, XLA's cost analysis {xla / 1e6:.2f} M), supervised step "
                f"{flops['supervised'] / 1e6:.1f} M, VAT step {flops['vat'] / 1e6:.1f} M",
                flush=True,
            )
            _time_model(arch, "resnet ", flops, only, bound, args.resnet_batch_size or
                        args.batch_size, args.resnet_inference_batch_size, args.seconds)  # fmt: skip
    print(f"bound at the end: {gemm_gflops():,.1f} GFLOP/s", flush=True)


def _resnet_flop_checks() -> tuple[float, float]:
    """(forward FLOPs without the padding taps, XLA's cost analysis of the forward pass)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from rbcore.model import build_model
    from rbcore.resnet import forward_flops

    model = build_model({"architecture": "PaperResNet"})
    inside = float(sum(forward_flops(model, count_padding=False).values()))
    graphdef, state = nnx.split(model)
    fwd = jax.jit(lambda st, x: nnx.merge(graphdef, st)(x))
    cost = fwd.lower(state, jnp.zeros((1, 29, 29, 3))).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return inside, float((cost or {}).get("flops", float("nan")))


def _time_model(arch, prefix, flops, only, bound, b, inference_b, seconds) -> None:
    """The inference, supervised and VAT lines of one architecture."""
    import jax
    import numpy as np

    from rbcore import inference
    from rbcore.model import build_model

    rng = np.random.default_rng(0)
    x = jax.device_put(rng.normal(size=(b, 29, 29, 3)).astype(np.float32))
    y = jax.device_put(rng.integers(0, 2, b).astype(np.int32))
    if "inference" in only:
        model = build_model({"architecture": arch}, seed=0)
        graphdef, state = inference.eval_view(model)
        xi = jax.device_put(rng.normal(size=(inference_b, 29, 29, 3)).astype(np.float32))
        fwd = lambda: inference._forward((graphdef,), (state,), xi)[0]  # noqa: E731
        _report(f"{prefix}inference", _rate(fwd, len(xi), seconds), flops["inference"], bound)
    for name, alpha in (("supervised", 0.0), ("vat", 1.0)):
        if name in only:
            rates = _rate(*_train_step_timer(alpha, x, y, arch), seconds)
            _report(f"{prefix}{name}", rates, flops[name], bound)


if __name__ == "__main__":
    main()
