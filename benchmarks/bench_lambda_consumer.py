"""CPU time of the kinesis-consumer handler for a 100- and a 10,000-record batch across 50 symbols.

The whole handler runs (Powertools decorators, BatchProcessor, base64 + JSON + validation, DynamoDB
marshalling, per-symbol Query, pattern detection, conditional pattern writes, PatternDetected event
batching), with DynamoDB and EventBridge replaced by in-memory stubs that answer the same low-level calls
(tooling/in_memory_aws.py, which also counts Queries and read units). Each symbol already has 60+ bars of
history, as in steady state, so every symbol runs a full detection. Two cases for the window cache:
cold (a new execution environment: every symbol is Queried) and warm (the environment handled the
previous batch, untimed: every symbol is served from memory).
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
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from kinesis_consumer import handler  # noqa: E402
from pattern_engine.synthetic import bar_records, random_walk  # noqa: E402
from patternwatch_shared import aws  # noqa: E402

from tooling.in_memory_aws import InMemoryDynamoDB, InMemoryEvents  # noqa: E402
from tooling.lambda_harness import LambdaContext, invoke  # noqa: E402

SYMBOLS = 50
HISTORY_BARS = 60
TARGET_RECORDS_PER_SECOND = 10_000


def symbol_series(count: int) -> dict[str, list[dict[str, Any]]]:
    """For each symbol, HISTORY_BARS + count random-walk bars as stream records."""
    return {f"SYM{index:02d}": bar_records(f"SYM{index:02d}", random_walk(HISTORY_BARS + count, seed=index)) for index in range(SYMBOLS)}


def kinesis_event(records: int, series: dict[str, list[dict[str, Any]]], first: int = HISTORY_BARS) -> dict[str, Any]:
    """`records` bars, round-robin over the symbols, in time order, from each symbol's bar `first` on."""
    per_symbol = records // SYMBOLS
    event_records = []
    for step in range(per_symbol):
        for symbol, bars in series.items():
            payload = json.dumps(bars[first + step]).encode()
            sequence = str(49_000_000_000_000_000_000 + first * SYMBOLS + len(event_records))
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


def seeded_table(series: dict[str, list[dict[str, Any]]], bars_per_symbol: int) -> InMemoryDynamoDB:
    from patternwatch_shared.models import Bar
    from patternwatch_shared.storage import bar_item

    table = InMemoryDynamoDB()
    for bars in series.values():
        for bar in bars[:bars_per_symbol]:
            table.put(bar_item(Bar.model_validate(bar)))
    return table


def invoke_handler(event: dict[str, Any], context: LambdaContext) -> float:
    # EMF blobs and logs go to a buffer; the timer is process CPU time of the handler call alone.
    invocation = invoke(handler.lambda_handler, event, context, output=io.StringIO(), timer=time.process_time)
    if invocation.response["batchItemFailures"]:
        raise RuntimeError(f"benchmark batch had failures: {invocation.response['batchItemFailures'][:3]}")
    return invocation.seconds


def run_once(records: int, series, cache: str) -> tuple[float, InMemoryDynamoDB, InMemoryEvents]:
    """One timed batch of `records` new bars after HISTORY_BARS + records / SYMBOLS stored bars a symbol.

    cache "cold": a new execution environment (empty window cache); the stored bars were seeded.
    cache "warm": the same environment stored the previous batch (untimed), so its window cache holds
    every symbol's newest bars. Calls are counted for the timed batch only.
    """
    per_symbol = records // SYMBOLS
    window_cache = getattr(handler, "window_cache", None)  # None: a version without the cache (main before it)
    if window_cache is not None:
        window_cache.clear()
    queue = InMemoryEvents()
    aws.reset_clients()
    context = LambdaContext("kinesis-consumer-bench", memory_limit_in_mb=1024)
    if cache == "warm":
        table = seeded_table(series, HISTORY_BARS)
        aws._clients.update({"dynamodb": table, "events": queue})
        invoke_handler(kinesis_event(records, series, first=HISTORY_BARS), context)
        table.calls.clear()
        table.read_units = 0.0
        queue.messages.clear()
    else:
        table = seeded_table(series, HISTORY_BARS + per_symbol)
        aws._clients.update({"dynamodb": table, "events": queue})
    seconds = invoke_handler(kinesis_event(records, series, first=HISTORY_BARS + per_symbol), context)
    return seconds, table, queue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    run_once(100, symbol_series(4), "cold")  # warm-up: imports numpy and the engine, builds pydantic validators
    caches = ("cold", "warm") if hasattr(handler, "window_cache") else ("none",)

    print(f"python {sys.version.split()[0]}; {SYMBOLS} symbols with {HISTORY_BARS}+ bars of history; "
          f"CPU time of one lambda_handler call, median of {args.repeats}")
    print("| records | window cache | CPU ms (median) | CPU ms (min) | records/s (median) | target | "
          "Queries | Queries per bar | read units per bar | pattern writes | events |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for records in (100, 10_000):
        series = symbol_series(2 * (records // SYMBOLS))
        for cache in caches:
            samples = []
            for _ in range(args.repeats):
                cpu, table, queue = run_once(records, series, "cold" if cache == "none" else cache)
                samples.append(cpu)
            median = statistics.median(samples)
            queries = table.calls.get("query", 0)
            print(
                f"| {records:,} | {cache} | {median * 1000:.1f} | {min(samples) * 1000:.1f} | {records / median:,.0f} | "
                f"{TARGET_RECORDS_PER_SECOND:,} | {queries} | {queries / records:.3f} | {table.read_units / records:.3f} | "
                f"{table.calls.get('put_item', 0)} | {len(queue.messages)} |"
            )


if __name__ == "__main__":
    main()
