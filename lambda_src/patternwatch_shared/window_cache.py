"""Each symbol's newest stored bars, kept in the stream consumer's execution environment between invocations.

Without it the consumer reads every symbol's detection context from DynamoDB on every batch: one
strongly consistent Query per symbol per batch, one per bar with 1-minute bars. Kinesis routes a symbol
to one shard and Lambda runs one batch of a shard at a time, so the environment that stored a symbol's
last batch usually also gets its next one, and already holds the context the Query would return.

The cache answers only when it can prove it holds exactly what the Query would return; otherwise the
caller Queries and hands the result back (`remember`). A hit needs all of:
- an entry for the symbol, made under the same table and function version (`bind`);
- an entry without holes: every cached bar exactly one interval after the one before. Another
  environment can only have added a bar to the symbol's past by filling a hole (a late bar), and a
  window with a hole is read again until the hole has left it;
- the batch's new bars continuing that grid: the first exactly one interval after the cached newest,
  each next one interval after it. So a gap (bars that another environment stored meanwhile, or that
  never arrived), a redelivery (a bar at or before the cached newest) and out-of-order bars all miss;
- enough cached bars for the request, or an entry known to hold the symbol's whole history.
The caller passes only bars that are stored (written and not refused) and must `forget` a symbol whose
batch failed anywhere after the lookup, so the cache is never ahead of the table.

What this relies on: bars of a symbol sit on its time grid (a feed's 1-minute or daily bars do), and a
bar sent again carries the same values (Kinesis redeliveries do). Windows that span a market close
(overnight, a weekend) have a hole and are read from the table, as before the cache.

Bounded: at most `max_symbols` entries, least recently used evicted first, each holding at most
`bars_per_symbol` bars (docs/lambda.md gives the memory this takes).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from patternwatch_shared.storage import BAR_COLUMNS

Columns = dict[str, list[Any]]  # engine columns, oldest first: "timestamp" ints, the rest floats

MISS_COLD = "cold"  # no entry: a new environment, an evicted or forgotten symbol
MISS_GAP = "gap"  # the first new bar is later than one interval after the cached newest
MISS_REDELIVERY = "redelivery"  # the first new bar is at or before the cached newest
MISS_OUT_OF_ORDER = "out_of_order"  # the batch's own bars are not strictly increasing
MISS_SHORT = "short"  # too few cached bars for the request
MISS_HOLE = "hole"  # the cached window is not evenly spaced (or has one bar): a late bar may fill it elsewhere


@dataclass
class _Entry:
    columns: Columns
    # True when the table held fewer bars than were asked for: the entry is the symbol's whole history.
    complete: bool
    # The spacing of every consecutive pair of cached bars; None when they are not evenly spaced.
    interval: int | None


@dataclass
class CacheStats:
    hits: int = 0
    misses: dict[str, int] = field(default_factory=dict)
    evictions: int = 0

    def miss(self, reason: str) -> None:
        self.misses[reason] = self.misses.get(reason, 0) + 1


def even_spacing(timestamps: Sequence[int]) -> int | None:
    """The one spacing between all consecutive timestamps, or None (uneven, or fewer than two)."""
    spacings = {later - earlier for earlier, later in zip(timestamps, timestamps[1:])}
    return spacings.pop() if len(spacings) == 1 else None


def bar_columns(bars: Sequence[Any]) -> Columns:
    """Bars (models with the BAR_COLUMNS attributes) as the columns a Query of the table returns them in."""
    columns: Columns = {name: [float(getattr(bar, name)) for bar in bars] for name in BAR_COLUMNS if name != "timestamp"}
    columns["timestamp"] = [int(bar.timestamp) for bar in bars]
    return columns


class WindowCache:
    def __init__(self, *, max_symbols: int, bars_per_symbol: int):
        if max_symbols < 1 or bars_per_symbol < 2:
            raise ValueError("max_symbols must be >= 1 and bars_per_symbol >= 2")
        self.max_symbols = max_symbols
        self.bars_per_symbol = bars_per_symbol
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._scope: Hashable = None
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    def bind(self, scope: Hashable) -> None:
        """Start an invocation for `scope` (table name, function version): a different scope empties the cache."""
        if scope != self._scope:
            self._entries.clear()
            self._scope = scope

    def clear(self) -> None:
        self._entries.clear()
        self._scope = None

    def forget(self, symbol: str) -> None:
        self._entries.pop(symbol, None)

    def window(self, symbol: str, new_bars: Sequence[Any], limit: int) -> Columns | None:
        """The newest `limit` bars of `symbol` once `new_bars` (just stored) are in the table, or None.

        On a hit the entry moves forward by the new bars. On a miss it is dropped: the caller Queries
        and calls `remember`.
        """
        entry = self._entries.pop(symbol, None)
        reason = self._miss_reason(entry, new_bars, limit)
        if reason is not None:
            self.stats.miss(reason)
            return None
        assert entry is not None
        new = bar_columns(new_bars)
        from_cache = limit - len(new_bars)
        columns = {name: (values[-from_cache:] if from_cache > 0 else []) + new[name] for name, values in entry.columns.items()}
        self.stats.hits += 1
        total = len(entry.columns["timestamp"]) + len(new_bars)
        self._put(symbol, entry.columns, new, complete=entry.complete and total <= self.bars_per_symbol)
        return columns

    def _miss_reason(self, entry: _Entry | None, new_bars: Sequence[Any], limit: int) -> str | None:
        if entry is None:
            return MISS_COLD
        stamps = [int(bar.timestamp) for bar in new_bars]
        if not stamps or any(later <= earlier for earlier, later in zip(stamps, stamps[1:])):
            return MISS_OUT_OF_ORDER
        newest = entry.columns["timestamp"][-1]
        if stamps[0] <= newest:
            return MISS_REDELIVERY
        if entry.interval is None:
            return MISS_HOLE
        if stamps != [newest + entry.interval * (i + 1) for i in range(len(stamps))]:
            return MISS_GAP
        if not entry.complete and len(entry.columns["timestamp"]) < limit - len(new_bars):
            return MISS_SHORT
        return None

    def remember(self, symbol: str, columns: Columns, *, limit: int) -> None:
        """Keep the result of a Query for the newest `limit` bars (it returned fewer: that is all there is)."""
        if not columns["timestamp"]:
            self.forget(symbol)
            return
        self._put(symbol, columns, None, complete=len(columns["timestamp"]) < limit)

    def _put(self, symbol: str, columns: Columns, appended: Columns | None, *, complete: bool) -> None:
        keep = self.bars_per_symbol
        if appended is not None:
            columns = {name: (values + appended[name])[-keep:] for name, values in columns.items()}
        else:
            columns = {name: list(values[-keep:]) for name, values in columns.items()}
        self._entries[symbol] = _Entry(columns, complete, even_spacing(columns["timestamp"]))
        self._entries.move_to_end(symbol)
        while len(self._entries) > self.max_symbols:
            self._entries.popitem(last=False)
            self.stats.evictions += 1
