"""The local trigger runner: the event source mappings and schedules Lambda would run, on the emulator.

Everything it invokes goes through the emulator's local Lambda service (`lambda.invoke`, which runs the
deployed package in a worker process: tooling/local_aws/lambda_service.py). The runner itself only
does what the Lambda pollers and EventBridge's scheduler do:
- it reads what Terraform created back from the emulator: event source mappings, EventBridge schedules
  and the REST API;
- it polls Kinesis and SQS, builds real event shapes and invokes the mapped alias;
- it reads function errors from the Invoke response (FunctionError) and honours batch-item-failure
  responses: Kinesis records are retried from the first failure, bisected, and after the mapping's
  retries go to its on-failure destination; a failed SQS message is left alone, as Lambda leaves it:
  it is received again when its visibility timeout ends on the platform clock (advance the clock
  rather than wait), and the queue's redrive policy moves it to the DLQ;
- it publishes what Lambda's stream poller publishes: IteratorAge (AWS/Lambda) and, for the enhanced
  fan-out consumer, SubscribeToShardEvent.MillisBehindLatest (AWS/Kinesis);
- it fires schedules through their rule's targets (the emulator's /_patternwatch/events/fire), when a
  rule's period has elapsed on the platform clock;
- `drain()` also waits for the stack's Step Functions executions: a stream record can start the analysis
  workflow (the consumer's PatternDetected event, through its rule), whose decide step queues an alert
  for the alert queue's poller, so the platform is quiet only when no execution is running either;
- `request(...)` sends HTTP requests to the REST API the emulator serves, like any client.
"""
from __future__ import annotations

import base64
import json
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .local_aws import admin

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}


@dataclass(frozen=True)
class DeployedFunction:
    """A function as a trigger names it, with the configuration the emulator holds for it."""

    name: str
    arn: str  # as the trigger named it (an alias ARN for our mappings, routes and rules)
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int


@dataclass(frozen=True)
class Invocation:
    """What `lambda.invoke` answered: the decoded payload and FunctionError (None when the function succeeded)."""

    payload: Any
    function_error: str | None

    @property
    def failed(self) -> bool:
        return self.function_error is not None


def function_name_from_arn(arn: str) -> str:
    """`arn:aws:lambda:r:a:function:Name[:qualifier]` or a plain name -> `Name`."""
    return arn.split(":")[6] if arn.startswith("arn:") else arn


# --- Event shapes (as Lambda delivers them) ---------------------------------------------------------

def kinesis_event(records: list[dict], stream_arn: str, shard_id: str, region: str) -> dict:
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode(),
                    "approximateArrivalTimestamp": _epoch(r.get("ApproximateArrivalTimestamp")),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/local-runner",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for r in records
        ]
    }


def sqs_event(messages: list[dict], queue_arn: str, region: str) -> dict:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    k: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
                    for k, v in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if value is not None else time.time()


def failed_ids(response: Any) -> list[str] | None:
    """Item identifiers a partial batch response reports as failed; None means all succeeded."""
    if isinstance(response, dict) and response.get("batchItemFailures"):
        return [f["itemIdentifier"] for f in response["batchItemFailures"]]
    return None


# --- Invoking through the emulator's Lambda service ---------------------------------------------------

class LambdaInvoker:
    """`lambda.invoke` on the emulator, which runs the function in its worker process."""

    def __init__(self, session, endpoint: str) -> None:
        from botocore.config import Config

        self.endpoint = endpoint
        self.region = session.region_name
        # No client retries (a retried Invoke would run the function twice) and room for the longest timeout.
        config = Config(retries={"total_max_attempts": 1}, read_timeout=960, connect_timeout=5)
        self.lambda_client = session.client("lambda", endpoint_url=endpoint, config=config)
        self.cloudwatch = session.client("cloudwatch", endpoint_url=endpoint)
        self.invocations = 0

    def function(self, arn_or_name: str) -> DeployedFunction:
        config = self.lambda_client.get_function_configuration(FunctionName=function_name_from_arn(arn_or_name))
        return DeployedFunction(
            name=config["FunctionName"],
            arn=arn_or_name,
            handler=config["Handler"],
            environment=config.get("Environment", {}).get("Variables", {}),
            timeout=config.get("Timeout", 30),
            memory=config.get("MemorySize", 512),
        )

    def invoke(self, function: DeployedFunction, event: dict) -> Invocation:
        self.invocations += 1
        try:
            response = self.lambda_client.invoke(FunctionName=function.arn, Payload=json.dumps(event).encode())
        except self.lambda_client.exceptions.TooManyRequestsException:
            return Invocation(None, "Throttled")  # the poller retries the batch, as Lambda does after a throttle
        raw = response["Payload"].read()
        payload = json.loads(raw) if raw else None
        return Invocation(payload, response.get("FunctionError"))

    def put_metric(self, namespace: str, name: str, value: float, unit: str, *dimension_sets: dict[str, str]) -> None:
        self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=[
            {"MetricName": name, "Value": value, "Unit": unit, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]}
            for dims in dimension_sets
        ])


# --- Pollers ---------------------------------------------------------------------------------------

class StreamPoller:
    """One Kinesis event source mapping: LATEST iterators per shard, then Lambda's retry semantics."""

    def __init__(self, mapping: dict, invoker: LambdaInvoker, session, endpoint: str) -> None:
        self.mapping = mapping
        self.invoker = invoker
        self.function = invoker.function(mapping["FunctionArn"])
        # An enhanced fan-out consumer ARN is `<stream arn>/consumer/<name>:<timestamp>`.
        self.stream_arn = mapping["EventSourceArn"].split("/consumer/")[0]
        self.consumer_name = mapping["EventSourceArn"].split("/consumer/")[1].split(":")[0] if "/consumer/" in mapping["EventSourceArn"] else None
        self.kinesis = session.client("kinesis", endpoint_url=endpoint)
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.batch_size = mapping.get("BatchSize", 100)
        self.max_retries = mapping.get("MaximumRetryAttempts", 3)
        self.bisect = mapping.get("BisectBatchOnFunctionError", False)
        self.on_failure = mapping.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        self.delivered = 0
        self.sent_to_failure_destination = 0
        position = mapping.get("StartingPosition", "LATEST")
        self.iterators = {
            shard["ShardId"]: self.kinesis.get_shard_iterator(StreamARN=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType=position)["ShardIterator"]
            for shard in self.kinesis.list_shards(StreamARN=self.stream_arn)["Shards"]
        }

    def poll(self) -> int:
        """Deliver whatever is waiting; returns the number of records read."""
        read = 0
        for shard_id, iterator in list(self.iterators.items()):
            response = self.kinesis.get_records(ShardIterator=iterator, Limit=self.batch_size, StreamARN=self.stream_arn)
            self.iterators[shard_id] = response["NextShardIterator"]
            if response["Records"]:
                read += len(response["Records"])
                self._publish_lag(response)
                self._deliver(shard_id, response["Records"], attempt=0)
        return read

    def _publish_lag(self, response: dict) -> None:
        """IteratorAge: how old the batch's oldest record is when Lambda reads it (what Lambda publishes)."""
        oldest = min(_epoch(r.get("ApproximateArrivalTimestamp")) for r in response["Records"])
        age_ms = max(0.0, (time.time() - oldest) * 1000)
        function = {"FunctionName": self.function.name}
        qualifier = self.function.arn.split(":")[7] if self.function.arn.count(":") == 7 else None
        dimension_sets = [function] + ([{**function, "Resource": f"{self.function.name}:{qualifier}"}] if qualifier else [])
        self.invoker.put_metric("AWS/Lambda", "IteratorAge", age_ms, "Milliseconds", *dimension_sets)
        if self.consumer_name:
            stream = {"StreamName": self.stream_arn.split("/")[-1], "ConsumerName": self.consumer_name}
            self.invoker.put_metric("AWS/Kinesis", "SubscribeToShardEvent.MillisBehindLatest",
                                    float(response.get("MillisBehindLatest", 0)), "Milliseconds", stream)

    def _deliver(self, shard_id: str, records: list[dict], attempt: int) -> None:
        invocation = self.invoker.invoke(self.function, kinesis_event(records, self.stream_arn, shard_id, self.invoker.region))
        if invocation.failed:  # a function error fails the whole batch, as in Lambda
            first_failure = 0
        else:
            failed = failed_ids(invocation.payload)
            first_failure = None if failed is None else min(i for i, r in enumerate(records) if r["SequenceNumber"] in failed)
        if first_failure is None:
            self.delivered += len(records)
            return
        self.delivered += first_failure
        remaining = records[first_failure:]
        if self.bisect and len(remaining) > 1:
            middle = len(remaining) // 2
            self._deliver(shard_id, remaining[:middle], attempt + 1)
            self._deliver(shard_id, remaining[middle:], attempt + 1)
        elif attempt < self.max_retries:
            self._deliver(shard_id, remaining, attempt + 1)
        else:
            self._send_to_failure_destination(shard_id, remaining, attempt, invocation)

    def _send_to_failure_destination(self, shard_id: str, records: list[dict], attempts: int, invocation: Invocation) -> None:
        """The record Lambda sends to an on-failure destination for a stream batch it gave up on."""
        self.sent_to_failure_destination += len(records)
        if not self.on_failure:
            return
        queue_url = self.sqs.get_queue_url(QueueName=self.on_failure.split(":")[-1])["QueueUrl"]
        body = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.mapping["FunctionArn"],
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts + 1,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": invocation.function_error or "BatchItemFailure",
            },
            "version": "1.0",
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["SequenceNumber"],
                "endSequenceNumber": records[-1]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": datetime.fromtimestamp(_epoch(records[0].get("ApproximateArrivalTimestamp")), timezone.utc).isoformat(),
                "approximateArrivalOfLastRecord": datetime.fromtimestamp(_epoch(records[-1].get("ApproximateArrivalTimestamp")), timezone.utc).isoformat(),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        self.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))


class QueuePoller:
    """One SQS event source mapping: receive, invoke, delete what succeeded, leave what failed to its visibility timeout."""

    def __init__(self, mapping: dict, invoker: LambdaInvoker, session, endpoint: str) -> None:
        self.mapping = mapping
        self.invoker = invoker
        self.function = invoker.function(mapping["FunctionArn"])
        self.queue_arn = mapping["EventSourceArn"]
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.queue_url = self.sqs.get_queue_url(QueueName=self.queue_arn.split(":")[-1])["QueueUrl"]
        self.batch_size = min(10, mapping.get("BatchSize", 10))
        self.delivered = 0
        self.failed = 0

    def poll(self) -> int:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return 0
        invocation = self.invoker.invoke(self.function, sqs_event(messages, self.queue_arn, self.invoker.region))
        if invocation.failed:
            failed = {m["MessageId"] for m in messages}
        else:
            failed = set(failed_ids(invocation.payload) or [])
        # A failed message is not touched, as Lambda does not touch it: it comes back when its visibility
        # timeout ends (the queue's, or whatever the function set, as approval-expiry's timer does), and
        # the redrive policy moves it to the DLQ after maxReceiveCount receives.
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            )
        self.delivered += len(done)
        self.failed += len(failed)
        return len(messages)


@dataclass
class Schedule:
    rule_name: str
    rule_arn: str
    period_seconds: int
    targets: list[str]
    next_run: float = 0.0  # on the platform clock


@dataclass(frozen=True)
class Route:
    method: str
    resource: str
    function: DeployedFunction
    api_key_required: bool


class LocalRunner:
    """Everything Terraform wired to Lambda, read back from the emulator and driven through its Lambda service."""

    def __init__(self, session, endpoint: str, *, suffix: str) -> None:
        self.session = session
        self.endpoint = endpoint
        self.suffix = suffix
        self.invoker = LambdaInvoker(session, endpoint)
        mappings = self.invoker.lambda_client.list_event_source_mappings()["EventSourceMappings"]
        ours = [m for m in mappings if function_name_from_arn(m["FunctionArn"]).endswith(f"-{suffix}")]
        self.streams = [StreamPoller(m, self.invoker, session, endpoint) for m in ours if ":kinesis:" in m["EventSourceArn"]]
        self.queues = [QueuePoller(m, self.invoker, session, endpoint) for m in ours if ":sqs:" in m["EventSourceArn"]]
        self.schedules = self._read_schedules()
        self.api_id, self.stage, self.routes, self.api_keys = self._read_api()
        self.stepfunctions = session.client("stepfunctions", endpoint_url=endpoint)
        self.state_machines = [m["stateMachineArn"] for m in self.stepfunctions.list_state_machines()["stateMachines"]
                               if m["name"].endswith(f"-{suffix}")]

    def _read_schedules(self) -> list[Schedule]:
        events = self.session.client("events", endpoint_url=self.endpoint)
        schedules = []
        for rule in events.list_rules()["Rules"]:
            match = _RATE.match(rule.get("ScheduleExpression", ""))
            if not match or not rule["Name"].endswith(f"-{self.suffix}") or rule.get("State") == "DISABLED":
                continue
            seconds = int(match.group(1)) * _PERIOD_SECONDS[match.group(2).rstrip("s")]
            targets = [t["Arn"] for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
            schedules.append(Schedule(rule["Name"], rule["Arn"], seconds, targets))
        return schedules

    def _read_api(self) -> tuple[str | None, str | None, list[Route], set[str]]:
        api = self.session.client("apigateway", endpoint_url=self.endpoint)
        name = f"pattern-detection-api-{self.suffix}"
        apis = [a for a in api.get_rest_apis()["items"] if a["name"] == name]
        if not apis:
            return None, None, [], set()
        api_id = apis[0]["id"]
        stages = api.get_stages(restApiId=api_id)["item"]
        routes = []
        for resource in api.get_resources(restApiId=api_id, limit=500)["items"]:
            for method in resource.get("resourceMethods", {}):
                integration = api.get_integration(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
                target = re.search(r"functions/(arn:[^/]+)/invocations", integration.get("uri", ""))
                if target:
                    details = api.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
                    routes.append(Route(method, resource["path"], self.invoker.function(target.group(1)), bool(details.get("apiKeyRequired"))))
        keys = {k["value"] for k in api.get_api_keys(includeValues=True)["items"] if k.get("enabled", True)}
        return api_id, (stages[0]["stageName"] if stages else None), routes, keys

    # -- driving -----------------------------------------------------------------------------------

    def poll_once(self) -> int:
        return sum(p.poll() for p in [*self.streams, *self.queues])

    def executions_running(self) -> int:
        """Executions of the stack's state machines that have not ended yet."""
        return sum(
            len(page["executions"])
            for arn in self.state_machines
            for page in self.stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter="RUNNING")
        )

    def drain(self, *, idle_rounds: int = 3, max_seconds: float = 300) -> int:
        """Poll until nothing has arrived and no workflow has run for a few rounds (or the time is up);
        returns records handled."""
        handled, idle, deadline = 0, 0, time.monotonic() + max_seconds
        while idle < idle_rounds and time.monotonic() < deadline:
            count = self.poll_once()
            handled += count
            busy = count or self.executions_running()
            idle = 0 if busy else idle + 1
            if not count:
                time.sleep(0.2)
        return handled

    def platform_time(self) -> float:
        return float(admin.platform_clock(self.endpoint)["now"])

    def run_schedules(self, *, force: bool = False, when: datetime | None = None) -> list[dict]:
        """Fire each schedule whose period has elapsed on the platform clock (every one, with force) through
        its rule's targets, and wait until the invocations it caused are done; returns what was delivered."""
        results = []
        now = self.platform_time()
        for schedule in self.schedules:
            if force or now >= schedule.next_run:
                fired = admin.fire_rule(self.endpoint, schedule.rule_name, region=self.invoker.region,
                                        when=when.timestamp() if when is not None else None)
                results.append(fired)
                schedule.next_run = now + schedule.period_seconds
        return results

    def request(self, method: str, path: str, *, body: Any = None, api_key: str | None = None, query: dict | None = None,
                headers: dict | None = None) -> dict:
        """An HTTP request to the deployed REST API as the emulator serves it; returns statusCode, headers, body."""
        from urllib.parse import urlencode

        url = f"{self.endpoint}/restapis/{self.api_id}/{self.stage}/_user_request_{path}"
        if query:
            url += "?" + urlencode(query, doseq=True)
        data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
        request_headers = {"content-type": "application/json", **({"x-api-key": api_key} if api_key else {}), **(headers or {})}
        request = urllib.request.Request(url, data=data.encode() if isinstance(data, str) else data, method=method, headers=request_headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return {"statusCode": response.status, "headers": dict(response.headers), "body": response.read().decode("utf-8")}
        except urllib.error.HTTPError as error:
            return {"statusCode": error.code, "headers": dict(error.headers), "body": error.read().decode("utf-8")}


def main() -> int:
    """Run the runner in the foreground against the local environment until interrupted."""
    import boto3

    from patternwatch_infra.config import load_environment

    config = load_environment("local")
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=config.region)
    runner = LocalRunner(session, config.emulator.endpoint, suffix=config.resource_suffix)
    print(f"runner: {len(runner.streams)} stream and {len(runner.queues)} queue mappings, {len(runner.schedules)} schedules, "
          f"{len(runner.routes)} API routes; function logs are in the emulator's /aws/lambda/* log groups")
    try:
        while True:
            runner.run_schedules()
            if not runner.poll_once():
                time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
