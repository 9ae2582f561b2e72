"""Key builders for the TradingPatterns single-table design documented in names/table.py."""
from __future__ import annotations

from datetime import datetime, timezone

from patternwatch_shared.names.table import (
    BAR_PARTITION_PREFIX, KEY_SEPARATOR, PATTERN_PARTITION_PREFIX, RECENT_PARTITION_PREFIX,
    TIMESTAMP_KEY_DIGITS,
)


def timestamp_key(epoch_seconds: int) -> str:
    """Zero-padded so that string order of sort keys is time order."""
    if epoch_seconds < 0 or epoch_seconds >= 10**TIMESTAMP_KEY_DIGITS:
        raise ValueError(f"timestamp {epoch_seconds} does not fit the {TIMESTAMP_KEY_DIGITS}-digit key")
    return str(epoch_seconds).zfill(TIMESTAMP_KEY_DIGITS)


def bar_partition_key(symbol: str) -> str:
    return f"{BAR_PARTITION_PREFIX}{symbol}"


def bar_sort_key(epoch_seconds: int) -> str:
    return timestamp_key(epoch_seconds)


def pattern_partition_key(symbol: str) -> str:
    return f"{PATTERN_PARTITION_PREFIX}{symbol}"


def pattern_sort_key(end_epoch_seconds: int, pattern: str) -> str:
    """Also the idempotency key: the same pattern ending on the same bar is the same detection."""
    return f"{timestamp_key(end_epoch_seconds)}{KEY_SEPARATOR}{pattern}"


def recent_partition_key(detected_at: datetime) -> str:
    return f"{RECENT_PARTITION_PREFIX}{detected_at.astimezone(timezone.utc):%Y-%m-%d}"


def recent_sort_key(detected_at: datetime, symbol: str, pattern: str) -> str:
    return f"{iso_utc(detected_at)}{KEY_SEPARATOR}{symbol}{KEY_SEPARATOR}{pattern}"


def iso_utc(moment: datetime) -> str:
    """Fixed-width ISO 8601 in UTC, so GSI1SK sorts chronologically as a string."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alert_id(symbol: str, pattern_sort_key_value: str) -> str:
    return f"{symbol}{KEY_SEPARATOR}{pattern_sort_key_value}"
