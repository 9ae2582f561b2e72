"""The handler fuzz suite's shared parts: its Hypothesis profile, the tally of events tried, a moto
platform that is reset between examples, and strategies for the inputs that broke the handlers.

Every fuzz test runs its examples inside one moto context (started once per test) and empties the
tables and queues before each example, so examples are independent and shrinking replays them exactly.
The profile is derandomized and has no example database: a run is the same on every machine.
"""
from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.sqs.models import sqs_backends

from lambda_testkit import (
    APPROVAL_TRACKING, REGION, TRADING_PATTERNS, AwsResources, handler_copies, handler_environment, run_concurrently,
)
from patternwatch_shared import keys, strict_json
from patternwatch_shared.models import MAX_EPOCH_SECONDS, MIN_EPOCH_SECONDS
from patternwatch_shared.names.functions import ENV_PENDING_APPROVALS_QUEUE_URL

FUZZ_PROFILE = "patternwatch-fuzz"
settings.register_profile(
    FUZZ_PROFILE,
    derandomize=True,  # the examples come from a seed fixed per test: CI runs what you run
    database=None,  # and nothing is replayed from an earlier run
    deadline=None,  # moto's timings vary with the machine's load; speed is not what is tested here
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
# At least 500 generated events per handler in every run; PATTERNWATCH_FUZZ_EVENTS=5000 fuzzes deeper
# (still derandomized: the same number gives the same events).
EVENTS_PER_HANDLER = max(500, int(os.environ.get("PATTERNWATCH_FUZZ_EVENTS", "500")))


def fuzz(examples: int = EVENTS_PER_HANDLER) -> settings:
    return settings(settings.get_profile(FUZZ_PROFILE), max_examples=examples)


# --- the tally printed at the end of the session (conftest.py) -------------------------------------
@dataclass
class Tally:
    events: int = 0  # generated events delivered (a batch counts once, however many records it has)
    records: int = 0  # records or messages inside them
    deliveries: int = 0  # handler invocations, counting redeliveries and concurrent copies


TALLY: dict[str, Tally] = {}


def tally(handler: str) -> Tally:
    return TALLY.setdefault(handler, Tally())


def count_event(handler: str, records: int) -> Tally:
    """Count one generated event of `records` records (or messages, or requests) for `handler`."""
    counts = tally(handler)
    counts.events += 1
    counts.records += records
    return counts


def deliver_at_once(package: str, handler: str, events: list[Any], context: Any) -> list[Any]:
    """Each event delivered by its own copy of `<package>.handler` (as by separate Lambda
    environments), all at the same moment; the responses."""
    copies = handler_copies(package, len(events))
    tally(handler).deliveries += len(events)
    return run_concurrently([lambda copy=copy, event=event: copy.lambda_handler(event, context) for copy, event in zip(copies, events)])


# --- the platform --------------------------------------------------------------------------------
@dataclass
class FuzzPlatform:
    """moto in process for one test; each example starts from empty tables and queues.

    The handlers reach moto through boto3, as everywhere. The test's own setup and checks (emptying a
    table or queue, writing fixtures, reading what was stored or sent) go to moto's backends
    directly: through boto3 each costs a request's serialisation and parsing, milliseconds that
    would make up most of the suite's run time. `deliveries` is one queue that receives everything
    alert-processor delivers (it is the PendingApprovals queue of the fuzz environment, and
    subscribed to both topics), so one read sees every side effect.
    """

    resources: AwsResources
    deliveries: str

    @classmethod
    def create(cls, resources: AwsResources) -> FuzzPlatform:
        sqs, sns = resources.sqs, resources.sns
        url = sqs.create_queue(QueueName="fuzz-deliveries")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for topic in (resources.trading_alerts_topic, resources.approval_requests_topic):
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return cls(resources, url)

    def environment(self) -> dict[str, str]:
        return {**handler_environment(self.resources), ENV_PENDING_APPROVALS_QUEUE_URL: self.deliveries}

    def delivered(self) -> dict[str, list[str]]:
        """The alert ids of what was delivered since the last look, by kind, sorted."""
        seen: dict[str, list[str]] = {"pending approvals": [], "approval requests": [], "trading alerts": []}
        for message in self.messages(self.deliveries):
            if message.get("Type") == "Notification":
                kind = "approval requests" if message["TopicArn"] == self.resources.approval_requests_topic else "trading alerts"
                seen[kind].append(read_strictly(message["Message"])["alertId"])
            else:
                seen["pending approvals"].append(message["alertId"])
        return {kind: sorted(ids) for kind, ids in seen.items()}

    def clear(self, *, trading_patterns: bool = False, approvals: bool = False, queues: Iterable[str] = ()) -> AwsResources:
        """Empty what the previous example may have written."""
        for wanted, table in ((trading_patterns, TRADING_PATTERNS), (approvals, APPROVAL_TRACKING)):
            if wanted:
                _table(table).items.clear()
        for queue in queues:
            self.messages(queue)
        return self.resources

    def messages(self, queue_url: str) -> list[dict[str, Any]]:
        """The bodies sent to a queue since the last look, read strictly (valid JSON, no repeated key,
        no NaN); reading takes them out of the queue."""
        queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].get_queue(queue_url.rsplit("/", 1)[-1])
        with queue._messages_lock:
            bodies = [message.body for message in queue._messages]
            queue._messages.clear()
            queue._pending_messages.clear()
        return [read_strictly(body) for body in bodies]

    def published(self, inbox_url: str) -> list[dict[str, Any]]:
        """What SNS delivered to an inbox since the last look: each notification's Message, read strictly."""
        return [read_strictly(envelope["Message"]) for envelope in self.messages(inbox_url)]

    def bar_items(self, keys) -> list[dict[str, Any]]:
        """The stored bars with these (symbol, timestamp) keys, in key order."""
        wanted = {(bar_key(*key)["PK"]["S"], bar_key(*key)["SK"]["S"]) for key in keys}
        items = [item for item in self.items(TRADING_PATTERNS) if (item["PK"]["S"], item["SK"]["S"]) in wanted]
        return sorted(items, key=lambda item: (item["symbol"]["S"], int(item["timestamp"]["N"])))

    def put_items(self, table: str, items: list[dict[str, Any]]) -> None:
        """Write items as fixtures (items with one key: the last one wins)."""
        for item in items:
            _table(table).put_item(item)

    def approval_items(self) -> list[dict[str, Any]]:
        """ApprovalTracking: approvals and the delivery ledger."""
        return self.items(APPROVAL_TRACKING)

    def pattern_items(self, symbols) -> list[dict[str, Any]]:
        """Every stored pattern of `symbols`."""
        partitions = {keys.pattern_partition_key(symbol) for symbol in symbols}
        return [item for item in self.items(TRADING_PATTERNS) if item["PK"]["S"] in partitions]

    @staticmethod
    def items(table: str) -> list[dict[str, Any]]:
        """Every item of a table, as DynamoDB's API writes them."""
        return [item.to_json()["Attributes"] for item in _table(table).all_items()]


def _table(name: str):
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(name)


def read_strictly(text: str) -> Any:
    """JSON as any strict reader takes it: NaN or Infinity anywhere fails, as in strict_json.loads."""
    def non_finite(token: str) -> Any:
        raise AssertionError(f"non-finite number {token} written as JSON")

    document = json.loads(text, parse_constant=non_finite)
    strict_json.loads(text)
    return document


def bar_key(symbol: str, timestamp: int) -> dict[str, Any]:
    return {"PK": {"S": keys.bar_partition_key(symbol)}, "SK": {"S": keys.bar_sort_key(timestamp)}}


# --- JSON text with the shapes json.dumps cannot write ----------------------------------------------
def json_object(pairs: list[tuple[str, str]]) -> str:
    """An object from (key, raw JSON value text) pairs: repeated keys and NaN tokens stay as written."""
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in pairs) + "}"


def pairs_of(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(key, json.dumps(value)) for key, value in document.items()]


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


NON_FINITE_TOKENS = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400")
WRONG_TYPES = ('"10"', "true", "null", "[]", "{}", '""')
DEEP_NESTING = "[" * 1000 + "]" * 1000  # past the JSON reader's recursion limit, under the size caps


# --- market data ---------------------------------------------------------------------------------
T0 = 1_700_000_000
VALID_SYMBOLS = ("AAPL", "MSFT", "BRK.B", "X", "Z9-Q.1234567")  # the last is 12 characters, the maximum
INVALID_SYMBOLS = (
    "A" * 10_000, "A" * 13, "ÄPFEL", "株式会社", "AAPL\u200b", "𝔸𝔸𝔸", "aapl", "", " AAPL", "1ABC", "A\nB", "A\x00",
)
# DynamoDB numbers: magnitude 1e-130 to 9.9999999999999999999999999999999999999e+125.
STORABLE_EDGES = (1e-130, math.nextafter(1e-130, 1), 1e-129, 1.0, 1e125, math.nextafter(1e126, 0))
UNSTORABLE = (1e126, 1e200, 1e300, 1.7e308, math.nextafter(1e-130, 0), 1e-131, 1e-200, 5e-324)
prices = st.one_of(st.sampled_from(STORABLE_EDGES), st.floats(min_value=0.01, max_value=1e6), st.floats(min_value=1e-130, max_value=math.nextafter(1e126, 0)))
volumes = st.one_of(st.sampled_from((0, 0.0, 1, 1e-130, 1e12, math.nextafter(1e126, 0))), st.integers(0, 10**15))
# Few distinct times, so batches hold out-of-order and duplicate timestamps.
timestamps = st.one_of(st.sampled_from([T0 + 60 * k for k in range(12)]), st.sampled_from((MIN_EPOCH_SECONDS, MAX_EPOCH_SECONDS)))
BAR_FIELDS = ("symbol", "timestamp", "open", "high", "low", "close", "volume")
NUMBER_FIELDS = ("open", "high", "low", "close", "volume")


def epoch_seconds(timestamp: int | str) -> int:
    return timestamp if isinstance(timestamp, int) else int(datetime.fromisoformat(timestamp).timestamp())


@st.composite
def valid_bars(draw, symbols=st.sampled_from(VALID_SYMBOLS)) -> dict[str, Any]:
    low, high = sorted((draw(prices), draw(prices)))
    timestamp = draw(timestamps)
    if draw(st.integers(0, 9)) == 0:  # ISO 8601 text with a zone is a valid timestamp too
        timestamp = datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")
    return {
        "symbol": draw(symbols),
        "timestamp": timestamp,
        "open": draw(st.sampled_from((low, high))),
        "high": high,
        "low": low,
        "close": draw(st.sampled_from((low, high))),
        "volume": draw(volumes),
    }


@st.composite
def invalid_bar_texts(draw) -> tuple[str | bytes, str]:
    """(JSON text of a bar the platform must refuse, what is wrong with it)."""
    bar = draw(valid_bars())
    pairs = pairs_of(bar)
    kind = draw(st.sampled_from((
        "unstorable number", "non-finite number", "repeated key", "missing field", "extra field", "wrong type",
        "high below low", "zero or negative price", "bad symbol", "bad timestamp", "not an object", "not JSON",
        "nested too deeply", "integer with too many digits", "not UTF-8", "too large",
    )))
    if kind == "unstorable number":
        bar[draw(st.sampled_from(NUMBER_FIELDS))] = draw(st.sampled_from(UNSTORABLE))
        return json.dumps(bar), kind
    if kind == "non-finite number":
        field_name = draw(st.sampled_from(NUMBER_FIELDS))
        return json_object([(k, draw(st.sampled_from(NON_FINITE_TOKENS)) if k == field_name else v) for k, v in pairs]), kind
    if kind == "repeated key":
        key, value = draw(st.sampled_from(pairs))
        return json_object([*pairs, (key, draw(st.sampled_from((value, '"AAPL"', "1", "2.5"))))]), kind
    if kind == "missing field":
        del bar[draw(st.sampled_from(BAR_FIELDS))]
        return json.dumps(bar), kind
    if kind == "extra field":
        return json_object([*pairs, (draw(st.sampled_from(("exchange", "Symbol", "", "timestamp "))), '"XNAS"')]), kind
    if kind == "wrong type":
        field_name = draw(st.sampled_from(BAR_FIELDS))
        return json_object([(k, draw(st.sampled_from(WRONG_TYPES)) if k == field_name else v) for k, v in pairs]), kind
    if kind == "high below low":
        bar["high"] = bar["low"] * 0.5
        return json.dumps(bar), kind
    if kind == "zero or negative price":
        bar[draw(st.sampled_from(NUMBER_FIELDS[:4]))] = draw(st.sampled_from((0, 0.0, -1.0, -0.0, -1e-130)))
        return json.dumps(bar), kind
    if kind == "bad symbol":
        bar["symbol"] = draw(st.one_of(st.sampled_from(INVALID_SYMBOLS), st.text(min_size=1, max_size=8).filter(lambda s: not s.isascii())))
        return json.dumps(bar, ensure_ascii=draw(st.booleans())), kind
    if kind == "bad timestamp":
        bar["timestamp"] = draw(st.sampled_from((
            MIN_EPOCH_SECONDS - 1, MAX_EPOCH_SECONDS + 1, T0 * 1000, T0 + 0.5, True, -1, "2024-01-02T00:00:00",
            "yesterday", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "x" * 41,
        )))
        return json.dumps(bar), kind
    if kind == "not an object":
        return draw(st.sampled_from(("[1, 2]", '"AAPL"', "42", "null", json.dumps([bar])))), kind
    if kind == "not JSON":
        return draw(st.sampled_from(("", "not json", "{", json.dumps(bar)[:-1], json.dumps(bar) + " trailing", "{'symbol': 'AAPL'}"))), kind
    if kind == "nested too deeply":
        return DEEP_NESTING, kind
    if kind == "integer with too many digits":
        return json_object([(k, "9" * 1500 if k == "volume" else v) for k, v in pairs]), kind
    if kind == "not UTF-8":
        return json.dumps(bar).encode("utf-16"), kind
    return json.dumps({**bar, "note": "x" * 3000}), kind  # too large


def good_records() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """(Kinesis data, the bar the platform must store)."""
    return valid_bars().map(lambda bar: (b64(json.dumps(bar)), bar))


def bad_records() -> st.SearchStrategy[tuple[Any, None]]:
    """(Kinesis data the platform must refuse, None)."""
    raw = st.sampled_from(("!!! not base64 !!!", "QUJ", "", 12345, None, b64(b"\x00\xff" * 5), "A" * 5000))
    return st.one_of(invalid_bar_texts().map(lambda text_kind: b64(text_kind[0])), raw).map(lambda data: (data, None))


def stream_records() -> st.SearchStrategy[tuple[Any, dict[str, Any] | None]]:
    """A record of a mixed batch: a good bar or a bad record, about even."""
    return st.one_of(good_records(), bad_records())


# --- alerts --------------------------------------------------------------------------------------
ALERT_IDS = ("AAPL#001700000000#double-top", "MSFT#001700000060#head-and-shoulders", "threshold#2026-01-01T00:05:00.000000Z", "a" * 256)
SEVERITY_NAMES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
detail_values = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.booleans(),
)


@st.composite
def valid_alerts(draw) -> dict[str, Any]:
    alert_id = draw(st.sampled_from(ALERT_IDS))
    source = "threshold" if alert_id.startswith("threshold") else draw(st.sampled_from(("stream", "workflow")))
    alert: dict[str, Any] = {
        "alertId": alert_id,
        "source": source,
        "severity": draw(st.sampled_from(SEVERITY_NAMES)),
        "detectedAt": "2026-01-01T00:00:00.000000Z",
        "confidence": draw(st.floats(0, 1)),
    }
    if source != "threshold" or draw(st.booleans()):
        alert.update(symbol=draw(st.sampled_from(VALID_SYMBOLS)), pattern=draw(st.sampled_from(("double-top", "head-and-shoulders"))))
        alert.update(startTimestamp=T0 - 3000, endTimestamp=T0)
    if draw(st.booleans()):
        alert["details"] = draw(st.dictionaries(st.text(max_size=20), detail_values, max_size=4))
    return alert


def alert_messages() -> st.SearchStrategy[tuple[str, dict[str, Any] | None]]:
    """(AlertQueue message body, the alert it carries if the platform must deliver it, else None)."""
    return st.one_of(
        valid_alerts().map(lambda alert: (json.dumps(alert), alert)),
        invalid_alert_texts().map(lambda text_kind: (text_kind[0], None)),
    )


@st.composite
def invalid_alert_texts(draw) -> tuple[str, str]:
    alert = draw(valid_alerts())
    pairs = pairs_of(alert)
    kind = draw(st.sampled_from((
        "non-finite detail", "non-finite confidence", "repeated key", "missing field", "extra field", "wrong type",
        "unknown severity", "pattern alert without its pattern", "too long", "not JSON", "not an object", "nested too deeply",
    )))
    if kind == "non-finite detail":
        return json_object([*[(k, v) for k, v in pairs if k != "details"], ("details", json_object([("ratio", draw(st.sampled_from(NON_FINITE_TOKENS)))]))]), kind
    if kind == "non-finite confidence":
        return json_object([(k, draw(st.sampled_from(NON_FINITE_TOKENS)) if k == "confidence" else v) for k, v in pairs]), kind
    if kind == "repeated key":
        key, value = draw(st.sampled_from(pairs))
        return json_object([*pairs, (key, value)]), kind
    if kind == "missing field":
        del alert[draw(st.sampled_from(("alertId", "source", "severity", "detectedAt", "confidence")))]
        return json.dumps(alert), kind
    if kind == "extra field":
        return json.dumps({**alert, "approved": True}), kind
    if kind == "wrong type":
        field_name = draw(st.sampled_from(("alertId", "confidence", "severity")))
        return json_object([*[(k, v) for k, v in pairs if k != field_name], (field_name, draw(st.sampled_from(WRONG_TYPES[1:])))]), kind
    if kind == "unknown severity":
        return json.dumps({**alert, "severity": draw(st.sampled_from(("URGENT", "critical", "")))}), kind
    if kind == "pattern alert without its pattern":
        return json.dumps({k: v for k, v in alert.items() if k not in ("symbol", "pattern")} | {"source": "stream"}), kind
    if kind == "too long":
        return json.dumps({**alert, "details": {"note": "x" * 20_000}}), kind
    if kind == "not JSON":
        return draw(st.sampled_from(("", "{", "alert", json.dumps(alert)[:-1]))), kind
    if kind == "not an object":
        return draw(st.sampled_from(("[]", "null", json.dumps([alert])))), kind
    return DEEP_NESTING * 5, kind
