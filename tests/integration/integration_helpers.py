"""Helpers for the end-to-end tests: inbox queues on topics, queue draining, streaming bars."""
from __future__ import annotations

import json
import time

from pattern_engine import detect_latest
from pattern_engine.synthetic import planted_bar_records
from patternwatch_shared.names.messages import CRITICAL_CONFIDENCE_THRESHOLD
from patternwatch_shared.detection import COLUMNS


def subscribe_inbox(clients, topic_arn: str, name: str) -> str:
    """A test queue subscribed to a topic (raw delivery), emptied first."""
    url = clients.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscriptions = clients.sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    if not any(s["Endpoint"] == arn for s in subscriptions):
        clients.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    drain(clients, url)
    return url


def drain(clients, queue_url: str) -> list[dict]:
    return [json.loads(body) for body in drain_raw(clients, queue_url)]


def drain_raw(clients, queue_url: str) -> list[str]:
    """Every message body waiting on a queue, as text, removed from the queue."""
    bodies = []
    while True:
        messages = clients.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            clients.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def planted_bars(symbol: str, pattern: str = "head-and-shoulders", *, seed: int = 7, noise: float = 0.001,
                 start: int = 1_609_718_400) -> list[dict]:
    """A seeded synthetic series with a planted pattern, as stream records for `symbol` (daily from 2021-01-04)."""
    return planted_bar_records(symbol, pattern, seed=seed, noise=noise, start=start, scale=100)


def put_records(clients, stream_name: str, payloads: list[bytes], partition_key: str) -> None:
    for offset in range(0, len(payloads), 500):
        response = clients.kinesis.put_records(
            StreamName=stream_name, Records=[{"Data": p, "PartitionKey": partition_key} for p in payloads[offset : offset + 500]]
        )
        assert response.get("FailedRecordCount", 0) == 0


def as_records(bars: list[dict]) -> list[bytes]:
    return [json.dumps(b).encode() for b in bars]


def queue_depth(clients, queue_url: str) -> int:
    """Messages waiting, read without receiving (a receive would count towards the redrive limit)."""
    attributes = clients.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def queue_in_flight(clients, queue_url: str) -> int:
    """Messages received and not yet deleted (e.g. an approval's expiry timer waiting for its deadline)."""
    attributes = clients.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


def pattern_event(symbol: str, bars: list[dict], *, pattern: str | None = None) -> dict:
    """The PatternDetected detail the consumer would emit for the best match (of `pattern`) in `bars`,
    built by the consumer's own code: an analysis workflow input."""
    from datetime import datetime, timezone

    from patternwatch_shared.detection import detect_in
    from patternwatch_shared.pattern_events import pattern_detected_detail

    columns = {field: [bar[field] for bar in bars] for field in COLUMNS}
    matches = [d for d in detect_in(columns) if pattern in (None, d.pattern)]
    best = max(matches, key=lambda d: d.confidence)
    return json.loads(pattern_detected_detail(symbol, best, datetime.now(timezone.utc), columns).model_dump_json())


def wait_for_execution(clients, execution_arn: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        execution = clients.stepfunctions.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING" or time.monotonic() > deadline:
            return execution
        time.sleep(0.3)


def execution_history(clients, execution_arn: str) -> list[dict]:
    events, request = [], {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = clients.stepfunctions.get_execution_history(**request)
        events += page["events"]
        if not page.get("nextToken"):
            return events
        request["nextToken"] = page["nextToken"]


def entered_states(history: list[dict]) -> list[str]:
    """State names in the order the execution entered them (Parallel branches interleave)."""
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def executions_with_symbol(clients, machine_arn: str, symbol: str) -> list[dict]:
    """The machine's executions whose input (a PatternDetected detail) is for `symbol`, described."""
    pages = clients.stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=machine_arn)
    described = (clients.stepfunctions.describe_execution(executionArn=e["executionArn"]) for page in pages for e in page["executions"])
    return [e for e in described if json.loads(e["input"]).get("symbol") == symbol]


def wait_for_executions(clients, machine_arn: str, symbol: str, *, count: int, timeout: float = 180) -> list[dict]:
    """Wait until `count` executions for `symbol` have started and all of them have ended; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        executions = executions_with_symbol(clients, machine_arn, symbol)
        ended = len(executions) >= count and all(e["status"] != "RUNNING" for e in executions)
        if ended or time.monotonic() > deadline:
            return executions
        time.sleep(0.5)


def query(clients, table: str, partition: str) -> list[dict]:
    return clients.dynamodb.query(
        TableName=table, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": partition}}
    )["Items"]


def alerts_before_the_workflow(symbol: str, bars: list[dict], threshold: float) -> dict[str, dict]:
    """What the consumer used to queue: bar by bar, the matches detect_latest first reports on that bar."""
    columns = {field: [bar[field] for bar in bars] for field in COLUMNS}
    expected = {}
    for end in range(len(bars)):
        prefix = {field: values[: end + 1] for field, values in columns.items()}
        for match in detect_latest(prefix):
            if match.confidence < threshold:
                continue
            end_timestamp = columns["timestamp"][match.end]
            alert_id = f"{symbol}#{end_timestamp:012d}#{match.pattern}"
            expected[alert_id] = {
                "alertId": alert_id,
                "symbol": symbol,
                "pattern": match.pattern,
                "confidence": match.confidence,
                "startTimestamp": columns["timestamp"][match.start],
                "endTimestamp": end_timestamp,
                "severity": "CRITICAL" if match.confidence >= CRITICAL_CONFIDENCE_THRESHOLD else "HIGH",
            }
    return expected
