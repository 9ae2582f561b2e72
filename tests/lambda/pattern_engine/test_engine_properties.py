"""Hypothesis properties: any valid series is handled, results keep their invariants, and the
plain-Python streaming path gives exactly what the vectorised batch path gives."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pattern_engine import CONFIRM_BARS, PATTERN_NAMES, WINDOW, detect, detect_latest
from pattern_engine import engine
from pattern_engine.synthetic import planted


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


# --------------------------------------------------------------------------------------------
# The streaming path against the previous streaming algorithm
# --------------------------------------------------------------------------------------------


def previous_detect_latest(bars, patterns=None, window=WINDOW):
    """detect_latest as it was before the plain-Python path: the vectorised batch scan of the
    newest window and the CONFIRM_BARS + 1 windows before it, deduplicated, keeping the matches
    that end at the newest bar. (Its prefilter only skipped this scan where it found nothing.)"""
    close = np.asarray(bars["close"], dtype=np.float64)
    wanted = engine._pattern_ids(patterns)
    last_start = close.size - window
    if last_start < 0 or not wanted.any():
        return []
    found = engine._Found()
    engine._scan(close, window, max(0, last_start - CONFIRM_BARS - 1), last_start, wanted, found)
    matches = engine._to_matches(engine._first_occurrences(found, close), close)
    return [m for m in matches if m.end == close.size - 1]


def exactly(matches):
    """Matches as plain values, confidences to the bit (== would equate 0.0 and -0.0)."""
    return [(m.pattern, m.start, m.end, m.confidence.hex(), m.extrema) for m in matches]


pattern_subsets = st.one_of(st.none(), st.lists(st.sampled_from(PATTERN_NAMES), min_size=1, max_size=4))


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(valid_bars(max_bars=110), pattern_subsets, st.sampled_from([WINDOW, WINDOW, 12, 25, 60]))
def test_streaming_equals_the_previous_algorithm_on_every_bar_of_random_series(bars, patterns, window):
    for n in range(window, len(bars["close"]) + 1):
        prefix = {name: values[:n] for name, values in bars.items()}
        assert exactly(detect_latest(prefix, patterns=patterns, window=window)) == exactly(
            previous_detect_latest(prefix, patterns, window)), n


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATTERN_NAMES), st.sampled_from([0.0005, 0.002, 0.005, 0.01]),
       st.integers(min_value=0, max_value=10_000), st.booleans())
def test_streaming_equals_the_previous_algorithm_on_every_bar_of_planted_patterns(pattern, noise, seed, as_lists):
    bars = planted(pattern, noise, seed).bars
    if as_lists:
        bars = {name: values.tolist() for name, values in bars.items()}
    alerts = 0
    for n in range(WINDOW, len(bars["close"]) + 1):
        prefix = {name: values[:n] for name, values in bars.items()}
        latest = detect_latest(prefix)
        assert exactly(latest) == exactly(previous_detect_latest(prefix)), n
        alerts += len(latest)
    assert alerts, "a planted pattern's series always satisfies some definition"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.floats(min_value=-1.0, max_value=1.0),
                min_size=1, max_size=300))
def test_streaming_sums_add_in_numpys_order(values):
    # Clarity sums each leg with np.add.reduceat; the streaming path must round the same way. If a
    # numpy release changes its summation order, this fails before any confidence drifts.
    expected = np.add.reduceat(np.asarray(values, dtype=np.float64), [0])[0]
    assert engine._segment_sum(values).hex() == float(expected).hex()
