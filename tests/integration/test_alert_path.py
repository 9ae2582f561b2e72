"""One alert path, on the local platform: stream -> KinesisConsumer -> PatternDetected event -> rule ->
PatternAnalysisWorkflow -> AlertQueue -> AlertProcessor.

The alerts must be the ones the stream consumer queued itself before the workflow carried them: one per
match that detect_latest reports on a new bar at or above the alert threshold, with the same alertId,
pattern, confidence, start and end timestamps and severity. The expectation is computed here, from the
engine, over the same planted series.
"""
from __future__ import annotations

import json

import pytest
from patternwatch_shared.names.messages import ALERT_SOURCE_WORKFLOW

from integration_helpers import (
    alerts_before_the_workflow, as_records, drain, entered_states, execution_history, executions_with_symbol, planted_bars, put_records, query,
    subscribe_inbox, wait_for_executions,
)
from patternwatch_infra.config import load_environment

pytestmark = pytest.mark.integration

WORKFLOW_PATH = ["DataValidation", "PatternDetection", "ConfidenceScoring", "AlertDecision"]


def stored_pattern(clients, deployed, alert: dict) -> dict:
    sort_key = alert["alertId"].split("#", 1)[1]
    (item,) = [i for i in query(clients, deployed["trading_patterns_table_name"], f"PATTERN#{alert['symbol']}") if i["SK"]["S"] == sort_key]
    return item


def assert_same_alert(clients, deployed, delivered: dict, expected: dict) -> None:
    assert {key: delivered[key] for key in expected} == expected
    assert delivered["source"] == ALERT_SOURCE_WORKFLOW
    # The rest of the evidence is the stream's own: its detection time and the match's turns.
    item = stored_pattern(clients, deployed, delivered)
    assert delivered["detectedAt"] == item["detectedAt"]["S"]
    assert delivered["details"]["extrema"] == [[int(p["M"]["timestamp"]["N"]), float(p["M"]["price"]["N"])] for p in item["extrema"]["L"]]
    assert item["alertState"]["S"] == "EVENT_EMITTED"


def test_a_stream_alert_reaches_the_alert_queue_through_the_workflow_with_the_content_the_stream_gave_it(deployed, runner, clients):
    threshold = load_environment("local").alerts.confidence_threshold
    bars = planted_bars("ITPATHQ")
    expected = alerts_before_the_workflow("ITPATHQ", bars, threshold)
    assert expected, "the planted series no longer alerts"
    machine = deployed["analysis_state_machine_arn"]

    put_records(clients, deployed["market_data_stream_name"], as_records(bars), "ITPATHQ")
    while runner.streams[0].poll():  # the stream only: the alerts stay on AlertQueue for this test to read
        pass
    executions = wait_for_executions(clients, machine, "ITPATHQ", count=len(expected))

    # One execution per alerting match, each started by the rule from the consumer's event.
    assert len(executions) == len(expected)
    for execution in executions:
        assert execution["status"] == "SUCCEEDED", execution
        assert json.loads(execution["output"])["decision"] == "ALERT"
        detail = json.loads(execution["input"])
        assert detail["alertId"] in expected and len(detail["bars"]) == 43
        assert [s for s in entered_states(execution_history(clients, execution["executionArn"])) if not s.startswith("Detect")] == WORKFLOW_PATH

    queued = {a["alertId"]: a for a in drain(clients, deployed["alert_queue_url"]) if a.get("symbol") == "ITPATHQ"}
    assert set(queued) == set(expected)
    for alert_id, alert in queued.items():
        assert_same_alert(clients, deployed, alert, expected[alert_id])


def test_stream_alerts_of_other_families_reach_the_alert_processor_and_its_subscribers(deployed, runner, clients):
    """A double top series whose alerts are HIGH (double-bottom, double-top): not the head-and-shoulders family,
    and published to TradingAlerts by the alert processor, alert JSON and all."""
    inbox = subscribe_inbox(clients, deployed["trading_alerts_topic_arn"], "ItAlertPathInbox")
    threshold = load_environment("local").alerts.confidence_threshold
    bars = planted_bars("ITPATHH", "double-top", seed=2, noise=0.005)
    expected = alerts_before_the_workflow("ITPATHH", bars, threshold)
    assert {a["severity"] for a in expected.values()} == {"HIGH"}, expected
    assert {a["pattern"] for a in expected.values()} >= {"double-top", "double-bottom"}

    put_records(clients, deployed["market_data_stream_name"], as_records(bars), "ITPATHH")
    runner.drain()  # the stream, the workflows it starts, then the alert queue

    delivered = {m["alertId"]: m for m in drain(clients, inbox) if m.get("symbol") == "ITPATHH"}
    assert set(delivered) == set(expected)
    for alert_id, alert in delivered.items():
        assert_same_alert(clients, deployed, alert, expected[alert_id])
    executions = executions_with_symbol(clients, deployed["analysis_state_machine_arn"], "ITPATHH")
    assert sorted(e["status"] for e in executions) == ["SUCCEEDED"] * len(expected)
