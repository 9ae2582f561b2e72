"""The stream consumer's window cache on its own: when it answers, when it refuses, what it keeps."""
from __future__ import annotations

import pytest

from patternwatch_shared.models import Bar
from patternwatch_shared.window_cache import (
    MISS_COLD, MISS_GAP, MISS_HOLE, MISS_OUT_OF_ORDER, MISS_REDELIVERY, MISS_SHORT, WindowCache, bar_columns,
)

T0 = 1_700_000_040
MINUTE = 60
KEEP = 42  # DETECTION_CONTEXT_BARS - 1, as the consumer keeps
LIMIT_ONE_NEW = KEEP + 1  # the history Query's limit for one new bar


def bars(symbol: str, first: int, count: int, *, step: int = MINUTE) -> list[Bar]:
    return [
        Bar(symbol=symbol, timestamp=T0 + step * (first + i), open=100.0 + i, high=102.0 + i, low=99.0 + i,
            close=101.0 + i, volume=1_000 + i)
        for i in range(count)
    ]


def query_result(history: list[Bar], limit: int) -> dict[str, list]:
    """What the history Query returns: the newest `limit` stored bars as columns, oldest first."""
    return bar_columns(history[-limit:])


def warm_cache(symbol: str = "AAPL", stored: int = 60, **kwargs) -> tuple[WindowCache, list[Bar]]:
    cache = WindowCache(max_symbols=kwargs.pop("max_symbols", 8), bars_per_symbol=KEEP)
    cache.bind(("TradingPatterns-test", "1"))
    history = bars(symbol, 0, stored)
    cache.remember(symbol, query_result(history, LIMIT_ONE_NEW), limit=LIMIT_ONE_NEW)
    return cache, history


def test_cold_cache_misses_and_keeps_the_query_result_bounded():
    cache = WindowCache(max_symbols=8, bars_per_symbol=KEEP)
    new = bars("AAPL", 60, 1)
    assert cache.window("AAPL", new, LIMIT_ONE_NEW) is None
    assert cache.stats.misses == {MISS_COLD: 1}
    history = bars("AAPL", 0, 61)
    cache.remember("AAPL", query_result(history, LIMIT_ONE_NEW), limit=LIMIT_ONE_NEW)
    assert cache._entries["AAPL"].columns["timestamp"] == [bar.timestamp for bar in history[-KEEP:]]


@pytest.mark.parametrize("new_count", [1, 2, 4, 7])
def test_warm_hit_returns_exactly_what_the_query_would(new_count):
    cache, history = warm_cache()
    new = bars("AAPL", 60, new_count)
    limit = KEEP + new_count
    assert cache.window("AAPL", new, limit) == query_result(history + new, limit)
    assert cache.stats.hits == 1
    # The entry moved forward: the next contiguous batch hits too, still exact.
    after = bars("AAPL", 60 + new_count, 1)
    assert cache.window("AAPL", after, LIMIT_ONE_NEW) == query_result(history + new + after, LIMIT_ONE_NEW)
    assert len(cache._entries["AAPL"].columns["timestamp"]) == KEEP


def test_values_come_back_as_the_table_returns_them():
    cache, history = warm_cache()
    (columns) = cache.window("AAPL", bars("AAPL", 60, 1), LIMIT_ONE_NEW)
    assert all(type(value) is int for value in columns["timestamp"])
    assert all(type(value) is float for name in ("open", "high", "low", "close", "volume") for value in columns[name])


def test_a_gap_misses_and_drops_the_entry():
    cache, _ = warm_cache()
    assert cache.window("AAPL", bars("AAPL", 61, 1), LIMIT_ONE_NEW) is None  # bar 60 went elsewhere or never came
    assert cache.stats.misses == {MISS_GAP: 1}
    assert cache.window("AAPL", bars("AAPL", 62, 1), LIMIT_ONE_NEW) is None
    assert cache.stats.misses == {MISS_GAP: 1, MISS_COLD: 1}


@pytest.mark.parametrize("first", [59, 40, 0])
def test_a_redelivered_or_late_bar_misses(first):
    cache, _ = warm_cache()
    assert cache.window("AAPL", bars("AAPL", first, 2), KEEP + 2) is None
    assert cache.stats.misses == {MISS_REDELIVERY: 1}


def test_out_of_order_bars_in_the_batch_miss():
    cache, _ = warm_cache()
    new = bars("AAPL", 60, 3)
    assert cache.window("AAPL", [new[0], new[2], new[1]], KEEP + 3) is None
    assert cache.stats.misses == {MISS_OUT_OF_ORDER: 1}


def test_an_off_grid_bar_misses():
    cache, _ = warm_cache()
    (bar,) = bars("AAPL", 60, 1)
    assert cache.window("AAPL", [bar.model_copy(update={"timestamp": bar.timestamp - 30})], LIMIT_ONE_NEW) is None
    assert cache.stats.misses == {MISS_GAP: 1}


def test_short_history_is_served_only_when_the_entry_is_the_whole_history():
    cache = WindowCache(max_symbols=8, bars_per_symbol=KEEP)
    history = bars("NEW", 0, 5)
    cache.remember("NEW", query_result(history, LIMIT_ONE_NEW), limit=LIMIT_ONE_NEW)  # 5 < 43: everything there is
    new = bars("NEW", 5, 1)
    assert cache.window("NEW", new, LIMIT_ONE_NEW) == bar_columns(history + new)
    # A Query that filled its limit does not prove there is nothing older: too few bars for a larger request.
    cache.remember("OLD", query_result(bars("OLD", 0, 100), 10), limit=10)
    assert cache.window("OLD", bars("OLD", 100, 1), LIMIT_ONE_NEW) is None
    assert cache.stats.misses == {MISS_SHORT: 1}


def test_a_single_stored_bar_gives_no_interval_and_misses():
    cache = WindowCache(max_symbols=8, bars_per_symbol=KEEP)
    cache.remember("ONE", query_result(bars("ONE", 0, 1), LIMIT_ONE_NEW), limit=LIMIT_ONE_NEW)
    assert cache.window("ONE", bars("ONE", 1, 1), LIMIT_ONE_NEW) is None
    assert cache.stats.misses == {MISS_HOLE: 1}


def test_a_window_with_a_hole_is_read_again_until_the_hole_has_left_it():
    """A late bar may fill the hole in another environment: this one cannot know, so it asks the table."""
    cache = WindowCache(max_symbols=8, bars_per_symbol=KEEP)
    history = [bar for bar in bars("HOLE", 0, 61) if bar.timestamp != T0 + 30 * MINUTE]
    cache.remember("HOLE", query_result(history, LIMIT_ONE_NEW), limit=LIMIT_ONE_NEW)
    assert cache.window("HOLE", bars("HOLE", 61, 1), LIMIT_ONE_NEW) is None
    assert cache.stats.misses == {MISS_HOLE: 1}
    # Once the newest 42 bars are evenly spaced again, the entry serves.
    history += bars("HOLE", 61, 30)
    cache.remember("HOLE", query_result(history, LIMIT_ONE_NEW), limit=LIMIT_ONE_NEW)
    new = bars("HOLE", 91, 1)
    assert cache.window("HOLE", new, LIMIT_ONE_NEW) == query_result(history + new, LIMIT_ONE_NEW)


def test_new_bars_must_continue_the_grid_to_the_last():
    cache, _ = warm_cache()
    new = bars("AAPL", 60, 1) + bars("AAPL", 62, 1)  # bar 61 missing inside the batch
    assert cache.window("AAPL", new, KEEP + 2) is None
    assert cache.stats.misses == {MISS_GAP: 1}


def test_a_whole_history_entry_stops_being_whole_once_it_is_cut():
    cache = WindowCache(max_symbols=8, bars_per_symbol=KEEP)
    history = bars("GROW", 0, KEEP)
    cache.remember("GROW", query_result(history, LIMIT_ONE_NEW), limit=LIMIT_ONE_NEW)
    assert cache._entries["GROW"].complete
    new = bars("GROW", KEEP, 3)
    assert cache.window("GROW", new, KEEP + 3) == bar_columns(history + new)
    assert not cache._entries["GROW"].complete
    assert len(cache._entries["GROW"].columns["timestamp"]) == KEEP


def test_least_recently_used_symbol_is_evicted_at_the_bound():
    cache = WindowCache(max_symbols=2, bars_per_symbol=KEEP)
    for symbol in ("A", "B"):
        cache.remember(symbol, query_result(bars(symbol, 0, 50), LIMIT_ONE_NEW), limit=LIMIT_ONE_NEW)
    assert cache.window("A", bars("A", 50, 1), LIMIT_ONE_NEW) is not None  # A is now the most recent
    cache.remember("C", query_result(bars("C", 0, 50), LIMIT_ONE_NEW), limit=LIMIT_ONE_NEW)
    assert len(cache) == 2 and cache.stats.evictions == 1
    assert cache.window("B", bars("B", 50, 1), LIMIT_ONE_NEW) is None
    assert cache.stats.misses == {MISS_COLD: 1}


def test_another_table_or_function_version_empties_the_cache():
    cache, _ = warm_cache()
    cache.bind(("TradingPatterns-test", "1"))
    assert len(cache) == 1
    cache.bind(("TradingPatterns-test", "2"))
    assert len(cache) == 0
    cache.remember("AAPL", query_result(bars("AAPL", 0, 60), LIMIT_ONE_NEW), limit=LIMIT_ONE_NEW)
    cache.bind(("TradingPatterns-other", "2"))
    assert cache.window("AAPL", bars("AAPL", 60, 1), LIMIT_ONE_NEW) is None


def test_forget_and_an_empty_query_leave_no_entry():
    cache, _ = warm_cache()
    cache.forget("AAPL")
    cache.forget("NEVER-SEEN")
    assert len(cache) == 0
    cache.remember("EMPTY", bar_columns([]), limit=LIMIT_ONE_NEW)
    assert len(cache) == 0


def test_bounds_are_checked():
    with pytest.raises(ValueError):
        WindowCache(max_symbols=0, bars_per_symbol=KEEP)
    with pytest.raises(ValueError):
        WindowCache(max_symbols=1, bars_per_symbol=1)
