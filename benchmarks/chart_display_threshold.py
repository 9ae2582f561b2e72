"""Where to put the charts' display threshold: the confidence of chance matches, planted patterns and the
demo's real stocks, side by side (docs/charts.md).

- random walks: what chance alone produces (the same seeds as evaluate_pattern_engine.py's table);
- planted patterns at 0.2-0.5% bar noise: what a clean pattern scores (found by the engine);
- the demo's real stocks: the newest 750 split- and dividend-adjusted daily bars of AAPL, IBM, MSFT and GOOG
  (what `make demo` streams), every match the engine reports.

For each candidate threshold: the share of each group at or above it.

    pipenv run python benchmarks/chart_display_threshold.py [--walks 40] [--seeds 20]
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from pattern_charts.annotations import DISPLAY_CONFIDENCE_THRESHOLD  # noqa: E402
from pattern_engine import PATTERN_NAMES, detect  # noqa: E402
from pattern_engine.synthetic import is_recalled, planted, random_walk  # noqa: E402

from tooling.demo import REAL_SYMBOLS, real_bars  # noqa: E402

CANDIDATES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
NOISE_LEVELS = (0.002, 0.003, 0.005)
DEMO_BARS = 750


def random_walk_confidences(n_series: int, n_bars: int = 5_000) -> np.ndarray:
    values = []
    for i in range(n_series):
        volatility = 0.015 if i % 2 == 0 else 0.02
        values += [m.confidence for m in detect(random_walk(n_bars, seed=200_000 + i, daily_vol=volatility))]
    return np.asarray(values)


def planted_confidences(n_seeds: int) -> np.ndarray:
    values = []
    for k, noise in enumerate(NOISE_LEVELS):
        for pattern in PATTERN_NAMES:
            for i in range(n_seeds):
                series = planted(pattern, noise, seed=300_000 + 1_000 * k + i)
                hits = [m for m in detect(series.bars, patterns=[pattern]) if is_recalled(series, [m])]
                if hits:
                    values.append(max(m.confidence for m in hits))
    return np.asarray(values)


def demo_confidences() -> np.ndarray:
    values = []
    for symbol in REAL_SYMBOLS:
        rows = real_bars(symbol, DEMO_BARS)
        columns = {name: np.asarray([row[name] for row in rows], dtype=np.float64) for name in ("open", "high", "low", "close", "volume")}
        columns["timestamp"] = np.asarray([row["timestamp"] for row in rows], dtype=np.int64)
        values += [m.confidence for m in detect(columns)]
    return np.asarray(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walks", type=int, default=40, help="random walks of 5,000 bars")
    parser.add_argument("--seeds", type=int, default=20, help="planted series per pattern and noise level")
    args = parser.parse_args()
    groups = {
        f"random-walk matches ({args.walks} x 5,000 bars)": random_walk_confidences(args.walks),
        f"planted patterns found (13 patterns x {len(NOISE_LEVELS)} noise levels x {args.seeds})": planted_confidences(args.seeds),
        f"demo real-stock matches ({', '.join(REAL_SYMBOLS)}, newest {DEMO_BARS} days)": demo_confidences(),
    }
    for name, values in groups.items():
        q = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 0.9, 1.0])
        print(f"- {name}: n={len(values)}, min {q[0]:.2f}, quartiles {q[1]:.2f} / {q[2]:.2f} / {q[3]:.2f}, "
              f"90th pct {q[4]:.2f}, max {q[5]:.2f}")
    print()
    print("| share at or above | " + " | ".join(f"{t:.1f}" for t in CANDIDATES) + " |")
    print("|---|" + "---:|" * len(CANDIDATES))
    for name, values in groups.items():
        print(f"| {name} | " + " | ".join(f"{np.mean(values >= t):.0%}" for t in CANDIDATES) + " |")
    demo = groups[list(groups)[-1]]
    print(f"\nDISPLAY_CONFIDENCE_THRESHOLD = {DISPLAY_CONFIDENCE_THRESHOLD}: the demo draws "
          f"{int(np.sum(demo >= DISPLAY_CONFIDENCE_THRESHOLD))} of its {len(demo)} real-stock matches.")


if __name__ == "__main__":
    main()
