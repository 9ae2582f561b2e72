"""Every AWS call the emulator serves, counted: what `make load` turns into calls per bar.

Counts by service and operation (`dynamodb.Query`, `sqs.SendMessageBatch`, `lambda.Invoke`, ...), from
any client: the runner, the Lambda workers, the Step Functions interpreter. For DynamoDB it also counts
the request units AWS would bill per table, from the request and the response:
- writes (PutItem, BatchWriteItem puts, UpdateItem, DeleteItem): 1 WRU per started KB of the item written
  (UpdateItem and deletes: 1, the emulator does not say how large the stored item was);
- reads (GetItem, Query, Scan, BatchGetItem): 1 RRU per started 4 KB of the items returned, half for an
  eventually consistent read, at least one half unit per request;
- transactions: twice that.
GET /_patternwatch/calls returns the running totals (tooling/local_aws/admin.py: `call_counts`); readers
take differences, so several tools can share one emulator.
"""
from __future__ import annotations

import io
import json
import math
import re
import threading
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

_lock = threading.Lock()
_calls: dict[str, int] = defaultdict(int)
_units: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_LAMBDA_INVOKE = re.compile(r"^/20\d\d-\d\d-\d\d/functions/([^/]+)/invocations")
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


def snapshot() -> dict[str, Any]:
    with _lock:
        return {"calls": dict(_calls), "dynamodb": {table: dict(units) for table, units in _units.items()}}


def _record(key: str, table_units: dict[str, dict[str, float]] | None = None) -> None:
    """Count the call; add its units to the table's totals and to the operation's (`Query.readUnits`)."""
    operation = key.split(".", 1)[1]
    with _lock:
        _calls[key] += 1
        for table, units in (table_units or {}).items():
            for name, value in units.items():
                _units[table][name] += value
                _units[table][f"{operation}.{name}"] += value


def attribute_size(value: dict[str, Any]) -> int:
    """The size DynamoDB bills for one attribute value (developer guide, "Item sizes")."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def number_size(text: str) -> int:
    """A number is about 1 byte per two significant digits, plus 1."""
    try:
        digits = Decimal(text).normalize().as_tuple().digits
    except InvalidOperation:
        return len(text)
    return 1 + math.ceil(len(digits) / 2)


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(item: dict[str, Any] | None) -> int:
    return max(1, math.ceil(item_size(item) / WRITE_UNIT_BYTES)) if item else 1


def read_units(items: list[dict[str, Any]], consistent: bool) -> float:
    units = max(1, math.ceil(sum(item_size(i) for i in items) / READ_UNIT_BYTES))
    return float(units) if consistent else max(0.5, units / 2)


def dynamodb_units(operation: str, request: dict[str, Any], response: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{table: {"writeUnits", "readUnits", "itemsWritten", "itemsRead"}} for one DynamoDB call."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        table = out[request.get("TableName", "?")]
        table["writeUnits"] += write_units(request.get("Item"))
        table["itemsWritten"] += 1
    elif operation == "BatchWriteItem":
        unprocessed = response.get("UnprocessedItems", {})
        for name, requests in request.get("RequestItems", {}).items():
            done = len(requests) - len(unprocessed.get(name, []))
            for entry in requests[:done]:
                out[name]["writeUnits"] += write_units(entry.get("PutRequest", {}).get("Item"))
                out[name]["itemsWritten"] += 1
    elif operation == "TransactWriteItems":
        for entry in request.get("TransactItems", []):
            (_, action), = entry.items()
            out[action.get("TableName", "?")]["writeUnits"] += 2 * write_units(action.get("Item"))
            out[action.get("TableName", "?")]["itemsWritten"] += 1
    elif operation in ("Query", "Scan"):
        table = out[request.get("TableName", "?")]
        items = response.get("Items", [])
        table["readUnits"] += read_units(items, bool(request.get("ConsistentRead")))
        table["itemsRead"] += len(items)
    elif operation == "GetItem":
        table = out[request.get("TableName", "?")]
        items = [response["Item"]] if response.get("Item") else []
        table["readUnits"] += read_units(items, bool(request.get("ConsistentRead")))
        table["itemsRead"] += len(items)
    elif operation == "BatchGetItem":
        for name, items in response.get("Responses", {}).items():
            consistent = bool(request.get("RequestItems", {}).get(name, {}).get("ConsistentRead"))
            out[name]["readUnits"] += sum(read_units([i], consistent) for i in items)
            out[name]["itemsRead"] += len(items)
    return {table: dict(units) for table, units in out.items()}


def operation_of(environ, body: bytes) -> tuple[str, str]:
    """(service, operation) of a request signed for an AWS service; ("", "") for anything else."""
    match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return "", ""
    service = match.group(1)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    invoke = _LAMBDA_INVOKE.match(environ.get("PATH_INFO", ""))
    if service == "lambda" and invoke:
        return service, "Invoke"
    if body and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode(errors="replace")).get("Action")
        if action:
            return service, action[0]
    return service, f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')[:40]}"


def counted(environ, start_response, app):
    """Serve the request with `app` and count it."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    service, operation = operation_of(environ, body)
    if not service:
        return app(environ, start_response)
    if service != "dynamodb" or operation not in _WRITES | _READS:
        _record(f"{service}.{operation}")
        return app(environ, start_response)
    status: list[str] = []

    def capture(status_line, headers, exc_info=None):
        status.append(status_line)
        return start_response(status_line, headers, exc_info)

    chunks = list(app(environ, capture))
    raw = b"".join(chunks)
    units = None
    if status and status[0].startswith("200"):
        try:
            units = dynamodb_units(operation, json.loads(body or b"{}"), json.loads(raw or b"{}"))
        except (ValueError, AttributeError):
            units = None
    elif status and "ConditionalCheckFailed" in raw.decode(errors="replace") and operation in ("PutItem", "UpdateItem"):
        # A failed condition still consumes the write units (AWS bills the attempt).
        try:
            units = dynamodb_units(operation, json.loads(body or b"{}"), {})
        except ValueError:
            units = None
    _record(f"{service}.{operation}", units)
    return [raw]
