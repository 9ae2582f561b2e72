"""Hypothesis properties: any valid series is handled, and results keep their invariants."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pattern_engine import PATTERN_NAMES, detect, detect_latest


@st.composite
def valid_bars(draw, max_bars: int = 160):
    n = draw(st.integers(min_value=0, max_value=max_bars))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    volatility = draw(st.sampled_from([0.0, 1e-4, 0.003, 0.02, 0.08]))
    level = draw(st.sampled_from([0.01, 1.0, 97.3, 25_000.0]))
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, volatility, n)
    if n and draw(st.booleans()):
        # Stale quotes: runs of identical closes, as in thin trading.
        steps[rng.random(n) < 0.3] = 0.0
    close = level * np.exp(np.cumsum(steps))
    if draw(st.booleans()):
        close = np.round(close, 2).clip(0.01)
    wick = np.abs(rng.normal(0.0, volatility + 1e-6, n))
    bars = {"open": close, "high": close * (1 + wick), "low": close / (1 + wick), "close": close}
    if draw(st.booleans()):
        bars = {name: values.tolist() for name, values in bars.items()}
    return bars


def check_invariants(matches, close, n):
    for m in matches:
        assert m.pattern in PATTERN_NAMES
        assert 0.0 <= m.confidence <= 1.0
        bars = [b for b, _ in m.extrema]
        assert bars == sorted(set(bars))
        assert 0 <= m.start == bars[0] <= bars[-1] <= m.end < n
        assert m.end - m.start < 38
        assert all(price == close[b] for b, price in m.extrema)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_bars())
def test_any_valid_series_is_handled_and_results_keep_their_invariants(bars):
    close = np.asarray(bars["close"], dtype=np.float64)
    n = close.size
    matches = detect(bars)
    check_invariants(matches, close, n)
    latest = detect_latest(bars)
    check_invariants(latest, close, n)
    assert latest == [m for m in matches if m.end == n - 1]


@settings(max_examples=60, deadline=None)
@given(valid_bars(max_bars=120), st.integers(min_value=-20, max_value=20))
def test_rescaling_prices_by_a_power_of_two_changes_nothing_but_prices(bars, exponent):
    # Every test is relative to price, and scaling by 2**k is exact in floating point.
    factor = 2.0**exponent
    scaled = {name: np.asarray(values, dtype=np.float64) * factor for name, values in bars.items()}
    original = detect(bars)
    rescaled = detect(scaled)
    assert [(m.pattern, m.start, m.end, m.confidence) for m in rescaled] == [
        (m.pattern, m.start, m.end, m.confidence) for m in original
    ]
    assert [tuple(p for _, p in m.extrema) for m in rescaled] == [
        tuple(p * factor for _, p in m.extrema) for m in original
    ]


@settings(max_examples=60, deadline=None)
@given(valid_bars(max_bars=140), st.integers(min_value=1, max_value=60))
def test_matches_before_a_cut_do_not_depend_on_later_bars(bars, cut_back):
    n = len(bars["close"])
    cut = max(0, n - cut_back)
    head = {name: values[:cut] for name, values in bars.items()}
    assert detect(head) == [m for m in detect(bars) if m.end < cut]
