"""Faults on the local platform: nothing lost, nothing duplicated (issue 12 §3; the table is in docs/reliability.md).

Each test streams the same planted double-top series (126 daily bars, two HIGH alerts) under a symbol of its
own while the emulator injects one kind of fault (tooling/local_aws/faults.py) into the requests the
handlers make, then lets the trigger runner deliver everything as Lambda's pollers would (retries,
bisection, the on-failure destination). It counts:
- bars sent, bars stored in TradingPatterns, and stream records the runner gave up on (on-failure destination);
- alerts delivered to a TradingAlerts subscriber, per alertId, against the alerts the engine gives for the series;
and asserts none lost, none duplicated, and that the fault was injected. Each test prints its row of the table.
"""
from __future__ import annotations

from collections import Counter

import pytest
from patternwatch_shared import keys

from integration_helpers import alerts_before_the_workflow, as_records, drain, planted_bars, put_records, query, subscribe_inbox
from patternwatch_infra.config import load_environment
from tooling.local_aws import admin

pytestmark = pytest.mark.integration

# The consumer writes each 100-record batch in BatchWriteItem calls of 25 bars: 6 calls for this series.
BAR_WRITES = ["BatchWriteItem"]


def fault_rules(fault: str, table: str, consumer: str) -> list[dict]:
    on_table = {"service": "dynamodb", "table": table}
    return {
        # The worker running the consumer is killed while DynamoDB serves its 2nd bar write: 25 bars of the
        # batch stored, the rest not, no answer; Lambda reports Runtime.ExitError.
        "worker killed mid-batch": [
            {"action": "kill-worker", **on_table, "operations": BAR_WRITES, "function": consumer, "every": 2, "limit": 1},
        ],
        # The consumer gets 2 s; its 2nd bar write is held 4 s, so it times out with part of the batch written.
        "handler timed out mid-batch": [
            {"action": "timeout", "function": consumer, "seconds": 2, "limit": 1},
            {"action": "stall", **on_table, "operations": BAR_WRITES, "every": 2, "limit": 1, "seconds": 4},
        ],
        # Answers lost after the write happened (the SDK sends it again), and requests cut before they were served:
        # bar writes, the conditional pattern writes, the PatternDetected event, the decide step queueing the alert on
        # AlertQueue and the alert processor's delivery claim.
        "emulator dropped connections": [
            {"action": "drop-after", **on_table, "operations": BAR_WRITES, "every": 2, "limit": 2},
            {"action": "drop-before", **on_table, "operations": BAR_WRITES, "every": 3, "limit": 1},
            {"action": "drop-after", **on_table, "operations": ["PutItem"], "every": 2, "limit": 2},
            {"action": "drop-after", "service": "events", "operations": ["PutEvents"], "limit": 1},
            {"action": "drop-after", "service": "sqs", "operations": ["SendMessage", "SendMessageBatch"], "limit": 1},
            {"action": "drop-after", "service": "dynamodb", "operations": ["UpdateItem", "PutItem"], "every": 5, "limit": 2},
        ],
        # ProvisionedThroughputExceededException: every 3rd call on the table (the SDK's retries absorb it), and
        # the first 5 bar writes in a row (the handlers' SDK makes 5 attempts: that batch fails and comes back).
        "DynamoDB throttled": [
            {"action": "throttle", **on_table, "operations": BAR_WRITES, "limit": 5},
            {"action": "throttle", **on_table, "every": 3},
        ],
    }[fault]


@pytest.mark.parametrize(("fault", "symbol"), [
    ("worker killed mid-batch", "FLTKILL"),
    ("handler timed out mid-batch", "FLTTIME"),
    ("emulator dropped connections", "FLTDROP"),
    ("DynamoDB throttled", "FLTTHROT"),
])
def test_a_fault_loses_and_duplicates_nothing(fault, symbol, deployed, runner, clients, endpoint):
    inbox = subscribe_inbox(clients, deployed["trading_alerts_topic_arn"], "ItFaultsInbox")
    table = deployed["trading_patterns_table_name"]
    bars = planted_bars(symbol, "double-top", seed=2, noise=0.005)
    expected_alerts = alerts_before_the_workflow(symbol, bars, load_environment("local").alerts.confidence_threshold)
    stream = runner.streams[0]
    gave_up_before = stream.sent_to_failure_destination

    admin.set_faults(endpoint, fault_rules(fault, table, stream.function.name))
    try:
        put_records(clients, deployed["market_data_stream_name"], as_records(bars), symbol)
        runner.drain()
    finally:
        rules = admin.clear_faults(endpoint)
    runner.drain()  # anything left waiting for a visibility timeout, without faults

    stored = {item["SK"]["S"] for item in query(clients, table, keys.bar_partition_key(symbol))}
    delivered = Counter(m["alertId"] for m in drain(clients, inbox) if m.get("symbol") == symbol)
    sent = {keys.bar_sort_key(bar["timestamp"]) for bar in bars}
    lost = sent - stored
    duplicated_alerts = {alert_id: n for alert_id, n in delivered.items() if n > 1}
    injected = ", ".join(f"{r['action']} {r['fired']}/{r['seen']}" for r in rules)
    print(f"\n| {fault} | {len(bars)} | {len(stored)} | {len(lost)} | {len(expected_alerts)} | {sum(delivered.values())} | "
          f"{len(duplicated_alerts)} | {injected} |")

    assert [r for r in rules if r["fired"] == 0] == [], "a fault was never injected"
    assert stream.sent_to_failure_destination == gave_up_before, "the runner gave up on records"
    assert lost == set(), f"{len(lost)} bars lost"
    assert stored == sent
    assert set(delivered) == set(expected_alerts), "an alert was lost or one appeared that the series does not give"
    assert duplicated_alerts == {}, f"alerts delivered more than once: {duplicated_alerts}"
