"""Step Functions input parsing and the score/decide rules, property-tested without AWS."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patternwatch_shared import keys, workflow
from patternwatch_shared.detection import severity_for
from patternwatch_shared.models import DecideRequest, ScoreRequest
from patternwatch_shared.names.messages import WORKFLOW_ACTIONS

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(["action", "symbol", "bars", "detail", "family", "results", "candidate", "confirmed", "x"]), json_values, max_size=6))
def test_arbitrary_workflow_input_is_parsed_or_refused_as_invalid_input(event):
    try:
        request = workflow.parse_request(event)
    except workflow.InvalidInputError as error:
        assert str(error)
    else:
        assert request.action in WORKFLOW_ACTIONS


match_confidences = st.lists(st.floats(0, 1), max_size=8)
T0 = 1_700_000_000


def match(pattern: str, confidence: float, end: int) -> dict:
    """A match whose window ends `end` bars after the first, one minute apart."""
    end_timestamp = T0 + 60 * (end + 1)
    return {
        "pattern": pattern, "confidence": confidence, "start": 0, "end": end + 1,
        "startTimestamp": T0, "endTimestamp": end_timestamp, "extrema": [[T0, 10.0], [end_timestamp, 10.5]],
    }


def candidate_for(found: dict) -> dict:
    return {
        "pattern": found["pattern"], "confidence": found["confidence"], "startTimestamp": found["startTimestamp"],
        "endTimestamp": found["endTimestamp"], "detectedAt": "2026-01-01T00:00:00.000000Z",
        "alertId": keys.alert_id("AAPL", keys.pattern_sort_key(found["endTimestamp"], found["pattern"])),
        "extrema": found["extrema"],
    }


@given(match_confidences, match_confidences, st.integers(0, 15), st.floats(0, 1))
def test_score_confirms_only_the_candidate_and_decide_alerts_at_or_above_the_threshold(a, b, pick, threshold):
    results = [
        {"family": "double-top", "symbol": "AAPL", "matches": [match("double-top", c, i) for i, c in enumerate(a)]},
        {"family": "head-and-shoulders", "symbol": "AAPL", "matches": [match("head-and-shoulders", c, i) for i, c in enumerate(b)]},
    ]
    everything = results[0]["matches"] + results[1]["matches"]
    # The candidate is one of the matches, or (pick beyond them) a match the bars did not show.
    wanted = everything[pick] if pick < len(everything) else match("double-top", 0.99, 99)
    scored = workflow.score(ScoreRequest.model_validate(
        {"action": "score", "symbol": "AAPL", "candidate": candidate_for(wanted), "results": results}))
    others = [m["confidence"] for m in scored["otherMatches"]]
    assert sorted(others, reverse=True) == others
    decided, alert = workflow.decide(
        DecideRequest.model_validate({"action": "decide", "symbol": "AAPL", "candidate": scored["candidate"], "confirmed": scored["confirmed"]}),
        alert_threshold=threshold,
    )
    if pick >= len(everything):
        assert scored["confirmed"] is None and len(others) == len(everything)
        assert decided["decision"] == "NO_ALERT" and alert is None
        return
    assert scored["confirmed"] == wanted and len(others) == len(everything) - 1
    if wanted["confidence"] >= threshold:
        assert decided["decision"] == "ALERT" and alert.confidence == wanted["confidence"]
        assert (alert.pattern, alert.endTimestamp) == (wanted["pattern"], wanted["endTimestamp"])
        assert alert.severity == severity_for(wanted["confidence"], threshold)
    else:
        assert decided["decision"] == "NO_ALERT" and alert is None


def test_decide_keeps_the_stream_alert_identity_and_detection_time():
    found = match("double-top", 0.99, 40)
    candidate = candidate_for(found)
    _, alert = workflow.decide(
        DecideRequest.model_validate({"action": "decide", "symbol": "AAPL", "candidate": candidate, "confirmed": found}),
        alert_threshold=0.9,
    )
    assert alert.alertId == f"AAPL#{str(found['endTimestamp']).zfill(12)}#double-top" == candidate["alertId"]
    assert alert.detectedAt == candidate["detectedAt"] and alert.source == "workflow"
    assert alert.details == {"extrema": [tuple(point) for point in found["extrema"]]}


@pytest.mark.parametrize("action", WORKFLOW_ACTIONS)
def test_every_declared_action_has_a_schema(action):
    with pytest.raises(workflow.InvalidInputError) as caught:
        workflow.parse_request({"action": action})
    assert "unknown action" not in str(caught.value)
