"""pattern-detector's Step Functions actions, one action per call, on inputs written out here.

How the actions feed each other (the Parallel state, Parameters, ResultPath, Catch) is the state machine's
business: tests/integration/test_workflows.py and test_alert_path.py run the real definition on the emulator's
Step Functions interpreter with the deployed handler, rather than a hand-written chain of calls here."""
from __future__ import annotations

import copy

import pytest

from lambda_testkit import metric_values, pattern_event_detail, planted_bars
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


def candidate_and_match(detail: dict) -> tuple[dict, dict]:
    """The candidate as validate hands it on, and the match a family branch re-detects for it."""
    candidate = {k: v for k, v in detail.items() if k not in ("symbol", "bars")}
    confirmed = {"pattern": detail["pattern"], "confidence": detail["confidence"], "start": 2, "end": 42,
                 "startTimestamp": detail["startTimestamp"], "endTimestamp": detail["endTimestamp"], "extrema": detail["extrema"]}
    return candidate, confirmed


@pytest.mark.parametrize("family", PATTERN_FAMILIES)
def test_each_family_branch_finds_its_planted_pattern_and_only_its_own_patterns(aws_resources, lambda_context, capsys, family):
    bars, end = series(family)
    output = run({"action": "detect", "family": family, "symbol": "WF", "bars": bars}, lambda_context)
    assert output["family"] == family
    assert {m["pattern"] for m in output["matches"]} <= set(PATTERN_FAMILIES[family])
    assert any(m["pattern"] == family and m["end"] == end and m["confidence"] > 0.95 for m in output["matches"])
    assert all(len(m["extrema"]) in (3, 5) for m in output["matches"])
    assert metric_values(capsys.readouterr().out, METRIC_PATTERN_DETECTION_DURATION, PatternType=family)


@pytest.mark.parametrize("pattern", ["inverse-head-and-shoulders", "double-bottom", "descending-triangle", "symmetric-triangle"])
def test_patterns_beyond_the_three_heads_are_found_by_their_family(aws_resources, lambda_context, pattern):
    (family,) = [f for f, members in PATTERN_FAMILIES.items() if pattern in members]
    bars, end = planted_bars("WF", pattern, seed=1)
    rows = [{k: v for k, v in bar.items() if k != "symbol"} for bar in bars]
    output = run({"action": "detect", "family": family, "symbol": "WF", "bars": rows}, lambda_context)
    assert any(m["pattern"] == pattern and m["end"] == end for m in output["matches"])
    others = [f for f in PATTERN_FAMILIES if f != family]
    for other in others:
        found = run({"action": "detect", "family": other, "symbol": "WF", "bars": rows}, lambda_context)["matches"]
        assert pattern not in {m["pattern"] for m in found}


def test_decide_queues_the_stream_s_alert_for_a_confirmed_candidate(aws_resources, lambda_context):
    detail = pattern_event_detail("WF", "head-and-shoulders")
    candidate, confirmed = candidate_and_match(detail)
    decided = run({"action": "decide", "symbol": "WF", "candidate": candidate, "confirmed": confirmed}, lambda_context)
    assert decided["decision"] == "ALERT" and decided["severity"] == "CRITICAL"
    (alert,) = aws_resources.drain(aws_resources.alert_queue_url)
    assert alert == {
        "alertId": detail["alertId"], "source": "workflow", "severity": "CRITICAL", "detectedAt": detail["detectedAt"],
        "confidence": detail["confidence"], "symbol": "WF", "pattern": "head-and-shoulders",
        "startTimestamp": detail["startTimestamp"], "endTimestamp": detail["endTimestamp"],
        "details": {"extrema": detail["extrema"]},
    }


def test_the_decision_is_logged_with_the_execution_s_correlation_id(aws_resources, lambda_context):
    import io
    import json

    candidate, confirmed = candidate_and_match(pattern_event_detail("WF", "head-and-shoulders"))
    event = {"action": "decide", "symbol": "WF", "candidate": candidate, "confirmed": confirmed, "correlationId": "exec-1"}
    # The Powertools handler keeps the stream it was created with; point it at a buffer.
    stream = handler.logger.registered_handler.setStream(buffer := io.StringIO())
    try:
        run(event, lambda_context)
    finally:
        handler.logger.registered_handler.setStream(stream)
    (decided,) = [line for line in map(json.loads, buffer.getvalue().splitlines()) if line["message"] == "decided"]
    assert decided["correlation_id"] == "exec-1" and decided["action"] == "decide" and decided["decision"] == "ALERT"


def test_a_candidate_no_family_re_detects_is_not_alerted(aws_resources, lambda_context):
    detail = pattern_event_detail("WF", "head-and-shoulders")
    candidate, _ = candidate_and_match(detail)
    results = [{"family": family, "symbol": "WF", "matches": []} for family in PATTERN_FAMILIES]
    scored = run({"action": "score", "symbol": "WF", "candidate": candidate, "results": results}, lambda_context)
    assert scored["confirmed"] is None
    decided = run({"action": "decide", "symbol": "WF", "candidate": candidate, "confirmed": None}, lambda_context)
    assert decided["decision"] == "NO_ALERT" and "not re-detected" in decided["reason"]
    assert aws_resources.drain(aws_resources.alert_queue_url) == []


def test_a_candidate_below_the_threshold_of_the_moment_is_not_alerted(aws_resources, lambda_context, monkeypatch):
    candidate, confirmed = candidate_and_match(pattern_event_detail("WF", "head-and-shoulders"))
    monkeypatch.setenv("ALERT_CONFIDENCE_THRESHOLD", "0.999")  # e.g. raised between emission and decision
    decided = run({"action": "decide", "symbol": "WF", "candidate": candidate, "confirmed": confirmed}, lambda_context)
    assert decided["decision"] == "NO_ALERT" and "below the alert threshold 0.999" in decided["reason"]
    assert aws_resources.drain(aws_resources.alert_queue_url) == []


def test_other_matches_in_the_window_are_reported_and_not_alerted(aws_resources, lambda_context):
    detail = pattern_event_detail("WF", "head-and-shoulders")
    candidate, confirmed = candidate_and_match(detail)
    earlier = {"pattern": "double-top", "confidence": 0.99, "start": 0, "end": 30,
               "startTimestamp": detail["bars"][0]["timestamp"], "endTimestamp": detail["bars"][30]["timestamp"],
               "extrema": [[detail["bars"][0]["timestamp"], 10.0], [detail["bars"][30]["timestamp"], 10.0]]}
    results = [{"family": "double-top", "symbol": "WF", "matches": [earlier]},
               {"family": "head-and-shoulders", "symbol": "WF", "matches": [confirmed]}]
    scored = run({"action": "score", "symbol": "WF", "candidate": candidate, "results": results}, lambda_context)
    assert scored["confirmed"] == confirmed and scored["otherMatches"] == [earlier]
    decided = run({"action": "decide", "symbol": "WF", "candidate": candidate, "confirmed": scored["confirmed"]}, lambda_context)
    assert decided["decision"] == "ALERT"
    assert [a["pattern"] for a in aws_resources.drain(aws_resources.alert_queue_url)] == ["head-and-shoulders"]


def test_validate_splits_the_event_into_bars_and_the_candidate(aws_resources, lambda_context):
    detail = pattern_event_detail("AAPL")
    shuffled = {**detail, "bars": list(reversed(detail["bars"]))}
    output = run({"action": "validate", "detail": shuffled}, lambda_context)
    assert output["symbol"] == "AAPL"
    assert output["bars"] == detail["bars"]  # sorted oldest first again
    assert output["candidate"] == {k: v for k, v in detail.items() if k not in ("symbol", "bars")}


def test_validate_normalises_iso_timestamps(aws_resources, lambda_context):
    from datetime import datetime, timezone

    detail = pattern_event_detail("AAPL")
    first = detail["bars"][0]
    iso = datetime.fromtimestamp(first["timestamp"], timezone.utc).isoformat().replace("+00:00", "Z")
    output = run({"action": "validate", "detail": {**detail, "bars": [{**first, "timestamp": iso}, *detail["bars"][1:]]}}, lambda_context)
    assert output["bars"][0]["timestamp"] == first["timestamp"]


GOOD_BAR = {"timestamp": 1_700_000_000, "open": 2.0, "high": 3.0, "low": 1.0, "close": 2.0, "volume": 1.0}


def first_bar(**changes):
    """The detail with its first bar changed."""
    return lambda d: {**d, "bars": [{**d["bars"][0], **changes}, *d["bars"][1:]]}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: {k: v for k, v in d.items() if k != "bars"}, "bars"),
        (lambda d: {**d, "bars": []}, "bars"),
        (lambda d: {**d, "bars": d["bars"][:1] * 2}, "share timestamp"),
        (lambda d: {**d, "bars": d["bars"][1:] + [{**d["bars"][-1], "timestamp": d["bars"][-1]["timestamp"] + 86_400}]}, "bar at endTimestamp"),
        (lambda d: {**d, "extra": 1}, "extra"),
        (lambda d: {**d, "symbol": "x" * 1000}, "symbol"),
        (lambda d: {k: v for k, v in d.items() if k != "alertId"}, "alertId"),
        (lambda d: {**d, "alertId": "AAPL#000000000001#head-and-shoulders"}, "alertId must be"),
        (lambda d: {**d, "pattern": "double-top"}, "alertId must be"),
        (lambda d: {**d, "confidence": 1.5}, "confidence"),
        (lambda d: {**d, "confidence": "0.97"}, "confidence"),
        (lambda d: {**d, "detectedAt": ""}, "detectedAt"),
        (lambda d: {**d, "detectedAt": "2026-03-02T00:00:00Z" * 3}, "detectedAt"),
        (lambda d: {**d, "extrema": []}, "extrema"),
        (lambda d: {**d, "extrema": list(reversed(d["extrema"]))}, "time order"),
        (lambda d: {**d, "extrema": [[ts, -1.0] for ts, _ in d["extrema"]]}, "extrema"),
        (lambda d: {**d, "startTimestamp": d["endTimestamp"] + 1}, "startTimestamp is after"),
        (lambda d: {**d, "bars": d["bars"][-5:]}, "from at or before startTimestamp"),
        (lambda d: {**d, "bars": d["bars"][:-1]}, "bar at endTimestamp"),
        (lambda d: {**d, "bars": d["bars"] * 2}, "share timestamp|at most 43"),
        (first_bar(open=float("nan")), "open"),
        (first_bar(close=0.0), "close"),
        (first_bar(low=-1.0), "low"),
        (first_bar(high=0.5), "high"),
        (first_bar(volume="1"), "volume"),
        (first_bar(timestamp=None), "timestamp"),
    ],
)
def test_a_bad_pattern_detected_event_raises_invalid_input_error(aws_resources, lambda_context, mutate, reason):
    detail = mutate(copy.deepcopy(pattern_event_detail("AAPL")))
    with pytest.raises(InvalidInputError, match=reason):
        run({"action": "validate", "detail": detail}, lambda_context)


CANDIDATE = {"pattern": "double-top", "confidence": 0.97, "startTimestamp": 1_700_000_000, "endTimestamp": 1_700_002_400,
             "detectedAt": "2026-03-02T00:00:00.000000Z", "alertId": "AAPL#001700002400#double-top",
             "extrema": [[1_700_000_000, 2.0], [1_700_001_200, 1.5], [1_700_002_400, 2.0]]}
MATCH = {"pattern": "double-top", "confidence": 0.97, "start": 1, "end": 40, "startTimestamp": 1_700_000_000,
         "endTimestamp": 1_700_002_400, "extrema": CANDIDATE["extrema"]}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"action": "explode", "symbol": "AAPL"}, "unknown action"),
        ({"symbol": "AAPL"}, "unknown action"),
        ([1, 2], "JSON object"),
        ({"action": "validate", "symbol": "AAPL", "bars": [GOOD_BAR]}, "detail"),
        ({"action": "detect", "family": "cup-and-handle", "symbol": "AAPL", "bars": [GOOD_BAR]}, "family"),
        ({"action": "detect", "family": "double-top", "symbol": "AAPL", "bars": [{**GOOD_BAR, "timestamp": 1_700_000_000 + i} for i in range(5001)]}, "bars"),
        ({"action": "score", "symbol": "AAPL", "candidate": CANDIDATE, "results": []}, "results"),
        ({"action": "score", "symbol": "AAPL", "results": [{"family": "double-top", "symbol": "AAPL", "matches": []}]}, "candidate"),
        ({"action": "score", "symbol": "AAPL", "candidate": CANDIDATE, "results": [{"family": "double-top", "symbol": "MSFT", "matches": []}]}, "symbol"),
        ({"action": "score", "symbol": "AAPL", "candidate": CANDIDATE,
          "results": [{"family": "double-top", "symbol": "AAPL", "matches": []}] * 2}, "one result per family"),
        ({"action": "score", "symbol": "AAPL", "candidate": CANDIDATE,
          "results": [{"family": "double-top", "symbol": "AAPL", "matches": [{k: v for k, v in MATCH.items() if k != "extrema"}]}]}, "extrema"),
        ({"action": "decide", "symbol": "AAPL", "candidate": CANDIDATE, "confirmed": {"pattern": "double-top"}}, "confirmed"),
        ({"action": "decide", "symbol": "AAPL", "candidate": CANDIDATE}, "confirmed"),
        ({"action": "decide", "symbol": "AAPL", "candidate": CANDIDATE, "confirmed": {**MATCH, "pattern": "double-bottom"}}, "candidate's pattern"),
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

    event = {"action": "decide", "symbol": "AAPL", "candidate": CANDIDATE, "confirmed": MATCH}
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
