"""Throughput of the deployment week: simulation, scoring by both models, the whole stream.

Prints on stdout the bound (a float32 GEMM timed in this process, see _bound.py), then

    simulation: N candidates/s       (simulate_candidates(kind="stream"), one thread)
    scoring: N candidates/s per model (normalization + both models in one XLA call; the
                                       candidates/s through both models is half of it)
    pipeline: N candidates/s         (rbcore.deploy.run_deployment: simulation in a
                                      background thread, both models, SQLite writes)
    full week: H h                   (the talk's 57,422,837 candidates at the pipeline rate)

and on stderr the CPU-seconds behind each number and the load average (`uptime`): on a shared
machine the wall-clock rates fall with the load, the per-CPU-second rates much less.

    .venv/bin/python benchmarks/bench_deployment.py [--seconds 20] [--models-dir DIR]
        [--engine jax|onnx]   (the scoring engine, rbcore.onnx_export.ENGINES; default: rbcore's)

The goal of issue 7: the full week in < 4 h on 2 CPU cores (>= 15,000 candidates/s per
model for scoring) and < 15 min on one GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from _bound import FLOPS_INFERENCE, fraction, gemm_gflops

import rbcore  # noqa: F401  (sets the XLA flags before jax starts)


def _timed(fn, seconds: float) -> tuple[int, float, float]:
    """Call fn() (returning a count) until `seconds` pass: (count, wall s, CPU s)."""
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        n += fn()
    return n, time.perf_counter() - t0, time.process_time() - c0


def _note(name: str, n: int, wall: float, cpu: float) -> None:
    # n / CPU-s x cores: the rate with every core free, if the work spreads over them all
    print(f"  {name}: {n:,} candidates in {wall:.1f} s wall, {cpu:.1f} CPU-s "
          f"({n / cpu:,.0f} per CPU-second, {n / cpu * os.cpu_count():,.0f}/s with all "
          f"{os.cpu_count()} cores free); load {os.getloadavg()[0]:.2f}",
          file=sys.stderr, flush=True)  # fmt: skip


def _models(models_dir):
    from flax import nnx

    from rbcore.inference import load_models
    from rbcore.model import RBCNN

    if models_dir:
        return load_models(models_dir)[0]
    # The speed of the forward pass does not depend on the weights.
    return {"current": RBCNN(rngs=nnx.Rngs(0)), "vat": RBCNN(rngs=nnx.Rngs(1))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per stage")
    parser.add_argument("--chunk-size", type=int, default=16_384, help="simulation chunk")
    parser.add_argument("--batch-size", type=int, default=1_024, help="scoring batch")
    parser.add_argument("--models-dir", default="", help="checkpoints current/ and vat/")
    parser.add_argument("--engine", choices=("jax", "onnx"), default=None,
                        help="scoring engine (default: rbcore's, DEFAULT_ENGINE)")  # fmt: skip
    parser.add_argument("--pipeline-candidates", type=int, default=65_536,
                        help="candidates of the end-to-end stream (2 nights)")  # fmt: skip
    args = parser.parse_args(argv)

    import jax

    from rbcore import deploy
    from rbcore.deploy.db import CandidateDB
    from rbcore.onnx_export import DEFAULT_ENGINE, make_scorer
    from rbcore.simulation import simulate_candidates

    engine = args.engine or DEFAULT_ENGINE

    print(f"# {jax.devices()[0].platform} x{jax.device_count()}; load {os.getloadavg()}; "
          f"engine {engine}", file=sys.stderr)  # fmt: skip
    bound = gemm_gflops()
    print(f"bound: {bound:,.1f} GFLOP/s (float32 GEMM 2048^3, this process)", flush=True)
    seeds = iter(range(10**6))

    def sim_once():
        imgs, _ = simulate_candidates(args.chunk_size, kind="stream", seed=next(seeds), boost=1.0)
        return len(imgs)

    sim_once()  # warm-up (lookup tables)
    n, wall, cpu = _timed(sim_once, args.seconds)
    print(f"simulation: {n / wall:,.0f} candidates/s", flush=True)
    _note("simulation", n, wall, cpu)

    images, _ = simulate_candidates(args.chunk_size, kind="stream", seed=123, boost=1.0)
    scorer = make_scorer(_models(args.models_dir), args.batch_size, engine)
    jax.block_until_ready(scorer(images[: args.batch_size]))  # compile

    def score_once():
        scorer(images)
        return len(images)

    n, wall, cpu = _timed(score_once, args.seconds)
    both = n / wall
    print(f"scoring: {2 * both:,.0f} candidates/s per model "
          f"({fraction(2 * both, FLOPS_INFERENCE, bound):.0%} of the bound; "
          f"both models together: {both:,.0f} candidates/s)", flush=True)  # fmt: skip
    _note("scoring (both models)", n, wall, cpu)

    per_night = max(args.pipeline_candidates // 2, 1)
    cfg = deploy.DeployConfig(n_nights=2, candidates_per_night=per_night,
                              chunk_size=min(args.chunk_size, per_night),
                              batch_size=args.batch_size, engine=engine)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        db = CandidateDB(f"sqlite:///{tmp}/bench.sqlite")
        c0 = time.process_time()
        tp = deploy.run_deployment(_models(args.models_dir), db, cfg, progress=False)
        cpu = time.process_time() - c0
    rate = tp["total_per_s"]
    print(f"pipeline: {rate:,.0f} candidates/s", flush=True)
    print(f"full week: {deploy.TALK_WEEK_CANDIDATES / rate / 3600:.1f} h", flush=True)
    _note("pipeline", tp["n_candidates"], tp["wall_s"], cpu)
    print(f"  pipeline stages: simulation {tp['simulation_per_s']:,.0f}/s, scoring "
          f"{tp['scoring_per_s']:,.0f}/s through both models (each timed while the other "
          f"stage ran)", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
