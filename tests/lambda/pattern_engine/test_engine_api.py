"""Public API of pattern_engine: names, the PatternMatch record, input forms and result shape."""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import pattern_engine
from pattern_engine import PATTERN_NAMES, PatternMatch, detect, detect_latest
from pattern_engine.synthetic import planted, random_walk


def test_pattern_names_are_the_thirteen_kebab_case_names():
    assert PATTERN_NAMES == (
        "head-and-shoulders", "inverse-head-and-shoulders", "broadening-top", "broadening-bottom",
        "triangle-top", "triangle-bottom", "rectangle-top", "rectangle-bottom", "double-top",
        "double-bottom", "ascending-triangle", "descending-triangle", "symmetric-triangle",
    )
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", name) for name in PATTERN_NAMES)


@pytest.mark.parametrize("family", ["head-and-shoulders", "double-top", "ascending-triangle"])
def test_step_functions_pattern_families_are_valid_pattern_arguments(family):
    bars = random_walk(500, seed=3)
    assert all(m.pattern == family for m in detect(bars, patterns=[family]))
    assert all(m.pattern == family for m in detect_latest(bars, patterns=[family]))


def test_pattern_match_is_a_frozen_dataclass_with_the_contract_fields():
    assert dataclasses.is_dataclass(PatternMatch)
    assert [f.name for f in dataclasses.fields(PatternMatch)] == ["pattern", "start", "end", "confidence", "extrema"]
    match = PatternMatch("double-top", 1, 30, 0.5, ((1, 10.0), (12, 9.0), (28, 10.0)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        match.confidence = 1.0  # type: ignore[misc]
    assert match == PatternMatch("double-top", 1, 30, 0.5, ((1, 10.0), (12, 9.0), (28, 10.0)))
    assert hash(match) == hash(PatternMatch("double-top", 1, 30, 0.5, ((1, 10.0), (12, 9.0), (28, 10.0))))


def test_detect_results_have_plain_python_types_and_consistent_fields():
    bars = random_walk(3000, seed=11)
    close = bars["close"]
    matches = detect(bars)
    assert matches, "a 3,000-bar random walk always satisfies some formal definition"
    assert [m.end for m in matches] == sorted(m.end for m in matches)
    for m in matches:
        assert type(m.pattern) is str and m.pattern in PATTERN_NAMES
        assert type(m.start) is int and type(m.end) is int and type(m.confidence) is float
        assert m.start == m.extrema[0][0]
        assert m.extrema[-1][0] <= m.end < len(close)
        assert 0.0 <= m.confidence <= 1.0
        bar_indices = [b for b, _ in m.extrema]
        assert bar_indices == sorted(set(bar_indices))
        assert all(type(b) is int and type(p) is float and p == close[b] for b, p in m.extrema)
        assert len(m.extrema) == (3 if m.pattern.startswith("double-") else 5)


def test_one_match_per_pattern_occurrence():
    matches = detect(random_walk(5000, seed=12))
    keys = [(m.pattern, m.extrema[-1][0]) for m in matches]
    assert len(keys) == len(set(keys))


def test_lists_and_numpy_arrays_give_the_same_matches():
    bars = random_walk(800, seed=4)
    as_lists = {name: values.tolist() for name, values in bars.items()}
    assert detect(as_lists) == detect(bars)
    assert detect_latest(as_lists) == detect_latest(bars)


def test_volume_and_timestamp_are_optional():
    bars = random_walk(800, seed=5)
    prices_only = {name: bars[name] for name in ("open", "high", "low", "close")}
    assert detect(prices_only) == detect(bars)


@pytest.mark.parametrize("n", [0, 1, 37])
def test_fewer_bars_than_a_window_returns_an_empty_list(n):
    bars = {name: values[:n] for name, values in random_walk(100, seed=6).items()}
    assert detect(bars) == []
    assert detect_latest(bars) == []


def test_fewer_bars_than_a_custom_window_returns_an_empty_list():
    bars = random_walk(50, seed=6)
    assert detect(bars, window=60) == []
    assert detect_latest(bars, window=60) == []


def test_custom_window_is_honoured():
    bars = random_walk(3000, seed=7)
    for m in detect(bars, window=50):
        assert m.end - m.start <= 49


def test_patterns_argument_filters_without_changing_matches():
    bars = random_walk(4000, seed=8)
    everything = detect(bars)
    wanted = ["double-bottom", "rectangle-top", "symmetric-triangle"]
    assert detect(bars, patterns=wanted) == [m for m in everything if m.pattern in wanted]
    assert detect(bars, patterns="double-bottom") == [m for m in everything if m.pattern == "double-bottom"]
    assert detect(bars, patterns=[]) == []


def test_timestamps_may_be_iso_strings_or_datetime64():
    series = planted("head-and-shoulders", 0.001, seed=1)
    bars = dict(series.bars)
    stamps = np.datetime64("2024-01-01") + np.arange(len(bars["close"])).astype("timedelta64[D]")
    expected = detect(bars)
    assert detect({**bars, "timestamp": stamps}) == expected
    assert detect({**bars, "timestamp": [str(s) for s in stamps]}) == expected


def test_package_exports():
    assert set(pattern_engine.__all__) >= {"detect", "detect_latest", "PatternMatch", "PATTERN_NAMES"}
