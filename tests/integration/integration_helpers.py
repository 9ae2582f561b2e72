"""Helpers for the end-to-end tests: inbox queues on topics, queue draining, streaming bars."""
from __future__ import annotations

import json
import time

from pattern_engine.synthetic import planted_bar_records


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


def planted_bars(symbol: str, pattern: str = "head-and-shoulders", *, seed: int = 7, start: int = 1_609_718_400) -> list[dict]:
    """A seeded synthetic series with a clean planted pattern, as stream records for `symbol` (daily from 2021-01-04)."""
    return planted_bar_records(symbol, pattern, seed=seed, start=start, scale=100)


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


def workflow_bars(bars: list[dict]) -> list[dict]:
    """Stream bars without their symbol: the workflow carries the symbol once (patternwatch_shared.models.BarValues)."""
    return [{k: v for k, v in b.items() if k != "symbol"} for b in bars]


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
    executions = clients.stepfunctions.list_executions(stateMachineArn=machine_arn)["executions"]
    return [e for e in executions
            if json.loads(clients.stepfunctions.describe_execution(executionArn=e["executionArn"])["input"]).get("symbol") == symbol]
