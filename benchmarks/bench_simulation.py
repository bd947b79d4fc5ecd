"""Throughput of the survey simulator (the deployment stream's population).

Prints `simulation: N triplets/s` (wall clock, the stream kind, one night, `--threads`
threads) and the same per CPU second of this process, so a busy machine can be told apart
from a slow simulator. The goal of issue 3 is >= 10,000 triplets/s on 2 cores (one Tomo-e
night of 10^6 candidates in under two minutes).

    .venv/bin/python benchmarks/bench_simulation.py [--n 100000] [--threads 2] [--kind stream]

Run it on a quiet machine: the number scales with the free cores (`uptime` is printed).
"""

from __future__ import annotations

import argparse
import os
import time

from rbcore.simulation import simulate_candidates


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100_000, help="triplets to simulate")
    ap.add_argument("--threads", type=int, default=2, help="simulation threads")
    ap.add_argument("--kind", default="stream", choices=("train", "test", "stream"))
    args = ap.parse_args()

    simulate_candidates(2_000, kind=args.kind, seed=1, n_threads=args.threads)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    images, _ = simulate_candidates(args.n, kind=args.kind, seed=0, n_threads=args.threads)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert images.shape == (args.n, 29, 29, 3)
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.threads} threads, kind {args.kind}"
    )
    print(f"per CPU second: {args.n / cpu:,.0f} triplets")
    print(f"simulation: {args.n / wall:,.0f} triplets/s")


if __name__ == "__main__":
    main()
