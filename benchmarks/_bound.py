"""The machine's compute bound, measured in the benchmark's own process.

Absolute throughputs do not carry from machine to machine (instruction set, cores, load), so
every benchmark line also prints its fraction of this bound: the float32 GFLOP/s of a large
matrix product (XLA:CPU, all threads), times the FLOPs per sample of the stage.
"""

from __future__ import annotations

import time

# FLOPs per sample, a multiply-add counting 2 (issue "every stage near the compute bound").
# Inference: conv 5x5x3->32 on 25x25 (3.00 M) + conv 3x3x32->64 on 10x10 (3.69 M) + dense
# 1600->128->64->1 (0.42 M).
FLOPS_INFERENCE = 7.11e6
# Supervised step: forward, weight gradients, input gradients of every layer but the first.
FLOPS_SUPERVISED = 18.34e6
# VAT step (128 labeled + 128 unlabeled, per sample of the 256): the labeled training pass,
# the clean, power-iteration and perturbed passes over all 256, as the issue counts it.
FLOPS_VAT = 50.9e6


def gemm_gflops(n: int = 2048, repeats: int = 7) -> float:
    """float32 GFLOP/s of an n x n x n matrix product (best of `repeats`, after compiling)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)).astype(np.float32))
    f = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(f(a, a))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, a))
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def fraction(rate: float, flops_per_sample: float, bound_gflops: float) -> float:
    """Fraction of the bound reached by `rate` samples/s of `flops_per_sample` FLOPs each."""
    return rate * flops_per_sample / (bound_gflops * 1e9)


def resnet_flops(projection_shortcut: str = "as_coded") -> dict[str, float]:
    """FLOPs per sample of the paper's ResNet (rbcore.resnet): inference, supervised, vat.

    Forward F is counted layer by layer (`rbcore.resnet.forward_flops`, ~214 M as coded); F1 is
    its first convolution. The steps by the same rules as the CNN's figures above:
    supervised = forward + weight gradients + input gradients of every layer but the first =
    3F - F1; VAT per sample of 128 labeled + 128 extra = the labeled training pass (3F - F1,
    half the samples) + the clean pass of the extra half (F, the labeled half's is shared) +
    the power iteration (forward and input gradients of every layer, 2F, all) + the perturbed
    pass with weight gradients (3F - F1, all).
    """
    from rbcore.model import build_model
    from rbcore.resnet import forward_flops

    layers = forward_flops(build_model({"architecture": "PaperResNet",
                                        "projection_shortcut": projection_shortcut}))  # fmt: skip
    f, f1 = float(sum(layers.values())), float(layers["conv_in"])
    s = 3 * f - f1
    return {"inference": f, "supervised": s, "vat": s / 2 + f / 2 + 2 * f + s}
