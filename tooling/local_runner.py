"""The local trigger runner: it stands in for the Lambda service when the platform runs on the emulator.

moto cannot run Lambda code (no Docker), so this module does what Lambda would do, in process:
- it reads what Terraform created back from the emulator: event source mappings, function
  configurations (handler, environment), EventBridge schedules and API Gateway integrations;
- it polls Kinesis and SQS, builds real event shapes and invokes the handlers with the functions' own
  environment variables;
- it honours batch-item-failure responses: Kinesis records are retried from the first failure, bisected,
  and after the mapping's retries go to its on-failure destination; failed SQS messages become visible
  again and the queue's redrive policy moves them to the DLQ;
- it runs scheduled functions (the threshold checker) and serves API routes to their handlers.
"""
from __future__ import annotations

import base64
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import lambda_harness
from .lambda_harness import LambdaContext, local_runtime_environment

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_FILE = PROJECT_ROOT / ".local" / "lambda.log"
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours)\)$")


@dataclass(frozen=True)
class DeployedFunction:
    name: str
    arn: str  # as the trigger named it (an alias ARN for our mappings, routes and rules)
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int


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


def scheduled_event(rule_arn: str, region: str, account: str, when: datetime | None = None) -> dict:
    when = when or datetime.now(timezone.utc)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def api_gateway_event(method: str, resource: str, path: str, path_parameters: dict, body: Any, headers: dict, query: dict | None = None) -> dict:
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": path,
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1", "apiKey": headers.get("x-api-key")},
        },
        "body": body if body is None or isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
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


# --- The Lambda stand-in ---------------------------------------------------------------------------

class LocalLambda:
    """Runs deployed functions' handlers in this process with their own configuration."""

    def __init__(self, session, endpoint: str) -> None:
        self.endpoint = endpoint
        self.region = session.region_name
        self.lambda_client = session.client("lambda", endpoint_url=endpoint)
        self.invocations: list[tuple[str, float]] = []
        LOG_FILE.parent.mkdir(exist_ok=True)
        # Handlers log and emit EMF metrics to stdout, as in Lambda; here that goes to a file.
        self._log = LOG_FILE.open("a", encoding="utf-8")

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

    def invoke(self, function: DeployedFunction, event: dict) -> Any:
        """Run the function's handler here with its configuration, as Lambda would; its exception propagates."""
        context = LambdaContext(function.name, function.memory, function.timeout, invoked_function_arn=function.arn)
        environment = {**function.environment, **local_runtime_environment(context, region=self.region, endpoint=self.endpoint)}
        invocation = lambda_harness.invoke(function.handler, event, context, environment=environment, output=self._log)
        self.invocations.append((function.name, invocation.seconds))
        return invocation.response


# --- Pollers ---------------------------------------------------------------------------------------

class StreamPoller:
    """One Kinesis event source mapping: LATEST iterators per shard, then Lambda's retry semantics."""

    def __init__(self, mapping: dict, local: LocalLambda, session, endpoint: str) -> None:
        self.mapping = mapping
        self.local = local
        self.function = local.function(mapping["FunctionArn"])
        # An enhanced fan-out consumer ARN is `<stream arn>/consumer/<name>:<timestamp>`.
        self.stream_arn = mapping["EventSourceArn"].split("/consumer/")[0]
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
                self._deliver(shard_id, response["Records"], attempt=0)
        return read

    def _deliver(self, shard_id: str, records: list[dict], attempt: int) -> None:
        try:
            failed = failed_ids(self.local.invoke(self.function, kinesis_event(records, self.stream_arn, shard_id, self.local.region)))
            first_failure = None if failed is None else min(i for i, r in enumerate(records) if r["SequenceNumber"] in failed)
        except Exception:  # a function error fails the whole batch, as in Lambda
            first_failure = 0
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
            self._send_to_failure_destination(shard_id, remaining, attempt)

    def _send_to_failure_destination(self, shard_id: str, records: list[dict], attempts: int) -> None:
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
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "BatchItemFailure"},
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
    """One SQS event source mapping: receive, invoke, delete what succeeded, release what failed."""

    def __init__(self, mapping: dict, local: LocalLambda, session, endpoint: str) -> None:
        self.mapping = mapping
        self.local = local
        self.function = local.function(mapping["FunctionArn"])
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
        try:
            failed = set(failed_ids(self.local.invoke(self.function, sqs_event(messages, self.queue_arn, self.local.region))) or [])
        except Exception:
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        for m in messages:
            if m["MessageId"] in failed:
                # Visible again at once (Lambda would wait out the visibility timeout); the redrive
                # policy moves it to the DLQ after maxReceiveCount receives.
                self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
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
    function: DeployedFunction
    next_run: float = 0.0


@dataclass(frozen=True)
class Route:
    method: str
    resource: str
    function: DeployedFunction
    api_key_required: bool


class LocalRunner:
    """Everything Terraform wired to Lambda, read back from the emulator and driven in process."""

    def __init__(self, session, endpoint: str, *, suffix: str) -> None:
        self.session = session
        self.endpoint = endpoint
        self.suffix = suffix
        self.local = LocalLambda(session, endpoint)
        lambda_client = session.client("lambda", endpoint_url=endpoint)
        mappings = lambda_client.list_event_source_mappings()["EventSourceMappings"]
        ours = [m for m in mappings if function_name_from_arn(m["FunctionArn"]).endswith(f"-{suffix}")]
        self.streams = [StreamPoller(m, self.local, session, endpoint) for m in ours if ":kinesis:" in m["EventSourceArn"]]
        self.queues = [QueuePoller(m, self.local, session, endpoint) for m in ours if ":sqs:" in m["EventSourceArn"]]
        self.schedules = self._read_schedules()
        self.routes, self.api_keys = self._read_api()

    def _read_schedules(self) -> list[Schedule]:
        events = self.session.client("events", endpoint_url=self.endpoint)
        schedules = []
        for rule in events.list_rules()["Rules"]:
            match = _RATE.match(rule.get("ScheduleExpression", ""))
            if not match or not rule["Name"].endswith(f"-{self.suffix}") or rule.get("State") == "DISABLED":
                continue
            seconds = int(match.group(1)) * (3600 if match.group(2).startswith("hour") else 60)
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                if ":lambda:" in target["Arn"]:
                    schedules.append(Schedule(rule["Name"], rule["Arn"], seconds, self.local.function(target["Arn"])))
        return schedules

    def _read_api(self) -> tuple[list[Route], set[str]]:
        api = self.session.client("apigateway", endpoint_url=self.endpoint)
        name = f"pattern-detection-api-{self.suffix}"
        apis = [a for a in api.get_rest_apis()["items"] if a["name"] == name]
        if not apis:
            return [], set()
        api_id = apis[0]["id"]
        routes = []
        for resource in api.get_resources(restApiId=api_id, limit=500)["items"]:
            for method in resource.get("resourceMethods", {}):
                integration = api.get_integration(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
                target = re.search(r"functions/(arn:[^/]+)/invocations", integration.get("uri", ""))
                if target:
                    details = api.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
                    routes.append(Route(method, resource["path"], self.local.function(target.group(1)), bool(details.get("apiKeyRequired"))))
        keys = {k["value"] for k in api.get_api_keys(includeValues=True)["items"] if k.get("enabled", True)}
        return routes, keys

    # -- driving -----------------------------------------------------------------------------------

    def poll_once(self) -> int:
        return sum(p.poll() for p in [*self.streams, *self.queues])

    def drain(self, *, idle_rounds: int = 3, max_seconds: float = 300) -> int:
        """Poll until nothing has arrived for a few rounds (or the time is up); returns records handled."""
        handled, idle, deadline = 0, 0, time.monotonic() + max_seconds
        while idle < idle_rounds and time.monotonic() < deadline:
            count = self.poll_once()
            handled += count
            idle = 0 if count else idle + 1
            if not count:
                time.sleep(0.2)
        return handled

    def run_schedules(self, *, force: bool = False, when: datetime | None = None) -> list[Any]:
        """Run each scheduled function whose period has elapsed (every one, with force)."""
        results = []
        account = self.session.client("sts", endpoint_url=self.endpoint).get_caller_identity()["Account"]
        for schedule in self.schedules:
            if force or time.monotonic() >= schedule.next_run:
                event = scheduled_event(schedule.rule_arn, self.local.region, account, when)
                results.append(self.local.invoke(schedule.function, event))
                schedule.next_run = time.monotonic() + schedule.period_seconds
        return results

    def request(self, method: str, path: str, *, body: Any = None, api_key: str | None = None, query: dict | None = None) -> dict:
        """Send a request through the API's routes the way API Gateway's Lambda proxy would."""
        for route in self.routes:
            pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.resource) + "$"
            match = re.match(pattern, path)
            if route.method == method and match:
                if route.api_key_required and api_key not in self.api_keys:
                    return {"statusCode": 403, "body": json.dumps({"message": "Forbidden"})}
                headers = {"content-type": "application/json", **({"x-api-key": api_key} if api_key else {})}
                event = api_gateway_event(method, route.resource, path, match.groupdict(), body, headers, query)
                return self.local.invoke(route.function, event)
        return {"statusCode": 404, "body": json.dumps({"message": "Missing Authentication Token"})}


def main() -> int:
    """Run the runner in the foreground against the local environment until interrupted."""
    import boto3

    from patternwatch_infra.config import load_environment

    config = load_environment("local")
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=config.region)
    runner = LocalRunner(session, config.emulator.endpoint, suffix=config.resource_suffix)
    print(f"runner: {len(runner.streams)} stream and {len(runner.queues)} queue mappings, {len(runner.schedules)} schedules, "
          f"{len(runner.routes)} API routes; logs in {LOG_FILE}")
    try:
        while True:
            runner.run_schedules()
            if not runner.poll_once():
                time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
