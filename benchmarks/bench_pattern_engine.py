"""Speed of the pattern engine: batch bars/s over 1,000,000 bars and ms per streaming update.

Run from the repository root:

    pipenv run python benchmarks/bench_pattern_engine.py

BLAS and numpy are pinned to one thread before numpy is imported, so the numbers are per core
(the Lambda functions run on one vCPU's worth of threads). Prints markdown tables.
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from pattern_engine import CONFIRM_BARS, WINDOW, detect, detect_latest  # noqa: E402
from pattern_engine import engine  # noqa: E402
from pattern_engine.synthetic import random_walk  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
            f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")


def bench_batch(n_bars: int, repeats: int) -> dict:
    bars = random_walk(n_bars, seed=2026)
    detect(bars)  # warm-up: caches, page faults
    seconds = []
    cpu_seconds = []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        matches = detect(bars)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    return {"bars": n_bars, "best": min(seconds), "median": float(np.median(seconds)),
            "cpu_median": float(np.median(cpu_seconds)), "matches": len(matches)}


def bench_streaming(n_updates: int, history: int, as_lists: bool) -> dict:
    bars = random_walk(n_updates + history, seed=2027)
    if as_lists:
        bars = {name: values.tolist() for name, values in bars.items()}
    wanted = engine._pattern_ids(None)
    close = np.asarray(bars["close"])
    seconds = np.empty(n_updates)
    passed = 0
    alerts = 0
    for i in range(n_updates):
        newest = history + i
        # The consumer hands over each symbol's recent bars (here the last `history`).
        recent = {name: values[newest - history:newest] for name, values in bars.items()}
        start = time.perf_counter()
        matches = detect_latest(recent)
        seconds[i] = time.perf_counter() - start
        alerts += len(matches)
        passed += engine._newest_window_candidates(close[newest - WINDOW:newest], WINDOW, wanted).any()
    ms = seconds * 1000
    return {"updates": n_updates, "mean": ms.mean(), "p50": np.median(ms), "p99": np.quantile(ms, 0.99),
            "max": ms.max(), "slow_path": passed / n_updates, "matches": alerts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--history", type=int, default=100)
    args = parser.parse_args()

    print(f"Machine: {machine()}; load average before the run: {os.getloadavg()[0]:.2f}\n")
    batch = bench_batch(args.bars, args.repeats)
    print("### Batch `detect` (random walk, 1.5% daily volatility, all 13 patterns)\n")
    print("| bars | best s | median s | bars/s (best) | bars/s (median) | bars per CPU-second (median) | matches |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {batch['bars']:,} | {batch['best']:.3f} | {batch['median']:.3f} | "
          f"{batch['bars'] / batch['best'] / 1e6:.2f} M | {batch['bars'] / batch['median'] / 1e6:.2f} M | "
          f"{batch['bars'] / batch['cpu_median'] / 1e6:.2f} M | {batch['matches']:,} |")
    print()
    print(f"### Streaming `detect_latest` (one symbol, last {args.history} bars passed per update, "
          f"{args.updates:,} updates)\n")
    print("| input | mean ms | p50 ms | p99 ms | max ms | updates on the slow path | matches |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for as_lists in (False, True):
        s = bench_streaming(args.updates, args.history, as_lists)
        label = "Python lists" if as_lists else "numpy arrays"
        print(f"| {label} | {s['mean']:.4f} | {s['p50']:.4f} | {s['p99']:.4f} | {s['max']:.3f} | "
              f"{s['slow_path']:.1%} | {s['matches']} |")
    print(f"\n(window {WINDOW}, confirmation zone {CONFIRM_BARS} bars; the slow path is the vectorised "
          f"confirmation run when the plain-Python prefilter cannot rule the newest window out)")


if __name__ == "__main__":
    main()
