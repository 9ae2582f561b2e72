"""Bad input raises ValueError naming the problem, from detect and detect_latest alike."""
from __future__ import annotations

import numpy as np
import pytest

from pattern_engine import detect, detect_latest
from pattern_engine.synthetic import random_walk


@pytest.fixture(params=[detect, detect_latest])
def entry(request):
    """Every test that takes `entry` runs once with each entry point."""
    return request.param


def good_bars(n: int = 60) -> dict[str, np.ndarray]:
    return {name: values.copy() for name, values in random_walk(n, seed=21).items()}


def with_value(field: str, index: int, value) -> dict[str, np.ndarray]:
    bars = good_bars()
    bars[field] = bars[field].astype(np.float64)
    bars[field][index] = value
    return bars


@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_price(entry, field, bad):
    with pytest.raises(ValueError, match=rf"bars\['{field}'\] contains NaN or inf at index 55"):
        entry(with_value(field, 55, bad))


@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_non_positive_price(entry, field, bad):
    with pytest.raises(ValueError, match=rf"bars\['{field}'\] contains a non-positive price at index 50"):
        entry(with_value(field, 50, bad))


def test_high_below_low(entry):
    bars = good_bars()
    bars["high"][58], bars["low"][58] = bars["low"][58], bars["high"][58] + 1.0
    with pytest.raises(ValueError, match=r"high < low at index 58"):
        entry(bars)


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume", "timestamp"])
def test_mismatched_lengths(entry, field):
    bars = good_bars()
    bars[field] = bars[field][:-1]
    with pytest.raises(ValueError, match=rf"mismatched lengths: .*{field}=59"):
        entry(bars)


def test_unsorted_timestamps(entry):
    bars = good_bars()
    bars["timestamp"][[56, 57]] = bars["timestamp"][[57, 56]]
    with pytest.raises(ValueError, match=r"timestamp'\] is not sorted ascending: index 57"):
        entry(bars)


def test_duplicate_timestamps(entry):
    bars = good_bars()
    bars["timestamp"][57] = bars["timestamp"][56]
    with pytest.raises(ValueError, match=r"duplicate timestamps at index 57"):
        entry(bars)


def test_unparseable_timestamps(entry):
    bars = good_bars()
    bars["timestamp"] = ["not a date"] * 60
    with pytest.raises(ValueError, match=r"timestamp'\] must be numbers, numpy datetime64 or ISO 8601"):
        entry(bars)


@pytest.mark.parametrize("patterns", [["head-and-shoulder"], ["double-top", "Double-Bottom"], [None]])
def test_unknown_pattern_names(entry, patterns):
    with pytest.raises(ValueError, match=r"unknown pattern name\(s\)"):
        entry(good_bars(), patterns=patterns)


def test_unknown_pattern_names_are_reported_even_with_too_few_bars(entry):
    with pytest.raises(ValueError, match=r"unknown pattern name\(s\): 'triangle'"):
        entry(good_bars(10), patterns=["triangle"])


def test_missing_price_field(entry):
    bars = good_bars()
    del bars["low"]
    with pytest.raises(ValueError, match=r"missing required field\(s\): low"):
        entry(bars)


def test_non_numeric_price(entry):
    bars = {name: values.tolist() for name, values in good_bars().items()}
    bars["close"][59] = "12.5x"
    with pytest.raises(ValueError, match=r"bars\['close'\] must contain only numbers"):
        entry(bars)


def test_negative_or_nan_volume(entry):
    with pytest.raises(ValueError, match=r"bars\['volume'\] contains NaN, inf or a negative value at index 59"):
        entry(with_value("volume", 59, -5.0))


@pytest.mark.parametrize("window", [5, 38.0, "38", True])
def test_bad_window(entry, window):
    with pytest.raises(ValueError, match=r"window must be"):
        entry(good_bars(), window=window)


def test_bars_must_be_a_mapping(entry):
    with pytest.raises(ValueError, match=r"bars must be a mapping"):
        entry([[1.0, 2.0]])


def test_two_dimensional_field(entry):
    bars = good_bars()
    bars["open"] = np.ones((60, 2))
    with pytest.raises(ValueError, match=r"bars\['open'\] must be one-dimensional"):
        entry(bars)


def test_detect_latest_validates_the_bars_it_reads():
    # Only the newest window + CONFIRM_BARS + 1 bars are read by detect_latest, and they are checked.
    bars = with_value("close", 59, np.nan)
    with pytest.raises(ValueError, match=r"NaN or inf at index 59"):
        detect_latest(bars)


def test_iso_timestamps_with_time_zones_are_compared_in_utc(entry):
    bars = good_bars()
    stamps = [f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00:00Z" for i in range(60)]
    entry({**bars, "timestamp": stamps})  # sorted: accepted, and no warning escapes
    # 11:30+02:00 is 09:30 UTC, earlier than the previous bar's 10:00Z.
    assert stamps[58] == "2024-01-03T10:00:00Z"
    stamps[59] = "2024-01-03T11:30:00+02:00"
    with pytest.raises(ValueError, match=r"not sorted ascending: index 59"):
        entry({**bars, "timestamp": stamps})


def test_with_several_problems_the_first_field_in_price_order_is_named(entry):
    # Fields are checked open, high, low, close: a later field's problem, even one found while
    # converting it, never hides an earlier field's.
    bars = {name: values.tolist() for name, values in good_bars().items()}
    bars["high"][56] = float("nan")
    bars["low"][55] = "n/a"
    bars["close"][50] = -1.0
    with pytest.raises(ValueError, match=r"bars\['high'\] contains NaN or inf at index 56"):
        entry(bars)
    bars["open"][58] = 0.0
    with pytest.raises(ValueError, match=r"bars\['open'\] contains a non-positive price at index 58"):
        entry(bars)


def test_float_timestamps_must_be_finite(entry):
    bars = good_bars()
    bars["timestamp"] = np.arange(60, dtype=np.float64)
    bars["timestamp"][59] = np.inf  # still "increasing", but not a time
    with pytest.raises(ValueError, match=r"timestamp'\] contains NaN or inf at index 59"):
        entry(bars)
