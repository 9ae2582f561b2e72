"""Event builders and AWS fakes shared by the Lambda function tests (imported by the test modules)."""
from __future__ import annotations

import base64
import functools
import functools
import importlib.util
import json
import threading
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from patternwatch_shared import aws
from patternwatch_shared.approvers import Approver, approvers_json
from patternwatch_shared.names.functions import (
    ENV_ALERT_CONFIDENCE_THRESHOLD, ENV_ALERT_QUEUE_URL, ENV_APPROVAL_API_BASE_URL, ENV_APPROVAL_EXPIRY_SECONDS,
    ENV_APPROVAL_REQUESTS_TOPIC_ARN, ENV_APPROVAL_TABLE, ENV_APPROVERS, ENV_DATA_BUCKET, ENV_PENDING_APPROVALS_QUEUE_URL,
    ENV_THRESHOLD_CHECK_MIN_BREACHES, ENV_THRESHOLD_CHECK_RULE_NAME, ENV_TRADING_ALERTS_TOPIC_ARN, ENV_TRADING_PATTERNS_TABLE,
)
from patternwatch_shared.names.messages import (
    CRITICAL_CONFIDENCE_THRESHOLD, EVENT_DETAIL_TYPE_PATTERN_DETECTED, EVENT_SOURCE_PATTERNS, PATTERN_FAMILIES,
)
from patternwatch_shared.names.table import (
    APPROVAL_PARTITION_KEY, RECENT_PATTERNS_INDEX, RECENT_PATTERNS_INDEX_PARTITION_KEY,
    RECENT_PATTERNS_INDEX_SORT_KEY, TABLE_PARTITION_KEY, TABLE_SORT_KEY,
)

REGION = "us-east-1"
TRADING_PATTERNS = "TradingPatterns-test"
APPROVAL_TRACKING = "ApprovalTracking-test"
DATA_BUCKET = "patternwatch-data-test"
API_BASE_URL = "https://api.example.test/v1"  # the stage is v1 (patternwatch_infra/api.py)
APPROVERS = (Approver("ada", "Ada Lovelace"), Approver("grace", "Grace Hopper"))
THRESHOLD_CHECK_RULE = "threshold-check-test"  # the EventBridge schedule that runs the threshold checker
T0 = 1_700_000_000  # a bar timestamp well inside the accepted epoch range


@dataclass
class AwsResources:
    dynamodb: Any
    sqs: Any
    sns: Any
    s3: Any
    events: Any
    alert_queue_url: str
    pending_queue_url: str
    trading_alerts_topic: str
    approval_requests_topic: str
    trading_alerts_inbox: str  # SQS queue subscribed to TradingAlerts, to read what was published
    approval_requests_inbox: str
    pattern_events_inbox: str  # SQS queue targeted by a PatternDetected rule on the default bus

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object in the data bucket under `prefix`, by key."""
        listed = self.s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=prefix).get("Contents", [])
        return {o["Key"]: self.s3.get_object(Bucket=DATA_BUCKET, Key=o["Key"])["Body"].read() for o in listed}

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        """Every message currently in the queue (deleted as read), bodies parsed."""
        bodies = []
        while True:
            response = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            messages = response.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def published(self, inbox_url: str) -> list[dict[str, Any]]:
        """SNS messages delivered to an inbox queue: the SNS envelope with Message parsed."""
        envelopes = self.drain(inbox_url)
        for envelope in envelopes:
            envelope["Message"] = json.loads(envelope["Message"])
        return envelopes

    def pattern_events(self) -> list[dict[str, Any]]:
        """The PatternDetected events put on the default bus since the last call, as EventBridge delivered them."""
        return self.drain(self.pattern_events_inbox)

    def table_items(self, table: str = TRADING_PATTERNS) -> list[dict[str, Any]]:
        items, request = [], {"TableName": table}
        while True:
            response = self.dynamodb.scan(**request)  # tests may scan; the handlers never do
            items.extend(response["Items"])
            if "LastEvaluatedKey" not in response:
                return items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


@functools.cache
def moto_client(service: str) -> Any:
    """The tests' own client for `service`, made once per process (~10 ms of CPU each time, 1,300 times a run
    before). moto intercepts a client's calls in whichever mock_aws is active, so each test still starts empty."""
    import boto3

    return boto3.client(service, region_name=REGION)


def create_resources() -> AwsResources:
    """The tables, queues, topics and data bucket the handlers use, created in the current moto context,
    with an SQS inbox subscribed to each topic to read what was published, and one receiving the
    PatternDetected events put on the default bus."""
    dynamodb, sqs, sns, events, s3 = (moto_client(service) for service in ("dynamodb", "sqs", "sns", "events", "s3"))
    s3.create_bucket(Bucket=DATA_BUCKET)
    create_trading_patterns_table(dynamodb)
    create_approval_tracking_table(dynamodb)
    alert_queue = sqs.create_queue(QueueName="AlertQueue")["QueueUrl"]
    pending_queue = sqs.create_queue(QueueName="PendingApprovals")["QueueUrl"]
    trading_alerts = sns.create_topic(Name="TradingAlerts")["TopicArn"]
    approval_requests = sns.create_topic(Name="AlertApprovalRequests")["TopicArn"]
    inboxes = {}
    for topic, inbox in ((trading_alerts, "trading-alerts-inbox"), (approval_requests, "approval-requests-inbox")):
        url = sqs.create_queue(QueueName=inbox)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        inboxes[topic] = url
    # What the consumer emits: a rule on the default bus like the deployed one, delivering to a queue.
    pattern_events = subscribe_to_pattern_events(events, sqs)
    return AwsResources(
        dynamodb=dynamodb,
        sqs=sqs,
        sns=sns,
        s3=s3,
        events=events,
        alert_queue_url=alert_queue,
        pending_queue_url=pending_queue,
        trading_alerts_topic=trading_alerts,
        approval_requests_topic=approval_requests,
        trading_alerts_inbox=inboxes[trading_alerts],
        approval_requests_inbox=inboxes[approval_requests],
        pattern_events_inbox=pattern_events,
    )


def handler_environment(resources: AwsResources) -> dict[str, str]:
    """Every variable the six handlers read, pointing at `resources`."""
    return {
        ENV_TRADING_PATTERNS_TABLE: TRADING_PATTERNS,
        ENV_APPROVAL_TABLE: APPROVAL_TRACKING,
        ENV_ALERT_QUEUE_URL: resources.alert_queue_url,
        ENV_PENDING_APPROVALS_QUEUE_URL: resources.pending_queue_url,
        ENV_TRADING_ALERTS_TOPIC_ARN: resources.trading_alerts_topic,
        ENV_APPROVAL_REQUESTS_TOPIC_ARN: resources.approval_requests_topic,
        ENV_APPROVAL_EXPIRY_SECONDS: "3600",
        ENV_APPROVAL_API_BASE_URL: API_BASE_URL,
        ENV_APPROVERS: approvers_json(APPROVERS),
        ENV_DATA_BUCKET: DATA_BUCKET,
        ENV_ALERT_CONFIDENCE_THRESHOLD: "0.9",
        ENV_THRESHOLD_CHECK_MIN_BREACHES: "3",
        ENV_THRESHOLD_CHECK_RULE_NAME: THRESHOLD_CHECK_RULE,
    }


def create_approval_tracking_table(dynamodb) -> None:
    dynamodb.create_table(
        TableName=APPROVAL_TRACKING,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": APPROVAL_PARTITION_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": APPROVAL_PARTITION_KEY, "KeyType": "HASH"}],
    )


def subscribe_to_pattern_events(events, sqs) -> str:
    """A queue that receives every PatternDetected event put on the default bus (moto delivers SQS targets)."""
    url = sqs.create_queue(QueueName="pattern-events-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [EVENT_SOURCE_PATTERNS], "detail-type": [EVENT_DETAIL_TYPE_PATTERN_DETECTED]}
    events.put_rule(Name="pattern-detected-test", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="pattern-detected-test", Targets=[{"Id": "inbox", "Arn": arn}])
    return url


def create_trading_patterns_table(dynamodb) -> None:
    dynamodb.create_table(
        TableName=TRADING_PATTERNS,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": TABLE_SORT_KEY, "AttributeType": "S"},
            {"AttributeName": RECENT_PATTERNS_INDEX_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": RECENT_PATTERNS_INDEX_SORT_KEY, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": TABLE_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": TABLE_SORT_KEY, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": RECENT_PATTERNS_INDEX,
                "KeySchema": [
                    {"AttributeName": RECENT_PATTERNS_INDEX_PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": RECENT_PATTERNS_INDEX_SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


# --- Event builders (shapes as Lambda delivers them) -----------------------------------------
def bar_json(symbol: str, timestamp: int, close: float, **overrides: Any) -> dict[str, Any]:
    bar = {
        "symbol": symbol,
        "timestamp": timestamp,
        "open": close,
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": 1000,
    }
    bar.update(overrides)
    return bar


def b64(payload: bytes | str | dict) -> str:
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return base64.b64encode(payload).decode()


def kinesis_event(datas: list[str], *, first_sequence: int = 1, partition_keys: list[str] | None = None) -> dict[str, Any]:
    records = []
    for offset, data in enumerate(datas):
        sequence = f"{49590338271490256608559692538361571095921575989136588898 + first_sequence + offset}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": (partition_keys or ["pk"] * len(datas))[offset],
                    "sequenceNumber": sequence,
                    "data": data,
                    "approximateArrivalTimestamp": 1545084650.987,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000006:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
                "awsRegion": REGION,
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/market-data",
            }
        )
    return {"Records": records}


def kinesis_bars_event(bars: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return kinesis_event([b64(bar) for bar in bars], partition_keys=[bar["symbol"] for bar in bars], **kwargs)


def deliver_like_kinesis(handler: Any, datas: list[str], context: Any, *, batch_size: int = 100, retries: int = 3) -> list[str]:
    """What the stream's event source mapping does with `datas`, in order; returns the data of the
    records that end at its on-failure destination.

    Batches of `batch_size` records; a batch whose response lists item failures is delivered again
    from its first failed record, at most `retries` times; the records still failing after the last
    retry go to the on-failure destination (for Lambda, the batch's metadata: the records are skipped).
    """
    destination: list[str] = []
    for start in range(0, len(datas), batch_size):
        batch = kinesis_event(datas[start : start + batch_size], first_sequence=start)
        for attempt in range(retries + 1):
            failed = set(failed_ids(handler(batch, context)))
            if not failed:
                break
            records = batch["Records"]
            first = next(i for i, record in enumerate(records) if record["kinesis"]["sequenceNumber"] in failed)
            if attempt == retries:
                destination.extend(r["kinesis"]["data"] for r in records[first:] if r["kinesis"]["sequenceNumber"] in failed)
            batch = {"Records": records[first:]}
    return destination


def sequence_numbers(event: dict[str, Any]) -> list[str]:
    return [record["kinesis"]["sequenceNumber"] for record in event["Records"]]


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"AQEB{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1545082649183",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082649185",
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:AlertQueue",
                "awsRegion": REGION,
            }
            for index, body in enumerate(bodies)
        ]
    }


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


# Bodies flagged isBase64Encoded that are not base64 of UTF-8 text: not base64 at all, bad padding,
# non-ASCII characters, and valid base64 of bytes that are not UTF-8.
BAD_BASE64_BODIES = ("%%% not base64 %%%", "Q===", "QUJ", "w6k=\u00e9", base64.b64encode(b"\xff\xfe{}").decode())


def api_event(method: str, resource: str, path: str, *, body: str | None = None,
              path_parameters: dict[str, str] | None = None, query: dict[str, str] | None = None,
              base64_encoded: bool = False) -> dict[str, Any]:
    """An API Gateway REST proxy event; with base64_encoded, `body` is sent as is, flagged isBase64Encoded."""
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Host": "api.example.test"},
        "multiValueHeaders": {"Content-Type": ["application/json"], "Host": ["api.example.test"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "09/Apr/2026:12:34:56 +0000",
            "path": f"/v1{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "v1",
            "domainPrefix": "api",
            "requestTimeEpoch": 1775738096000,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "pytest"},
            "domainName": "api.example.test",
            "apiId": "abcdef1234",
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def scheduled_event(moment: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:123456789012:rule/{THRESHOLD_CHECK_RULE}"],
        "detail": {},
    }


class ClientInterceptor:
    """Wraps a boto3 client: every call of one of its methods goes through `intercept`; everything else
    (meta, exceptions) is the client's own. Subclasses say what happens around a call."""

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute
        return functools.partial(self.intercept, name, attribute)

    def intercept(self, operation: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class FlakyClient(ClientInterceptor):
    """Wraps a boto3 client; the named operation raises a ClientError on the chosen call numbers.

    Used for fault tests: moto answers normally otherwise.
    """

    def __init__(self, client: Any, operation: str, failing_calls: set[int], code: str = "InternalServerError"):
        super().__init__(client)
        self._operation = operation
        self._failing_calls = failing_calls
        self._code = code
        self.calls = 0

    def intercept(self, operation: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if operation == self._operation:
            self.calls += 1
            if self.calls in self._failing_calls:
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": self._code, "Message": "injected fault"}}, operation)
        return call(*args, **kwargs)


def install_client(service: str, client: Any) -> None:
    """Make the handlers use `client` for `service` (the factory caches one client per service)."""
    aws._clients[service] = client


class RecordingClient:
    """Wraps a boto3 client and records which operations were called (e.g. to prove no Scan)."""

    def __init__(self, client: Any):
        self._client = client
        self.operations: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("meta", "exceptions"):
            return attribute

        def record(*args: Any, **kwargs: Any) -> Any:
            self.operations.append(name)
            return attribute(*args, **kwargs)

        return record


def emf_blobs(stdout: str) -> list[dict[str, Any]]:
    """The EMF metric blobs Powertools printed (one JSON object per line)."""
    blobs = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def metric_values(stdout: str, metric: str, **dimensions: str) -> list[float]:
    values: list[float] = []
    for blob in emf_blobs(stdout):
        if metric in blob and all(blob.get(k) == v for k, v in dimensions.items()):
            value = blob[metric]
            values.extend(value if isinstance(value, list) else [value])
    return values


def planted_bars(symbol: str, pattern: str = "head-and-shoulders", seed: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Bars with a clearly planted pattern, and the index of the bar at which the engine reports it.

    Uses the engine's own synthetic generator, and the real engine to find where the match ends,
    so these tests follow the engine rather than a copy of its rules.
    """
    from pattern_engine import detect
    from pattern_engine.synthetic import planted_bar_records

    bars = planted_bar_records(symbol, pattern, seed=seed, noise=0.0005)
    columns = {field: [bar[field] for bar in bars] for field in ("timestamp", "open", "high", "low", "close", "volume")}
    matches = [m for m in detect(columns) if m.pattern == pattern and m.confidence > CRITICAL_CONFIDENCE_THRESHOLD]
    assert matches, f"the engine no longer finds a planted {pattern} (seed {seed})"
    return bars, matches[0].end


def pattern_event_detail(symbol: str, pattern: str = "head-and-shoulders", seed: int = 0) -> dict[str, Any]:
    """The PatternDetected detail the consumer emits for a planted pattern, built by the consumer's own code."""
    from patternwatch_shared.detection import COLUMNS, detect_in
    from patternwatch_shared.pattern_events import pattern_detected_detail

    bars, end = planted_bars(symbol, pattern, seed)
    columns = {field: [bar[field] for bar in bars[: end + 1]] for field in COLUMNS}
    detection = next(d for d in detect_in(columns, latest_only=True) if d.pattern == pattern)
    detail = pattern_detected_detail(symbol, detection, datetime(2026, 3, 2, tzinfo=timezone.utc), columns)
    return json.loads(detail.model_dump_json())


def run_workflow(detail: dict[str, Any], context: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """pattern-detector's actions on one PatternDetected detail, chained as PatternAnalysisWorkflow chains them:
    validate -> one detect per family (the Parallel state) -> score -> decide. Returns (scored, decided)."""
    from pattern_detector import handler

    validated = handler.lambda_handler({"action": "validate", "detail": detail, "correlationId": "exec-1"}, context)
    branches = [
        handler.lambda_handler({"action": "detect", "family": family, "symbol": validated["symbol"], "bars": validated["bars"]}, context)
        for family in PATTERN_FAMILIES
    ]
    scored = handler.lambda_handler(
        {"action": "score", "symbol": validated["symbol"], "candidate": validated["candidate"], "results": branches}, context
    )
    decided = handler.lambda_handler(
        {"action": "decide", "symbol": scored["symbol"], "candidate": scored["candidate"], "confirmed": scored["confirmed"]}, context
    )
    return scored, decided


def flat_bars(symbol: str, count: int, *, start: int = 1_700_000_000, price: float = 50.0) -> list[dict[str, Any]]:
    """Bars on a gentle straight line: valid, and no pattern for the engine to find."""
    return [bar_json(symbol, start + 60 * i, price + 0.01 * i) for i in range(count)]


class LinearizableClient(ClientInterceptor):
    """Runs each call on the wrapped client one at a time.

    Real DynamoDB applies a conditional write to an item atomically. moto in process does not: it
    reads the item, checks the condition and writes in separate Python steps, so under 20 threads
    two conditional updates of the same item can both succeed (seen in most runs of the race test
    without this wrapper). Serialising single calls restores DynamoDB's per-request atomicity while
    the handlers' own steps (update, read-back, publish) still interleave freely between calls.
    """

    def __init__(self, client: Any):
        super().__init__(client)
        self._lock = threading.Lock()

    def intercept(self, operation: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return call(*args, **kwargs)


def alert_body(**overrides) -> dict[str, Any]:
    """A valid AlertQueue message (a HIGH stream alert for an AAPL double top), with overrides."""
    body = {
        "alertId": f"AAPL#{str(T0).zfill(12)}#double-top",
        "source": "stream",
        "severity": "HIGH",
        "detectedAt": "2026-01-01T00:00:00.000000Z",
        "confidence": 0.93,
        "symbol": "AAPL",
        "pattern": "double-top",
        "startTimestamp": T0 - 3000,
        "endTimestamp": T0,
    }
    body.update(overrides)
    return body


# --- concurrent deliveries -------------------------------------------------------------------------
_HANDLER_COPIES: dict[str, list[ModuleType]] = {}


def handler_copies(package: str, count: int = 2) -> list[ModuleType]:
    """`count` separate copies of `<package>.handler`, as separate Lambda execution environments have
    them: each with its own module globals (batch processor, Powertools objects). Concurrent
    deliveries in one test process must not share those, as they never do in Lambda."""
    copies = _HANDLER_COPIES.setdefault(package, [])
    origin = importlib.util.find_spec(f"{package}.handler").origin
    while len(copies) < count:
        spec = importlib.util.spec_from_file_location(f"{package}.handler_container_{len(copies)}", origin)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        copies.append(module)
    return copies[:count]


def run_concurrently(calls: list[Callable[[], Any]], *, outer: Callable[[Any], Any] = lambda client: client) -> list[Any]:
    """Start every call at the same moment on its own thread; their results, or the first error raised.

    DynamoDB applies each request atomically, which moto in process does not: the DynamoDB client is
    serialised per call (LinearizableClient) while the handlers' own steps interleave freely.
    `outer` may wrap that client once more, outside the serialisation (to hold threads at a point).
    """
    real = aws.client("dynamodb")
    install_client("dynamodb", outer(LinearizableClient(real)))
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = calls[index]()
        except BaseException as error:  # surfaced below: a crashed thread must fail the example
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    install_client("dynamodb", real)
    if errors:
        raise errors[0]
    return results


class MeetAtFirstCall(ClientInterceptor):
    """Holds each thread's first call that `matches` until every one of `parties` threads has made
    one: the concurrent deliveries then all take their first step before any takes a second."""

    def __init__(self, client: Any, parties: int, matches: Callable[[str, dict], bool]):
        super().__init__(client)
        self._barrier = threading.Barrier(parties, timeout=10)
        self._matches = matches
        self._local = threading.local()

    def intercept(self, operation: str, call: Callable[..., Any], *args: Any, **request: Any) -> Any:
        if not getattr(self._local, "met", False) and self._matches(operation, request):
            self._local.met = True
            self._barrier.wait()
        return call(*args, **request)


class FakeSubsegment:
    def __init__(self):
        self.annotations: dict = {}
        self.metadata: dict = {}

    def put_annotation(self, key, value):
        self.annotations[key] = value

    def put_metadata(self, key, value, namespace="default"):
        self.metadata[(namespace, key)] = value


class FakeProvider:
    """Stands in for tracer.provider to see what the detection subsegment records."""

    def __init__(self):
        self.subsegments: list[tuple[str, FakeSubsegment]] = []

    @contextmanager
    def in_subsegment(self, name=None, **kwargs):
        subsegment = FakeSubsegment()
        self.subsegments.append((name, subsegment))
        yield subsegment
