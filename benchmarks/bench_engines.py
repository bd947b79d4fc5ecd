"""Scoring engines side by side: rbcore's JAX path, plain JAX, onnxruntime and PyTorch eager.

For every network rbcore builds (`rbcore.model.build_model`), on the same weights, prints the
scoring throughput (raw triplets in, normalization included, logits out) of

    rbcore JAX      rbcore.inference.Scorer (the default engine "jax")
    plain JAX       jax.jit of the exported function (rbcore.onnx_export.logits_function)
    onnxruntime     rbcore.onnx_export.OnnxScorer (engine "onnx"), intra-op threads = cores
    PyTorch eager   the same layers in torch (`TORCH_FORMS`), torch threads = cores

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

from _bound import FLOPS_INFERENCE, gemm_gflops, resnet_flops

import rbcore  # noqa: F401  (sets the XLA flags before jax starts)

WEEK_CANDIDATES = 57_422_837  # rbcore.deploy.TALK_WEEK_CANDIDATES (the talk's week)
GOAL_FRACTION, GOAL_WEEK_H = 0.80, 2.5  # issue 24


def _t(torch, a):
    import numpy as np

    return torch.from_numpy(np.array(a, np.float32))  # a writable copy


def torch_normalize(torch, x):
    """rbcore.preprocess.normalize_jax in torch: raw NHWC, NaN masked -> [0, 1] NHWC."""
    finite = torch.isfinite(x).flatten(1, 2)
    flat = x.flatten(1, 2)
    lo = torch.where(finite, flat, torch.inf).amin(1, keepdim=True)
    hi = torch.where(finite, flat, -torch.inf).amax(1, keepdim=True)
    span = hi - lo
    ok = torch.isfinite(span) & (span > 0)
    out = (torch.where(finite, flat, 0.0) - torch.where(ok, lo, 0.0)) / torch.where(ok, span, 1.0)
    return torch.where(finite & ok, out, 0.0).reshape(x.shape)


def _torch_conv(torch, layer):
    """An nnx.Conv ('VALID' or TensorFlow's 'SAME') as a function of NCHW tensors."""
    import numpy as np

    f = torch.nn.functional
    k, b = _t(torch, layer.kernel[...]).permute(3, 2, 0, 1).contiguous(), _t(torch, layer.bias[...])
    stride, size = int(np.ravel(layer.strides)[0]), k.shape[-1]
    same = str(layer.padding).upper() == "SAME"

    def conv(x):
        if same:  # pad total max((out - 1) * s + k - n, 0), floor of half before
            n = x.shape[-1]
            pad = max((-(-n // stride) - 1) * stride + size - n, 0)
            x = f.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
        return f.conv2d(x, k, b, stride=stride)

    return conv


def _torch_linear(torch, layer):
    k, b = _t(torch, layer.kernel[...]), _t(torch, layer.bias[...])
    return lambda x: x @ k + b


def torch_rbcnn(model, torch):
    """The talk's CNN in torch with `model`'s weights: raw NHWC triplets -> logits."""
    f = torch.nn.functional
    conv1, conv2 = _torch_conv(torch, model.conv1), _torch_conv(torch, model.conv2)
    d1, d2, d3 = (_torch_linear(torch, getattr(model, f"dense{i}")) for i in (1, 2, 3))

    def net(x):
        y = torch_normalize(torch, x).permute(0, 3, 1, 2)
        y = f.max_pool2d(f.relu(conv1(y)), 2)
        y = f.max_pool2d(f.relu(conv2(y)), 2)
        y = y.permute(0, 2, 3, 1).flatten(1)  # HWC order, as the JAX model flattens
        return d3(f.relu(d2(f.relu(d1(y)))))[:, 0]

    return net


def torch_resnet(model, torch):
    """The paper's ResNet (rbcore.resnet.PaperResNet) in torch with `model`'s weights."""
    f = torch.nn.functional

    def frn(m):
        g, b, tau, eps = (_t(torch, getattr(m, k)[...]).view(1, -1, 1, 1)
                          for k in ("gamma", "beta", "tau", "eps"))  # fmt: skip

        def apply(x):
            nu2 = x.square().sum((2, 3), keepdim=True)
            return torch.maximum(g * (x * torch.rsqrt(nu2 + 1e-6 + f.softplus(eps))) + b, tau)

        return apply

    def block(m):
        frn1, frn2 = frn(m.frn1), frn(m.frn2)
        conv1, conv2 = _torch_conv(torch, m.conv1), _torch_conv(torch, m.conv2)
        spatial = _torch_conv(torch, m.scse.spatial)
        squeeze, excite = _torch_linear(torch, m.scse.squeeze), _torch_linear(torch, m.scse.excite)
        short = _torch_conv(torch, m.shortcut) if m.shortcut is not None else (lambda x: x)

        def apply(x):
            h = conv2(frn2(conv1(frn1(x))))
            channel = torch.sigmoid(excite(f.relu(squeeze(h.mean((2, 3))))))[:, :, None, None]
            return short(x) + torch.sigmoid(spatial(h)) * h + channel * h

        return apply

    def pool(x):  # TensorFlow's 'same' 2x2 max-pool: an odd edge padded at the end
        return f.max_pool2d(f.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2), value=-torch.inf), 2)

    conv_in, conv64, conv128 = (_torch_conv(torch, getattr(model, k))
                                for k in ("conv_in", "conv64", "conv128"))  # fmt: skip
    features = [_torch_conv(torch, c) for c in model.feature_convs]
    b64, b128, b256s2, b256 = (block(getattr(model, k))
                               for k in ("block64", "block128", "block256s2", "block256"))  # fmt: skip
    dense = _torch_linear(torch, model.dense)

    def net(x):
        y = f.relu(conv_in(torch_normalize(torch, x).permute(0, 3, 1, 2)))
        for c in features:
            y = f.relu(c(y))
        y = b64(f.relu(conv64(pool(y))))
        y = b256(b256s2(b128(f.relu(conv128(pool(y))))))
        return dense(y.mean((2, 3)))[:, 0]

    return net


TORCH_FORMS = {"RBCNN": torch_rbcnn, "PaperResNet": torch_resnet}


def engines(model, images, batch_size: int, cores: int) -> dict:
    """{engine name: callable scoring `images` (returns the count)} and the check logits."""
    import jax
    import numpy as np

    from rbcore.inference import Scorer
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
    form = TORCH_FORMS.get(type(model).__name__)
    if form is None:
        print(f"# PyTorch eager: no torch form of {type(model).__name__} here", file=sys.stderr)
        return out, logits
    torch.set_num_threads(cores)
    net = form(model, torch)
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
    from rbcore.onnx_export import DEFAULT_ENGINE, OnnxScorer, cpu_cores
    from rbcore.simulation import simulate_candidates

    cores = cpu_cores()
    print(f"# {jax.devices()[0].platform}, {cores} cores; load {os.getloadavg()}; default "
          f"engine {DEFAULT_ENGINE!r}", file=sys.stderr)  # fmt: skip
    images, _ = simulate_candidates(args.samples, kind="stream", seed=123, boost=1.0)
    images = np.ascontiguousarray(images, np.float32)
    flops_of = {"RBCNN": FLOPS_INFERENCE, "PaperResNet": resnet_flops()["inference"]}
    fractions = {}
    for arch in rbmodel.ARCHITECTURES:
        model = rbmodel.build_model({"architecture": arch}, seed=0)
        model.eval()
        flops = flops_of[arch]  # _bound.py's counts (the ResNet's with its 'same' padding)
        # the same work per call for every network: fewer cutouts for a costlier one
        n = int(min(len(images), max(256, len(images) * FLOPS_INFERENCE / flops)))
        fns, logits = engines(model, images[:n], min(args.batch_size, n), cores)
        diffs = {k: float(np.abs(v - logits["rbcore JAX"]).max()) for k, v in logits.items()}
        spread = float(np.std(logits["rbcore JAX"]))
        print(f"# {arch}: {flops / 1e6:.2f} MFLOP per sample; largest logit difference from "
              f"rbcore JAX: {diffs} (logits' standard deviation {spread:.3g})",
              file=sys.stderr)  # fmt: skip
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
