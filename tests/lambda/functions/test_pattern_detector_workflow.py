"""pattern-detector's Step Functions actions, chained the way the Express workflow chains them."""
from __future__ import annotations

import copy

import pytest

from lambda_testkit import metric_values, planted_bars
from patternwatch_shared.names.messages import PATTERN_FAMILIES, WORKFLOW_ERROR_INVALID_INPUT
from patternwatch_shared.names.metrics import METRIC_PATTERN_DETECTION_DURATION
from patternwatch_shared.workflow import InvalidInputError
from pattern_detector import handler

FAMILY_SEEDS = {"head-and-shoulders": 0, "double-top": 1, "ascending-triangle": 1}


def series(pattern: str) -> tuple[list[dict], int]:
    bars, end = planted_bars("WF", pattern, seed=FAMILY_SEEDS[pattern])
    return [{k: v for k, v in bar.items() if k != "symbol"} for bar in bars], end


def run(event, context):
    return handler.lambda_handler(event, context)


def run_workflow(bars: list[dict], context) -> tuple[dict, dict]:
    validated = run({"action": "validate", "symbol": "WF", "bars": bars, "correlationId": "exec-1"}, context)
    # Parallel state: one branch per family, each with Parameters {"action": "detect", "family": ...}.
    branches = [
        run({"action": "detect", "family": family, "symbol": validated["symbol"], "bars": validated["bars"]}, context)
        for family in PATTERN_FAMILIES
    ]
    scored = run({"action": "score", "symbol": "WF", "results": branches}, context)
    decided = run({"action": "decide", **scored}, context)
    return scored, decided


@pytest.mark.parametrize("family", PATTERN_FAMILIES)
def test_each_family_branch_finds_its_planted_pattern_only(aws_resources, lambda_context, capsys, family):
    bars, end = series(family)
    output = run({"action": "detect", "family": family, "symbol": "WF", "bars": bars}, lambda_context)
    assert output["family"] == family
    assert {m["pattern"] for m in output["matches"]} == {family}
    assert any(m["end"] == end and m["confidence"] > 0.95 for m in output["matches"])
    assert metric_values(capsys.readouterr().out, METRIC_PATTERN_DETECTION_DURATION, PatternType=family)


def test_full_workflow_alerts_on_a_clear_pattern(aws_resources, lambda_context):
    bars, end = series("head-and-shoulders")
    scored, decided = run_workflow(bars, lambda_context)
    assert scored["topMatch"]["pattern"] == "head-and-shoulders"
    assert scored["severity"] == "CRITICAL"
    confidences = [m["confidence"] for m in scored["matches"]]
    assert confidences == sorted(confidences, reverse=True)
    assert decided["decision"] == "ALERT"
    alerts = aws_resources.drain(aws_resources.alert_queue_url)
    assert [a["alertId"] for a in alerts] == [decided["alertId"]]
    assert alerts[0]["source"] == "workflow" and alerts[0]["endTimestamp"] == bars[end]["timestamp"]


def test_full_workflow_without_a_pattern_does_not_alert(aws_resources, lambda_context):
    bars = [{"timestamp": 1_700_000_000 + 60 * i, "open": 10.0, "high": 10.5, "low": 9.5, "close": 10.0, "volume": 5.0} for i in range(60)]
    scored, decided = run_workflow(bars, lambda_context)
    assert scored["matches"] == [] and scored["topMatch"] is None
    assert decided == {"decision": "NO_ALERT", "symbol": "WF"}
    assert aws_resources.drain(aws_resources.alert_queue_url) == []


def test_validate_sorts_bars_and_normalises_timestamps(aws_resources, lambda_context):
    bars = [
        {"timestamp": "2024-01-02T10:01:00Z", "open": 2, "high": 3, "low": 1, "close": 2, "volume": 0},
        {"timestamp": 1704189600, "open": 2, "high": 3, "low": 1, "close": 2, "volume": 0},
    ]
    output = run({"action": "validate", "symbol": "AAPL", "bars": bars}, lambda_context)
    assert [b["timestamp"] for b in output["bars"]] == [1704189600, 1704189660]
    assert output["barCount"] == 2


GOOD_BAR = {"timestamp": 1_700_000_000, "open": 2.0, "high": 3.0, "low": 1.0, "close": 2.0, "volume": 1.0}


def with_bar(**changes):
    bar = dict(GOOD_BAR)
    bar.update(changes)
    return {"action": "validate", "symbol": "AAPL", "bars": [bar]}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"action": "explode", "symbol": "AAPL"}, "unknown action"),
        ({"symbol": "AAPL"}, "unknown action"),
        ([1, 2], "JSON object"),
        ({"action": "validate", "symbol": "AAPL"}, "bars"),
        ({"action": "validate", "symbol": "AAPL", "bars": []}, "bars"),
        ({"action": "validate", "symbol": "AAPL", "bars": [GOOD_BAR] * 2}, "share timestamp"),
        ({"action": "validate", "symbol": "AAPL", "bars": [GOOD_BAR], "extra": 1}, "extra"),
        ({"action": "validate", "symbol": "x" * 1000, "bars": [GOOD_BAR]}, "symbol"),
        (with_bar(open=float("nan")), "open"),
        (with_bar(close=0.0), "close"),
        (with_bar(low=-1.0), "low"),
        (with_bar(high=0.5), "high"),
        (with_bar(volume="1"), "volume"),
        (with_bar(timestamp=None), "timestamp"),
        ({"action": "validate", "symbol": "AAPL", "bars": [{**GOOD_BAR, "timestamp": 1_700_000_000 + i} for i in range(5001)]}, "bars"),
        ({"action": "detect", "family": "cup-and-handle", "symbol": "AAPL", "bars": [GOOD_BAR]}, "family"),
        ({"action": "score", "symbol": "AAPL", "results": []}, "results"),
        ({"action": "score", "symbol": "AAPL", "results": [{"family": "double-top", "symbol": "MSFT", "matches": []}]}, "symbol"),
        ({"action": "decide", "symbol": "AAPL", "matches": [], "topMatch": {"pattern": "double-top"}, "severity": None}, "topMatch"),
    ],
)
def test_bad_workflow_input_raises_invalid_input_error(aws_resources, lambda_context, event, reason):
    with pytest.raises(InvalidInputError, match=reason):
        run(copy.deepcopy(event), lambda_context)


def test_invalid_input_error_is_named_for_step_functions_catch():
    assert InvalidInputError.__name__ == WORKFLOW_ERROR_INVALID_INPUT


def test_engine_refusal_in_detect_becomes_invalid_input(aws_resources, lambda_context, monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("timestamps must increase")

    monkeypatch.setattr("patternwatch_shared.workflow.detect_in", refuse)
    with pytest.raises(InvalidInputError, match="refused by the pattern engine: timestamps must increase"):
        run({"action": "detect", "family": "double-top", "symbol": "AAPL", "bars": [GOOD_BAR]}, lambda_context)


def test_decide_queue_fault_raises_for_the_state_machine_retry(aws_resources, lambda_context):
    from lambda_testkit import FlakyClient, install_client

    top = {"pattern": "double-top", "confidence": 0.97, "start": 1, "end": 40, "startTimestamp": 1_700_000_000, "endTimestamp": 1_700_002_400}
    event = {"action": "decide", "symbol": "AAPL", "matches": [top], "topMatch": top, "severity": "CRITICAL"}
    install_client("sqs", FlakyClient(aws_resources.sqs, "send_message_batch", failing_calls={1}))
    with pytest.raises(RuntimeError, match="could not queue alert"):
        run(event, lambda_context)
    assert run(event, lambda_context)["decision"] == "ALERT"
    assert len(aws_resources.drain(aws_resources.alert_queue_url)) == 1


@pytest.mark.parametrize("confidence", [float("nan"), float("inf")])
def test_a_non_finite_number_never_leaves_as_workflow_output(aws_resources, lambda_context, monkeypatch, confidence):
    from patternwatch_shared.detection import Detection

    broken = Detection("double-top", confidence, 0, 37, 1_700_000_000, 1_700_002_220, ((1_700_000_000, 1.0),))
    monkeypatch.setattr("patternwatch_shared.workflow.detect_in", lambda *args, **kwargs: [broken])
    bars, _ = series("double-top")
    with pytest.raises(ValueError, match="not JSON compliant"):
        run({"action": "detect", "family": "double-top", "symbol": "WF", "bars": bars}, lambda_context)
