"""TradingPatterns access through the low-level DynamoDB client.

The low-level client with hand-written attribute maps is used on purpose: the resource layer's
Decimal (de)serialisation costs more CPU than the rest of the consumer per record.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from patternwatch_shared import keys
from patternwatch_shared.models import Bar
from patternwatch_shared.names.table import (
    ALERT_STATE_EVENT_EMITTED, ALERT_STATE_PENDING, PATTERN_ALERT_STATE_ATTRIBUTE, RECENT_PATTERNS_INDEX,
    RECENT_PATTERNS_INDEX_PARTITION_KEY, RECENT_PATTERNS_INDEX_SORT_KEY, TABLE_PARTITION_KEY, TABLE_SORT_KEY,
)

logger = logging.getLogger(__name__)

BATCH_WRITE_LIMIT = 25  # DynamoDB BatchWriteItem maximum
# The error code of a request DynamoDB refuses for its content (for example a number it cannot store).
ITEM_REFUSED = "ValidationException"
UNPROCESSED_RETRY_ATTEMPTS = 5
UNPROCESSED_BACKOFF_SECONDS = 0.05

PK = TABLE_PARTITION_KEY
SK = TABLE_SORT_KEY
GSI_PK = RECENT_PATTERNS_INDEX_PARTITION_KEY
GSI_SK = RECENT_PATTERNS_INDEX_SORT_KEY
ALERT_STATE = PATTERN_ALERT_STATE_ATTRIBUTE


def is_aws_error(error: BaseException) -> bool:
    """True for errors from AWS or the network (worth a retry by the event source)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(error, (BotoCoreError, ClientError))


def error_code(error: BaseException) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


BAR_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


def number(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def bar_item(bar: Bar) -> dict[str, Any]:
    # Validated bars hold floats, so repr() round-trips them exactly; this runs once per record.
    return {
        PK: {"S": keys.bar_partition_key(bar.symbol)},
        SK: {"S": keys.bar_sort_key(bar.timestamp)},
        "symbol": {"S": bar.symbol},
        "timestamp": {"N": str(bar.timestamp)},
        "open": {"N": repr(bar.open)},
        "high": {"N": repr(bar.high)},
        "low": {"N": repr(bar.low)},
        "close": {"N": repr(bar.close)},
        "volume": {"N": repr(bar.volume)},
    }


BarKey = tuple[str, int]  # (symbol, timestamp): a bar's identity, and its item's key


@dataclass
class BarWrites:
    """What put_bars could not store.

    failed_symbols: a write failed for a reason that may pass (throttling, a network or service
    error): the caller fails every record of the symbol, and the retry writes them again.
    refused: DynamoDB refused the item itself (ValidationException: a number it cannot store, an
    item too large), which no retry changes; reason per bar. Only that bar's record fails.
    """

    failed_symbols: set[str] = field(default_factory=set)
    refused: dict[BarKey, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredPattern:
    symbol: str
    pattern: str
    confidence: float
    start_timestamp: int
    end_timestamp: int
    detected_at: datetime
    severity: str
    alert_state: str
    extrema: tuple[tuple[int, float], ...] = ()

    @property
    def sort_key(self) -> str:
        return keys.pattern_sort_key(self.end_timestamp, self.pattern)

    def to_item(self) -> dict[str, Any]:
        return {
            PK: {"S": keys.pattern_partition_key(self.symbol)},
            SK: {"S": self.sort_key},
            GSI_PK: {"S": keys.recent_partition_key(self.detected_at)},
            GSI_SK: {"S": keys.recent_sort_key(self.detected_at, self.symbol, self.pattern)},
            "symbol": {"S": self.symbol},
            "pattern": {"S": self.pattern},
            "confidence": number(float(self.confidence)),
            "startTimestamp": {"N": str(self.start_timestamp)},
            "endTimestamp": {"N": str(self.end_timestamp)},
            "detectedAt": {"S": keys.iso_utc(self.detected_at)},
            "severity": {"S": self.severity},
            ALERT_STATE: {"S": self.alert_state},
            "extrema": {
                "L": [{"M": {"timestamp": {"N": str(ts)}, "price": number(float(price))}} for ts, price in self.extrema]
            },
        }


class UnreadableItem(ValueError):
    """A stored item lacks an attribute a reader needs, or holds it with another type."""


def _attribute(item: dict[str, Any], name: str, kind: str) -> Any:
    value = item.get(name)
    if not isinstance(value, dict) or kind not in value:
        raise UnreadableItem(f"attribute {name!r} is missing or not of type {kind}")
    return value[kind]


def pattern_from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A stored pattern as plain JSON-ready data (API responses, threshold checks); UnreadableItem
    when an attribute is missing or of another type (written by hand or by another version)."""
    try:
        return {
            "symbol": _attribute(item, "symbol", "S"),
            "pattern": _attribute(item, "pattern", "S"),
            "confidence": float(_attribute(item, "confidence", "N")),
            "startTimestamp": int(_attribute(item, "startTimestamp", "N")),
            "endTimestamp": int(_attribute(item, "endTimestamp", "N")),
            "detectedAt": _attribute(item, "detectedAt", "S"),
            "severity": item.get("severity", {}).get("S"),
            "extrema": [
                {"timestamp": int(point["M"]["timestamp"]["N"]), "price": float(point["M"]["price"]["N"])}
                for point in item.get("extrema", {}).get("L", [])
            ],
        }
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, UnreadableItem):
            raise
        raise UnreadableItem(f"attribute extrema is not a list of timestamp/price maps ({type(error).__name__})") from None


def _bar_row(item: dict[str, Any]) -> dict[str, float]:
    row: dict[str, float] = {field: float(item[field]["N"]) for field in BAR_COLUMNS if field != "timestamp"}
    return {"timestamp": int(item["timestamp"]["N"]), **row}


class TradingPatternsTable:
    def __init__(self, client: Any, table_name: str, *, sleep=time.sleep):
        self._client = client
        self._table = table_name
        self._sleep = sleep

    # --- bars ----------------------------------------------------------------------------------
    def put_bars(self, bars: Sequence[Bar]) -> BarWrites:
        """Upsert bars in batches of 25 and say which could not be written (see BarWrites).

        Re-putting a bar overwrites it with identical attributes, so retried batches are harmless.
        """
        writes = BarWrites()
        for start in range(0, len(bars), BATCH_WRITE_LIMIT):
            chunk = bars[start : start + BATCH_WRITE_LIMIT]
            requests = [{"PutRequest": {"Item": bar_item(bar)}} for bar in chunk]
            try:
                unprocessed = self._batch_write(requests)
            except Exception as error:
                if not is_aws_error(error):
                    raise
                if error_code(error) == ITEM_REFUSED:
                    # One item DynamoDB refuses fails the whole request: write this chunk item by
                    # item, so that only that item fails and the other symbols' bars are stored.
                    self._put_one_by_one(chunk, writes)
                    continue
                logger.warning("bar batch write failed: %s", error)
                writes.failed_symbols.update(bar.symbol for bar in chunk)
                continue
            for request in unprocessed:
                writes.failed_symbols.add(request["PutRequest"]["Item"]["symbol"]["S"])
        return writes

    def _put_one_by_one(self, bars: Sequence[Bar], writes: BarWrites) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for bar in bars:
            try:
                self._client.put_item(TableName=self._table, Item=bar_item(bar))
            except ClientError as error:
                if error_code(error) != ITEM_REFUSED:
                    writes.failed_symbols.add(bar.symbol)
                    continue
                reason = error.response.get("Error", {}).get("Message") or ITEM_REFUSED
                writes.refused[(bar.symbol, bar.timestamp)] = f"DynamoDB refused the bar: {reason}"[:500]
            except BotoCoreError:
                writes.failed_symbols.add(bar.symbol)

    def _batch_write(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pending = requests
        for attempt in range(UNPROCESSED_RETRY_ATTEMPTS):
            response = self._client.batch_write_item(RequestItems={self._table: pending})
            pending = response.get("UnprocessedItems", {}).get(self._table, [])
            if not pending:
                return []
            self._sleep(UNPROCESSED_BACKOFF_SECONDS * (2**attempt))
        return pending

    def recent_bars(self, symbol: str, limit: int) -> dict[str, list[float]]:
        """The newest `limit` bars of `symbol` as engine columns, oldest first: one Query, never a Scan."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": PK, **{f"#{field}": field for field in BAR_COLUMNS}},
            "ExpressionAttributeValues": {":pk": {"S": keys.bar_partition_key(symbol)}},
            "ProjectionExpression": ", ".join(f"#{field}" for field in BAR_COLUMNS),
            "ScanIndexForward": False,
            # Strongly consistent: the bars this invocation just wrote must be in the window.
            "ConsistentRead": True,
        }
        items = self._query_all(request, limit=limit)
        items.reverse()
        columns: dict[str, list[float]] = {
            field: [float(item[field]["N"]) for item in items] for field in BAR_COLUMNS if field != "timestamp"
        }
        columns["timestamp"] = [int(item["timestamp"]["N"]) for item in items]
        return columns

    def bars_around(self, symbol: str, start: int, end: int, *, before: int) -> list[dict[str, float]]:
        """Bars of `symbol` from `start` to `end` (epoch seconds, inclusive) and the `before` bars ahead of
        them, as rows oldest first: two Queries (the range, then the lead-in newest first), never a Scan."""
        names = {"#pk": PK, "#sk": SK, **{f"#{field}": field for field in BAR_COLUMNS}}
        common: dict[str, Any] = {
            "TableName": self._table,
            "ExpressionAttributeNames": names,
            "ProjectionExpression": ", ".join(f"#{field}" for field in BAR_COLUMNS),
            "ConsistentRead": True,
        }
        pk = {"S": keys.bar_partition_key(symbol)}
        span = self._query_all({
            **common,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :start AND :end",
            "ExpressionAttributeValues": {":pk": pk, ":start": {"S": keys.bar_sort_key(start)}, ":end": {"S": keys.bar_sort_key(end)}},
        })
        lead_in = []
        if before > 0:
            lead_in = self._query_all({
                **common,
                "KeyConditionExpression": "#pk = :pk AND #sk < :start",
                "ExpressionAttributeValues": {":pk": pk, ":start": {"S": keys.bar_sort_key(start)}},
                "ScanIndexForward": False,
            }, limit=before)
            lead_in.reverse()
        return [_bar_row(item) for item in [*lead_in, *span]]

    def _query_all(self, request: dict[str, Any], *, limit: int | None = None) -> list[dict[str, Any]]:
        """Every item of a Query, or the first `limit`: a page stops at 1 MB, so a long range may need several."""
        items: list[dict[str, Any]] = []
        while limit is None or len(items) < limit:
            if limit is not None:
                request["Limit"] = limit - len(items)
            response = self._client.query(**request)
            items.extend(response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return items

    # --- patterns -------------------------------------------------------------------------------
    def pattern(self, symbol: str, sort_key: str) -> dict[str, Any] | None:
        """One stored pattern (as pattern_from_item), found with a Query on its full key."""
        items = self._client.query(
            TableName=self._table,
            KeyConditionExpression="#pk = :pk AND #sk = :sk",
            ExpressionAttributeNames={"#pk": PK, "#sk": SK},
            ExpressionAttributeValues={":pk": {"S": keys.pattern_partition_key(symbol)}, ":sk": {"S": sort_key}},
            ConsistentRead=True,
        ).get("Items", [])
        return pattern_from_item(items[0]) if items else None

    def put_pattern_once(self, pattern: StoredPattern) -> bool:
        """Store a detection unless it is already stored.

        Returns True when this call stored it, or when an earlier attempt stored it but never got
        its PatternDetected event out (alertState still PENDING): the caller must then (re)emit it.
        """
        from botocore.exceptions import ClientError

        try:
            self._client.put_item(
                TableName=self._table,
                Item=pattern.to_item(),
                ConditionExpression="attribute_not_exists(#pk) OR #alert = :pending",
                ExpressionAttributeNames={"#pk": PK, "#alert": ALERT_STATE},
                ExpressionAttributeValues={":pending": {"S": ALERT_STATE_PENDING}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_event_emitted(self, symbol: str, sort_key: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={PK: {"S": keys.pattern_partition_key(symbol)}, SK: {"S": sort_key}},
            UpdateExpression="SET #alert = :emitted",
            ExpressionAttributeNames={"#alert": ALERT_STATE},
            ExpressionAttributeValues={":emitted": {"S": ALERT_STATE_EVENT_EMITTED}},
        )

    def patterns_for_symbol(
        self, symbol: str, limit: int, exclusive_start_key: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a symbol's stored patterns, newest first."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": PK},
            "ExpressionAttributeValues": {":pk": {"S": keys.pattern_partition_key(symbol)}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if exclusive_start_key:
            request["ExclusiveStartKey"] = exclusive_start_key
        response = self._client.query(**request)
        items = [pattern_from_item(item) for item in response.get("Items", [])]
        return items, response.get("LastEvaluatedKey")

    def recent_patterns(
        self, since: datetime, until: datetime, *, skip: Callable[[dict[str, Any], str], None] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Patterns detected in [since, until], through RecentPatternsIndex (Query per UTC day).

        An item pattern_from_item cannot read raises UnreadableItem, or, with `skip`, is handed to
        skip(item, reason) and left out.
        """
        for partition in _day_partitions(since, until):
            request: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": RECENT_PATTERNS_INDEX,
                "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :from AND :to",
                "ExpressionAttributeNames": {"#pk": GSI_PK, "#sk": GSI_SK},
                "ExpressionAttributeValues": {
                    ":pk": {"S": partition},
                    ":from": {"S": keys.iso_utc(since)},
                    # "~" sorts after "#<symbol>#<pattern>", so detections at `until` are included.
                    ":to": {"S": keys.iso_utc(until) + "~"},
                },
            }
            while True:
                response = self._client.query(**request)
                for item in response.get("Items", []):
                    try:
                        pattern = pattern_from_item(item)
                    except UnreadableItem as error:
                        if skip is None:
                            raise
                        skip(item, str(error))
                        continue
                    yield pattern
                last_key = response.get("LastEvaluatedKey")
                if not last_key:
                    break
                request["ExclusiveStartKey"] = last_key


def _day_partitions(since: datetime, until: datetime) -> list[str]:
    from datetime import timedelta, timezone

    day = since.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    partitions = []
    while day <= until:
        partitions.append(keys.recent_partition_key(day))
        day += timedelta(days=1)
    return partitions
