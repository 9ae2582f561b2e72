"""Seeded synthetic bars for tests, benchmarks and the demo: random walks and planted patterns.

One copy, used by the engine's and the handlers' tests, the integration tests, benchmarks/ and the
demo; it only needs numpy and does not run inside the detection path. `planted` and `random_walk`
give columns (what the engine takes); `bar_records` and `planted_bar_records` give the same bars as
stream records (what producers put on MarketDataStream and the API accepts).

Random walk
    Closes follow a geometric random walk from 100 with daily log-return volatility ``daily_vol``.
    Each bar opens at the previous close; high and low extend the open-close range by half-normal
    amounts of 0.5 x daily_vol (relative).

Planted pattern
    A template of turning points (level relative to E1 = 1.0) per pattern name, drawn as straight legs
    between them: a lead-in leg into E1, the pattern's extrema, and a lead-out leg. Each leg is
    ``LEG_BARS`` = 6 bars (13 for double tops and bottoms), jittered by -1..+1 bar. Distances from
    E1's level are multiplied by a common amplitude drawn from [0.8, 1.2] and, except for the trendline
    triangles, by a factor from [0.9, 1.1] per group of equal levels, so planted equalities (shoulders,
    rectangle sides, flat triangle sides, the two tops) stay exact.
    The template's closes are multiplied by (1 + noise x N(0, 1)) independently per bar: ``noise`` is
    the bar noise as a fraction of price (0.001 = 0.1%). The planted segment is embedded between a
    random-walk prefix and suffix (daily volatility 1.5%) and starts at the prefix's last close.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LEG_BARS = 6
PREFIX_BARS = 60
SUFFIX_BARS = 12
WALK_VOL = 0.015
DAY_SECONDS = 86_400
RECORD_FIELDS = ("open", "high", "low", "close")

# Turning points after the lead-in start, as levels relative to E1 (= 1.0). The first entry is the
# lead-in start, the last the lead-out end; everything between is the pattern's planted extrema.
_TEMPLATES: dict[str, tuple[float, ...]] = {
    "head-and-shoulders": (0.92, 1.00, 0.95, 1.06, 0.95, 1.00, 0.93),
    "broadening-top": (0.93, 1.00, 0.96, 1.03, 0.93, 1.06, 0.97),
    "triangle-top": (0.90, 1.00, 0.90, 0.97, 0.93, 0.95, 0.90),
    "rectangle-top": (0.93, 1.00, 0.95, 1.00, 0.95, 1.00, 0.94),
    "double-top": (0.92, 1.00, 0.93, 1.00, 0.93),
    "ascending-triangle": (0.90, 1.00, 0.91, 1.00, 0.955, 1.00, 0.94),
    "descending-triangle": (0.86, 1.00, 0.90, 0.965, 0.90, 0.93, 0.86),
    "symmetric-triangle": (0.80, 1.00, 0.85, 0.964, 0.886, 0.928, 0.85),
}
_MIRRORS = {
    "inverse-head-and-shoulders": "head-and-shoulders",
    "broadening-bottom": "broadening-top",
    "triangle-bottom": "triangle-top",
    "rectangle-bottom": "rectangle-top",
    "double-bottom": "double-top",
}
# Double tops need more than 22 bars between the tops; two legs of 12-14 bars give 24-28.
_DOUBLE_LEG_BARS = 13


@dataclass(frozen=True)
class PlantedSeries:
    bars: dict[str, np.ndarray]
    pattern: str
    extrema: tuple[int, ...]  # bar indices of the planted E1..E5 (E1, trough, E2 for doubles)


def random_walk(n: int, seed: int, daily_vol: float = WALK_VOL, start: float = 100.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0.0, daily_vol, n)))
    return _bars_from_closes(close, rng, daily_vol)


def _bars_from_closes(close: np.ndarray, rng: np.random.Generator, daily_vol: float) -> dict[str, np.ndarray]:
    n = close.size
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = 0.5 * daily_vol
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, wick, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, wick, n)))
    volume = rng.integers(100_000, 1_000_000, n).astype(np.float64)
    timestamp = np.arange(n, dtype=np.int64) * 86_400 + 1_600_000_000
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume, "timestamp": timestamp}


def planted(pattern: str, noise: float, seed: int) -> PlantedSeries:
    """A random walk with one planted ``pattern`` whose bars carry ``noise`` (fraction of price)."""
    rng = np.random.default_rng(seed)
    mirrored = pattern in _MIRRORS
    levels = np.array(_TEMPLATES[_MIRRORS.get(pattern, pattern)])
    # Equal template levels (shoulders, rectangle sides, flat triangle sides) stay equal; each group
    # of equal levels gets its own distance from E1 varied, inside a common amplitude. Trendline
    # triangles only get the common amplitude so their slopes keep their ratios.
    amplitude = rng.uniform(0.8, 1.2)
    if pattern.endswith("triangle") and not pattern.startswith("triangle"):
        group_scale = np.ones(levels.size)
    else:
        distinct, group = np.unique(levels, return_inverse=True)
        group_scale = rng.uniform(0.9, 1.1, distinct.size)[group]
    levels = 1.0 + (levels - 1.0) * amplitude * group_scale
    if mirrored:
        levels = 2.0 - levels
    leg = _DOUBLE_LEG_BARS if pattern.startswith("double-") else LEG_BARS
    legs = leg + rng.integers(-1, 2, levels.size - 1)
    turns = np.concatenate([[0], np.cumsum(legs)])
    template = np.interp(np.arange(turns[-1] + 1), turns, levels)

    walk = random_walk(PREFIX_BARS, seed=int(rng.integers(2**31)))["close"]
    e1_price = walk[-1] / levels[0]
    segment = e1_price * template[1:] * (1 + noise * rng.normal(0.0, 1.0, template.size - 1))
    suffix_steps = np.exp(np.cumsum(rng.normal(0.0, WALK_VOL, SUFFIX_BARS)))
    suffix = segment[-1] * suffix_steps
    close = np.concatenate([walk, segment, suffix])
    bars = _bars_from_closes(close, rng, max(noise, 0.002))
    extrema = tuple(int(PREFIX_BARS - 1 + t) for t in turns[1:-1])
    return PlantedSeries(bars=bars, pattern=pattern, extrema=extrema)


def bar_records(symbol: str, bars: dict[str, np.ndarray], *, start: int | None = None, scale: float = 1.0) -> list[dict[str, Any]]:
    """Columns as stream records {"symbol", "timestamp", "open", "high", "low", "close", "volume"}, oldest first.

    `start` re-dates the bars to one a day from that epoch second (default: the columns' own
    timestamps); `scale` multiplies the prices (the generators start near 100).
    """
    count = len(bars["close"])
    timestamps = [start + DAY_SECONDS * i for i in range(count)] if start is not None else [int(t) for t in bars["timestamp"]]
    return [
        {
            "symbol": symbol,
            "timestamp": timestamps[i],
            **{price: float(bars[price][i]) * scale for price in RECORD_FIELDS},
            "volume": float(bars["volume"][i]),
        }
        for i in range(count)
    ]


def planted_bar_records(
    symbol: str, pattern: str = "head-and-shoulders", *, seed: int, noise: float = 0.001, start: int | None = None, scale: float = 1.0
) -> list[dict[str, Any]]:
    """`planted(pattern, noise, seed)` as stream records for `symbol` (see `bar_records`)."""
    return bar_records(symbol, planted(pattern, noise, seed).bars, start=start, scale=scale)


def is_recalled(series: PlantedSeries, matches, tolerance_bars: int = 2) -> bool:
    """A match of the planted name whose first and final extrema are within ``tolerance_bars``."""
    first, final = series.extrema[0], series.extrema[-1]
    return any(
        m.pattern == series.pattern
        and abs(m.extrema[0][0] - first) <= tolerance_bars
        and abs(m.extrema[-1][0] - final) <= tolerance_bars
        for m in matches
    )
