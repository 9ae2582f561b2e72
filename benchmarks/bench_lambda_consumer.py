"""CPU time of the kinesis-consumer handler for a 100- and a 10,000-record batch across 50 symbols.

The whole handler runs (Powertools decorators, BatchProcessor, base64 + JSON + validation, DynamoDB
marshalling, per-symbol Query, pattern detection, conditional pattern writes, PatternDetected event
batching), with DynamoDB and EventBridge replaced by in-memory stubs that answer the same low-level calls. Each symbol
already has 60 bars of history, as in steady state, so every symbol runs a full detection.
Timing is process CPU time (time.process_time) of one lambda_handler call; a fresh stub per run.

    .venv/bin/python benchmarks/bench_lambda_consumer.py [--repeats 5]

X-Ray is disabled (POWERTOOLS_TRACE_DISABLED) and logs are at WARNING: with tracing on, Lambda adds
one subsegment per symbol. BLAS is pinned to one thread, like the engine benchmark.
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.update(
    {
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": "StockPatternDetection",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TRADING_PATTERNS_TABLE": "TradingPatterns-bench",
        "ALERT_CONFIDENCE_THRESHOLD": "0.9",
    }
)

import argparse  # noqa: E402
import base64  # noqa: E402
import bisect  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from botocore.exceptions import ClientError  # noqa: E402

from kinesis_consumer import handler  # noqa: E402
from pattern_engine.synthetic import bar_records, random_walk  # noqa: E402
from patternwatch_shared import aws  # noqa: E402

from tooling.lambda_harness import LambdaContext, invoke  # noqa: E402

SYMBOLS = 50
HISTORY_BARS = 60
TARGET_RECORDS_PER_SECOND = 10_000


class InMemoryDynamoDB:
    """The low-level calls the consumer makes, answered from dicts (PK -> sorted SKs -> item)."""

    def __init__(self) -> None:
        self.partitions: dict[str, dict[str, dict[str, Any]]] = {}
        self.sorted_keys: dict[str, list[str]] = {}
        self.calls: dict[str, int] = {}

    def _count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1

    def _put(self, item: dict[str, Any]) -> None:
        pk, sk = item["PK"]["S"], item["SK"]["S"]
        partition = self.partitions.setdefault(pk, {})
        if sk not in partition:
            bisect.insort(self.sorted_keys.setdefault(pk, []), sk)
        partition[sk] = item

    def batch_write_item(self, RequestItems):
        self._count("batch_write_item")
        for requests in RequestItems.values():
            if len(requests) > 25:
                raise ValueError("BatchWriteItem takes at most 25 requests")
            for request in requests:
                self._put(request["PutRequest"]["Item"])
        return {"UnprocessedItems": {}}

    def query(self, TableName, KeyConditionExpression, ExpressionAttributeValues, ScanIndexForward=True, Limit=None, **_):
        # ProjectionExpression is ignored: returning whole items only makes the stub slower.
        self._count("query")
        pk = ExpressionAttributeValues[":pk"]["S"]
        keys = self.sorted_keys.get(pk, [])
        chosen = keys[::-1] if not ScanIndexForward else keys
        if Limit is not None:
            chosen = chosen[:Limit]
        return {"Items": [self.partitions[pk][sk] for sk in chosen]}

    def put_item(self, TableName, Item, ConditionExpression=None, ExpressionAttributeValues=None, **_):
        self._count("put_item")
        existing = self.partitions.get(Item["PK"]["S"], {}).get(Item["SK"]["S"])
        # The consumer's only condition: attribute_not_exists(PK) OR alertState = :pending.
        if ConditionExpression and existing is not None:
            if existing.get("alertState", {}).get("S") != ExpressionAttributeValues[":pending"]["S"]:
                raise ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "exists"}}, "PutItem")
        self._put(Item)
        return {}

    def update_item(self, TableName, Key, ExpressionAttributeValues, **_):
        self._count("update_item")
        item = self.partitions[Key["PK"]["S"]][Key["SK"]["S"]]
        item["alertState"] = ExpressionAttributeValues[":emitted"]
        return {}


class InMemoryEvents:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def put_events(self, Entries):
        if len(Entries) > 10:
            raise ValueError("PutEvents takes at most 10 entries")
        self.messages.extend(entry["Detail"] for entry in Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(len(self.messages) + i)} for i in range(len(Entries))]}


def symbol_series(count: int) -> dict[str, list[dict[str, Any]]]:
    """For each symbol, HISTORY_BARS + count random-walk bars as stream records."""
    return {f"SYM{index:02d}": bar_records(f"SYM{index:02d}", random_walk(HISTORY_BARS + count, seed=index)) for index in range(SYMBOLS)}


def kinesis_event(records: int, series: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """`records` new bars, round-robin over the symbols, in time order, after the history."""
    per_symbol = records // SYMBOLS
    event_records = []
    for step in range(per_symbol):
        for symbol, bars in series.items():
            payload = json.dumps(bars[HISTORY_BARS + step]).encode()
            sequence = str(49_000_000_000_000_000_000 + len(event_records))
            event_records.append(
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": symbol,
                        "sequenceNumber": sequence,
                        "data": base64.b64encode(payload).decode(),
                        "approximateArrivalTimestamp": 1_700_000_000.0,
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"shardId-000000000000:{sequence}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::123456789012:role/bench",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/bench",
                }
            )
    return {"Records": event_records}


def seeded_table(series: dict[str, list[dict[str, Any]]]) -> InMemoryDynamoDB:
    from patternwatch_shared.models import Bar
    from patternwatch_shared.storage import bar_item

    table = InMemoryDynamoDB()
    for bars in series.values():
        for bar in bars[:HISTORY_BARS]:
            table._put(bar_item(Bar.model_validate(bar)))
    return table


def run_once(records: int, series) -> tuple[float, InMemoryDynamoDB, InMemoryEvents, dict]:
    event = kinesis_event(records, series)
    table, queue = seeded_table(series), InMemoryEvents()
    aws.reset_clients()
    aws._clients.update({"dynamodb": table, "events": queue})
    context = LambdaContext("kinesis-consumer-bench", memory_limit_in_mb=1024)
    # EMF blobs and logs go to a buffer; the timer is process CPU time of the handler call alone.
    invocation = invoke(handler.lambda_handler, event, context, output=io.StringIO(), timer=time.process_time)
    response = invocation.response
    if response["batchItemFailures"]:
        raise RuntimeError(f"benchmark batch had failures: {response['batchItemFailures'][:3]}")
    return invocation.seconds, table, queue, response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    run_once(100, symbol_series(2))  # warm-up: imports numpy and the engine, builds pydantic validators

    print(f"python {sys.version.split()[0]}; {SYMBOLS} symbols with {HISTORY_BARS} bars of history; "
          f"CPU time of one lambda_handler call, median of {args.repeats}")
    print("| records | CPU ms (median) | CPU ms (min) | records/s (median) | target | queries | pattern writes | events |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for records in (100, 10_000):
        series = symbol_series(records // SYMBOLS)
        samples = []
        for _ in range(args.repeats):
            cpu, table, queue, _ = run_once(records, series)
            samples.append(cpu)
        median = statistics.median(samples)
        print(
            f"| {records:,} | {median * 1000:.1f} | {min(samples) * 1000:.1f} | {records / median:,.0f} | "
            f"{TARGET_RECORDS_PER_SECOND:,} | {table.calls.get('query', 0)} | {table.calls.get('put_item', 0)} | "
            f"{len(queue.messages)} |"
        )


if __name__ == "__main__":
    main()
