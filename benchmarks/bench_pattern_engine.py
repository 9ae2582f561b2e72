"""Speed of the pattern engine: batch bars/s over 1,000,000 bars and ms per streaming update.

Run from the repository root:

    .venv/bin/python benchmarks/bench_pattern_engine.py

BLAS and numpy are pinned to one thread before numpy is imported, so the numbers are per core
(the Lambda functions run on one vCPU's worth of threads). Prints markdown tables.

Before and after in one run: the engine as it was at ``--baseline`` (a git revision; by default
the last one before the streaming rewrite of issue 14) is loaded from git next to the current one,
and the two take turns on the same inputs, so machine load (the machine is shared) affects both
alike (batch runs alternate; streaming alternates by blocks of 500 updates). Every result of the
two is compared too: the run stops if a single match or confidence differs. ``--baseline ''`` measures the current engine alone (for a checkout without git history).
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

from pattern_engine import CONFIRM_BARS, WINDOW  # noqa: E402
from pattern_engine import engine  # noqa: E402
from pattern_engine.synthetic import random_walk  # noqa: E402

# The engine before issue 14 (streaming prefilter + vectorised confirmation; batch as first written).
BASELINE_REVISION = "4e03579"
ENGINE_PATH = "lambda_src/pattern_engine/engine.py"


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


def load_baseline(revision: str) -> ModuleType | None:
    """The engine module as it was at ``revision``, or None (with a note) where git can't supply it."""
    try:
        source = subprocess.run(["git", "show", f"{revision}:{ENGINE_PATH}"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"(no baseline: git could not show {revision}:{ENGINE_PATH}: {exc})\n")
        return None
    name = "pattern_engine_baseline"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "engine.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look the module up while the class is created
        spec.loader.exec_module(module)
    return module


def as_rows(matches) -> list[tuple]:
    """Comparable plain values of matches from either engine, confidences to the bit."""
    return [(m.pattern, m.start, m.end, m.confidence.hex(), m.extrema) for m in matches]


def check_identical(what: str, current, baseline) -> None:
    if as_rows(current) != as_rows(baseline):
        raise SystemExit(f"results differ from the baseline: {what}")


def bench_batch(engines: dict[str, ModuleType], n_bars: int, repeats: int) -> dict[str, dict]:
    bars = random_walk(n_bars, seed=2026)
    results = {label: module.detect(bars) for label, module in engines.items()}  # warm-up
    if "baseline" in results:
        check_identical(f"detect over {n_bars:,} bars", results["current"], results["baseline"])
    wall = {label: [] for label in engines}
    cpu = {label: [] for label in engines}
    labels = list(engines)
    for repeat in range(repeats):
        for label in labels[repeat % 2:] + labels[:repeat % 2]:  # alternate which goes first
            start, cpu_start = time.perf_counter(), time.process_time()
            engines[label].detect(bars)
            wall[label].append(time.perf_counter() - start)
            cpu[label].append(time.process_time() - cpu_start)
    return {label: {"bars": n_bars, "best": min(wall[label]), "median": float(np.median(wall[label])),
                    "cpu_median": float(np.median(cpu[label])), "matches": len(results[label])}
            for label in engines}


def newest_window_reports(module: ModuleType, close: np.ndarray) -> bool:
    """Whether an update goes past the newest-window check: for the baseline, its prefilter passed
    and the vectorised confirmation ran; for the current engine, the newest window reports a
    pattern and the earlier windows are checked."""
    return bool(module._newest_window_candidates(close, WINDOW, module._pattern_ids(None)).any())


def bench_streaming(engines: dict[str, ModuleType], n_updates: int, history: int, as_lists: bool,
                    tries: int, block: int = 500) -> dict[str, dict]:
    bars = random_walk(n_updates + history, seed=2027)
    if as_lists:
        bars = {name: values.tolist() for name, values in bars.items()}
    close = np.asarray(bars["close"])

    def update(i: int) -> dict:
        # The consumer hands over each symbol's recent bars (here the last `history`). Built per
        # call, as the consumer does: 20,000 prebuilt updates would make every full pass of the
        # garbage collector (which the engine's small objects trigger) cost ~100 ms.
        newest = history + i
        return {name: values[newest - history:newest] for name, values in bars.items()}

    labels = list(engines)
    seconds = {label: np.full((tries, n_updates), np.inf) for label in labels}
    results = {label: [None] * n_updates for label in labels}
    # Engines take turns by blocks of updates, not update by update: interleaving every call
    # would have each run with the other's code and data in the CPU caches.
    for attempt in range(tries):
        for number, block_start in enumerate(range(0, n_updates, block)):
            for label in labels[number % 2:] + labels[:number % 2]:
                detect_latest = engines[label].detect_latest
                timings = seconds[label][attempt]
                found = results[label]
                for i in range(block_start, min(block_start + block, n_updates)):
                    recent = update(i)
                    start = time.perf_counter()
                    found[i] = detect_latest(recent)
                    timings[i] = time.perf_counter() - start
    if "baseline" in engines:
        for i in range(n_updates):
            check_identical(f"detect_latest at update {i}", results["current"][i], results["baseline"][i])
    stats = {}
    for label in labels:
        single = seconds[label][0] * 1000  # each update timed once, as a consumer meets it
        best = seconds[label].min(axis=0) * 1000  # least disturbed of `tries` timings of each update
        past_newest = sum(newest_window_reports(engines[label], close[newest - WINDOW:newest])
                          for newest in range(history, history + n_updates))
        stats[label] = {"updates": n_updates, "mean": single.mean(), "p50": np.median(single),
                        "p99": np.quantile(single, 0.99), "max": single.max(), "best_p99": np.quantile(best, 0.99),
                        "best_max": best.max(), "past_newest": past_newest / n_updates,
                        "matches": sum(len(found) for found in results[label])}
    return stats


def busy(iterations: int) -> float:
    total = 0.0
    for i in range(iterations):
        total += i * 0.5
    return total


def timed(iterations: int) -> float:
    start = time.perf_counter()
    busy(iterations)
    return time.perf_counter() - start


def noise_reference(target_ms: float, n_calls: int) -> dict:
    """Single timings of a loop that takes ``target_ms`` when undisturbed (its fastest of 20 runs):
    what preemption and the other jobs on this machine alone make of a call that long."""
    iterations = 1000
    while timed(iterations) < target_ms / 1000 and iterations < 10**8:
        iterations *= 2
    iterations = max(1, round(iterations * target_ms / 1000 / min(timed(iterations) for _ in range(20))))
    ms = np.array([timed(iterations) for _ in range(n_calls)]) * 1000
    return {"p50": np.median(ms), "p99": np.quantile(ms, 0.99), "best": ms.min()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--history", type=int, default=100)
    parser.add_argument("--tries", type=int, default=3, help="timings per streaming update")
    parser.add_argument("--baseline", default=BASELINE_REVISION,
                        help="git revision of the engine to compare with ('' for none)")
    args = parser.parse_args()

    print(f"Machine: {machine()}; load average before the run: {os.getloadavg()[0]:.2f}\n")
    engines = {"current": engine}
    baseline = load_baseline(args.baseline) if args.baseline else None
    if baseline is not None:
        engines["baseline"] = baseline
    names = {"current": "current", "baseline": f"baseline ({args.baseline})"}

    batch = bench_batch(engines, args.bars, args.repeats)
    print(f"### Batch `detect` (random walk, 1.5% daily volatility, all 13 patterns, {args.repeats} runs each)\n")
    print("| engine | bars | best s | median s | bars/s (best) | bars/s (median) "
          "| bars per CPU-second (median) | matches |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, b in batch.items():
        print(f"| {names[label]} | {b['bars']:,} | {b['best']:.3f} | {b['median']:.3f} | "
              f"{b['bars'] / b['best'] / 1e6:.2f} M | {b['bars'] / b['median'] / 1e6:.2f} M | "
              f"{b['bars'] / b['cpu_median'] / 1e6:.2f} M | {b['matches']:,} |")
    if baseline is not None:
        print(f"\nCurrent / baseline: {batch['baseline']['median'] / batch['current']['median']:.2f}x "
              f"(median), {batch['baseline']['cpu_median'] / batch['current']['cpu_median']:.2f}x (CPU); "
              f"results identical.")
    print()
    print(f"### Streaming `detect_latest` (one symbol, last {args.history} bars passed per update, "
          f"{args.updates:,} updates)\n")
    print("| engine | input | mean ms | p50 ms | p99 ms | max ms | p99 ms, best of "
          f"{args.tries} | max ms, best of {args.tries} | updates past the newest window | matches |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for as_lists in (False, True):
        streaming = bench_streaming(engines, args.updates, args.history, as_lists, args.tries)
        for label, s in streaming.items():
            print(f"| {names[label]} | {'Python lists' if as_lists else 'numpy arrays'} | {s['mean']:.4f} | "
                  f"{s['p50']:.4f} | {s['p99']:.4f} | {s['max']:.3f} | {s['best_p99']:.4f} | "
                  f"{s['best_max']:.3f} | {s['past_newest']:.1%} | {s['matches']} |")
    # What preemption alone does to a call that long: a loop costing the current engine's p99 (best
    # of tries, Python lists), timed as often as the updates.
    reference = noise_reference(streaming["current"]["best_p99"], args.updates)
    print(f"| reference: constant work | none | | {reference['p50']:.4f} | {reference['p99']:.4f} | | "
          f"{reference['best']:.4f} | | | |")
    print(f"\n(window {WINDOW}, confirmation zone {CONFIRM_BARS} bars. mean/p50/p99/max: each update timed "
          f"once; best of {args.tries}: each update's least disturbed timing, i.e. its cost without "
          f"preemption by other jobs. Updates past the newest window: baseline, its prefilter passed and "
          f"the vectorised confirmation ran; current, the newest window reports a pattern and the "
          f"earlier windows are checked. Reference: a loop that takes the current engine's p99 (best of "
          f"{args.tries}, Python lists) when undisturbed, timed {args.updates:,} times: what the other "
          f"jobs on the machine alone make of a call that long."
          + (" Results identical to the baseline on every update.)" if baseline is not None else ")"))
    print(f"\nLoad average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
