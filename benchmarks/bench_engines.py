"""Scoring engines side by side: rbcore's JAX path, plain JAX, onnxruntime and PyTorch eager.

For every network rbcore builds (`rbcore.model.build_model`), on the same weights, prints the
scoring throughput (raw triplets in, normalization included, logits out) of

    rbcore JAX      rbcore.inference.Scorer (the default engine "jax")
    plain JAX       jax.jit of the exported function (rbcore.onnx_export.logits_function)
    onnxruntime     rbcore.onnx_export.OnnxScorer (engine "onnx"), intra-op threads = cores
    PyTorch eager   the same layers in torch (RBCNN only), torch threads = cores

and, for the deployment week, both of the week's models (the talk's CNN, Current and VAT) on
the two engines rbcore offers. Each line gives the median rate over the rounds, the spread
(min-max), and the median of the per-round fractions of the GEMM bound (`_bound.py`) measured
in the same round. The engines run interleaved, one timed slice each per round in a rotating
order, so that a load change on a shared machine hits every engine alike.

    .venv/bin/python benchmarks/bench_engines.py [--rounds 7] [--seconds 2] [--batch-size 1024]

PyTorch is a benchmark-only requirement: `pip install torch==2.13.0` (a CPU wheel; plain
`pip install torch` may pull a multi-GB CUDA build). Without it the PyTorch lines say so.

Goals of issue 24: the default scorer at >= 80 % of the bound for the talk's CNN, and the week
(57.4 M candidates through both models) under 2.5 h on 2 cores: the last lines say whether
this run reaches them (scoring alone; `bench_deployment.py --engine` runs the whole pipeline).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _bound import FLOPS_INFERENCE, gemm_gflops

import rbcore  # noqa: F401  (sets the XLA flags before jax starts)

WEEK_CANDIDATES = 57_422_837  # rbcore.deploy.TALK_WEEK_CANDIDATES (the talk's week)
GOAL_FRACTION, GOAL_WEEK_H = 0.80, 2.5  # issue 24


def conv_dense_flops(fn, x) -> float:
    """FLOPs per sample of the convolutions and matrix products in `fn`'s jaxpr at input x
    (a multiply-add counting 2): the count `_bound.FLOPS_INFERENCE` makes by hand."""
    import jax
    import numpy as np

    total = 0.0

    def walk(jaxpr):
        nonlocal total
        for eqn in jaxpr.eqns:
            name = eqn.primitive.name
            if name == "conv_general_dilated":
                out = eqn.outvars[0].aval.shape
                rhs = eqn.invars[1].aval.shape  # HWIO here (dimension_numbers of nnx.Conv)
                dn = eqn.params["dimension_numbers"].rhs_spec  # (O, I, spatial...)
                per_out = np.prod([rhs[d] for d in dn[1:]])
                total += 2.0 * np.prod(out) * per_out
            elif name == "dot_general":
                (lc, _), _ = eqn.params["dimension_numbers"]
                k = np.prod([eqn.invars[0].aval.shape[d] for d in lc])
                total += 2.0 * np.prod(eqn.outvars[0].aval.shape) * k
            for p in eqn.params.values():
                if hasattr(p, "jaxpr") and hasattr(p.jaxpr, "eqns"):
                    walk(p.jaxpr)

    walk(jax.make_jaxpr(fn)(x).jaxpr)
    return total / x.shape[0]


def torch_rbcnn(model, torch):
    """The talk's CNN in torch with `model`'s weights (NCHW inside, NHWC raw input)."""
    import numpy as np

    nn = torch.nn

    def t(a):
        return torch.from_numpy(np.array(a, np.float32))  # a writable copy

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(3, 32, 5), nn.Conv2d(32, 64, 3)
            self.dense1, self.dense2, self.dense3 = (nn.Linear(1600, 128), nn.Linear(128, 64),
                                                     nn.Linear(64, 1))  # fmt: skip
            for mine, theirs in ((self.conv1, model.conv1), (self.conv2, model.conv2)):
                mine.weight.data = t(theirs.kernel[...]).permute(3, 2, 0, 1).contiguous()
                mine.bias.data = t(theirs.bias[...])
            for mine, theirs in ((self.dense1, model.dense1), (self.dense2, model.dense2),
                                 (self.dense3, model.dense3)):  # fmt: skip
                mine.weight.data = t(theirs.kernel[...]).T.contiguous()
                mine.bias.data = t(theirs.bias[...])

        def forward(self, x):  # x: float32[N, 29, 29, 3] raw, NaN = masked
            finite = torch.isfinite(x)
            flat = x.flatten(1, 2)
            lo = torch.where(finite.flatten(1, 2), flat, torch.inf).amin(1, keepdim=True)
            hi = torch.where(finite.flatten(1, 2), flat, -torch.inf).amax(1, keepdim=True)
            span = hi - lo
            ok = torch.isfinite(span) & (span > 0)
            xn = (torch.where(finite.flatten(1, 2), flat, 0.0) - torch.where(ok, lo, 0.0)) / (
                torch.where(ok, span, 1.0)
            )
            xn = torch.where(finite.flatten(1, 2) & ok, xn, 0.0).reshape(x.shape)
            f = nn.functional
            y = f.max_pool2d(f.relu(self.conv1(xn.permute(0, 3, 1, 2))), 2)
            y = f.max_pool2d(f.relu(self.conv2(y)), 2)
            y = y.permute(0, 2, 3, 1).flatten(1)  # HWC order, as the JAX model flattens
            y = f.relu(self.dense2(f.relu(self.dense1(y))))
            return self.dense3(y)[:, 0]

    return Net().eval()


def engines(model, images, batch_size: int, cores: int) -> dict:
    """{engine name: callable scoring `images` (returns the count)} and the check logits."""
    import jax
    import numpy as np

    from rbcore.inference import Scorer
    from rbcore.model import RBCNN
    from rbcore.onnx_export import OnnxScorer, logits_function

    out, logits = {}, {}
    scorer = Scorer({"m": model}, batch_size)
    logits["rbcore JAX"] = scorer(images)["m"]
    out["rbcore JAX"] = lambda: len(scorer(images)["m"])

    plain = jax.jit(logits_function(model))
    batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]

    def run_plain():
        ys = [plain(b) for b in batches]
        jax.block_until_ready(ys)
        return sum(len(y) for y in ys), ys

    logits["plain JAX"] = np.concatenate(run_plain()[1])
    out["plain JAX"] = lambda: run_plain()[0]

    onnx = OnnxScorer({"m": model}, batch_size, threads=cores)
    logits["onnxruntime"] = onnx(images)["m"]
    out["onnxruntime"] = lambda: len(onnx(images)["m"])

    try:
        import torch
    except ImportError:
        print("# PyTorch eager: torch is not installed (pip install torch==2.13.0, a CPU "
              "wheel; benchmark only)", file=sys.stderr)  # fmt: skip
        return out, logits
    if not isinstance(model, RBCNN):
        print(f"# PyTorch eager: no torch form of {type(model).__name__} here", file=sys.stderr)
        return out, logits
    torch.set_num_threads(cores)
    net = torch_rbcnn(model, torch)
    tb = [torch.from_numpy(b) for b in batches]

    def run_torch():
        with torch.inference_mode():
            return [net(b) for b in tb]

    logits["PyTorch eager"] = np.concatenate([y.numpy() for y in run_torch()])
    out["PyTorch eager"] = lambda: sum(len(y) for y in run_torch())
    return out, logits


def interleaved(fns: dict, rounds: int, seconds: float) -> tuple[dict, dict, list]:
    """{name: [rate per round]}, {name: [samples per CPU-second of this process, per round]}
    and the GEMM bound per round, the names in rotating order.

    On a loaded machine the wall-clock rate falls with the share of the cores the process gets,
    the per-CPU-second rate much less (spinning threads count as busy).
    """
    rates, cpu_rates = {k: [] for k in fns}, {k: [] for k in fns}
    bounds = []
    names = list(fns)
    for r in range(rounds):
        bounds.append(gemm_gflops(repeats=3))
        for k in names[r % len(names) :] + names[: r % len(names)]:
            time.sleep(0.2)  # let the previous engine's spinning threads go idle
            n, t0, c0 = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - t0 < seconds:
                n += fns[k]()
            rates[k].append(n / (time.perf_counter() - t0))
            cpu_rates[k].append(n / (time.process_time() - c0))
        print(f"# round {r + 1}/{rounds}: bound {bounds[-1]:,.1f} GFLOP/s, load "
              f"{os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)  # fmt: skip
    return rates, cpu_rates, bounds


def report(label: str, rates: list, cpu: list, bounds: list, flops: float) -> float:
    """Print one line; return the median per-round fraction of the bound."""
    fr = [r * flops / (b * 1e9) for r, b in zip(rates, bounds, strict=True)]
    med = statistics.median(rates)
    print(f"{label}: {med:,.0f} samples/s [{min(rates):,.0f}-{max(rates):,.0f}], "
          f"{statistics.median(fr):.0%} of the bound [{min(fr):.0%}-{max(fr):.0%}]; "
          f"{statistics.median(cpu):,.0f} per CPU-second", flush=True)  # fmt: skip
    return statistics.median(fr)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per slice")
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per engine call")
    parser.add_argument("--samples", type=int, default=4096, help="cutouts scored per call")
    args = parser.parse_args(argv)

    import jax
    import numpy as np

    from rbcore import model as rbmodel
    from rbcore.inference import Scorer
    from rbcore.onnx_export import DEFAULT_ENGINE, OnnxScorer, cpu_cores, logits_function
    from rbcore.simulation import simulate_candidates

    cores = cpu_cores()
    print(f"# {jax.devices()[0].platform}, {cores} cores; load {os.getloadavg()}; default "
          f"engine {DEFAULT_ENGINE!r}", file=sys.stderr)  # fmt: skip
    images, _ = simulate_candidates(args.samples, kind="stream", seed=123, boost=1.0)
    images = np.ascontiguousarray(images, np.float32)
    archs = [a for a in ("RBCNN", "PaperResNet") if a == "RBCNN" or hasattr(rbmodel, a)]
    fractions = {}
    for arch in archs:
        model = rbmodel.build_model({"architecture": arch}, seed=0)
        model.eval()
        flops = conv_dense_flops(logits_function(model), images[:8])
        if arch == "RBCNN":
            assert abs(flops - FLOPS_INFERENCE) < 0.01 * FLOPS_INFERENCE, flops
        fns, logits = engines(model, images, args.batch_size, cores)
        diffs = {k: float(np.abs(v - logits["rbcore JAX"]).max()) for k, v in logits.items()}
        print(f"# {arch}: {flops / 1e6:.2f} MFLOP per sample; largest logit difference from "
              f"rbcore JAX: {diffs}", file=sys.stderr)  # fmt: skip
        rates, cpu, bounds = interleaved(fns, args.rounds, args.seconds)
        print(f"== {arch}, one model (bound {statistics.median(bounds):,.1f} GFLOP/s median, "
              f"{min(bounds):,.1f}-{max(bounds):,.1f})", flush=True)  # fmt: skip
        for k, r in rates.items():
            fractions[(arch, k)] = report(f"{arch} {k}", r, cpu[k], bounds, flops)

    # The week: Current and VAT, both the talk's CNN, through each engine rbcore offers.
    pair = {k: rbmodel.build_model({"architecture": "RBCNN"}, seed=s) for s, k in
            enumerate(("current", "vat"))}  # fmt: skip
    week = {"jax": Scorer(pair, args.batch_size), "onnx": OnnxScorer(pair, args.batch_size)}
    fns = {k: (lambda s=s: len(s(images)["vat"])) for k, s in week.items()}
    for s in week.values():
        s(images[: args.batch_size])
    rates, cpu, bounds = interleaved(fns, args.rounds, args.seconds)
    print("== the week's two models (candidates/s through both)", flush=True)
    hours = {}
    for k, r in rates.items():
        report(f"week scoring, engine {k}", r, cpu[k], bounds, 2 * FLOPS_INFERENCE)
        hours[k] = WEEK_CANDIDATES / statistics.median(r) / 3600
        print(f"  57.4 M candidates, scoring alone: {hours[k]:.2f} h", flush=True)

    f = fractions[("RBCNN", "rbcore JAX" if DEFAULT_ENGINE == "jax" else "onnxruntime")]
    print(
        f"goal, default scorer ({DEFAULT_ENGINE}) >= {GOAL_FRACTION:.0%} of the bound for "
        f"the talk's CNN: {f:.0%}, {'reached' if f >= GOAL_FRACTION else 'not reached'}"
    )
    h = hours[DEFAULT_ENGINE]
    print(
        f"goal, week < {GOAL_WEEK_H} h on {cores} cores: scoring alone {h:.2f} h "
        f"({'within' if h < GOAL_WEEK_H else 'over'} the goal before simulation and the "
        "database; bench_deployment.py --engine gives the pipeline's)"
    )


if __name__ == "__main__":
    main()
