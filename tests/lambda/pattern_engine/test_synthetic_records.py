"""Synthetic bars as stream records: the one generator the demo, the tests and the benchmarks share."""
from __future__ import annotations

import pytest
from pattern_engine import detect
from pattern_engine.synthetic import bar_records, planted, planted_bar_records, random_walk
from patternwatch_shared.models import Bar


def test_records_carry_the_columns_dated_daily_and_scaled():
    series = planted("double-top", 0.001, seed=3).bars
    records = planted_bar_records("DT", "double-top", seed=3, start=1_609_718_400, scale=100)
    assert len(records) == len(series["close"])
    assert [r["timestamp"] for r in records[:3]] == [1_609_718_400, 1_609_804_800, 1_609_891_200]
    assert records[5]["close"] == pytest.approx(float(series["close"][5]) * 100)
    assert records[5]["volume"] == float(series["volume"][5])
    assert {tuple(r) for r in records} == {("symbol", "timestamp", "open", "high", "low", "close", "volume")}


def test_without_a_start_the_series_keeps_its_own_timestamps():
    walk = random_walk(5, seed=1)
    assert [r["timestamp"] for r in bar_records("RW", walk)] == [int(t) for t in walk["timestamp"]]


@pytest.mark.parametrize("pattern", ["head-and-shoulders", "double-top", "ascending-triangle"])
def test_records_are_valid_stream_bars_in_which_the_engine_finds_the_pattern(pattern):
    records = planted_bar_records("SYN", pattern, seed=7, start=1_609_718_400, scale=100)
    assert all(Bar.model_validate(record).symbol == "SYN" for record in records)
    columns = {field: [r[field] for r in records] for field in ("timestamp", "open", "high", "low", "close", "volume")}
    assert any(m.pattern == pattern for m in detect(columns))
