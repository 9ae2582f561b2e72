"""Step Functions input parsing and the score/decide rules, property-tested without AWS."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patternwatch_shared import workflow
from patternwatch_shared.models import DecideRequest, ScoreRequest
from patternwatch_shared.names.messages import ALERT_CONFIDENCE_THRESHOLD, WORKFLOW_ACTIONS

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(["action", "symbol", "bars", "family", "results", "matches", "x"]), json_values, max_size=6))
def test_arbitrary_workflow_input_is_parsed_or_refused_as_invalid_input(event):
    try:
        request = workflow.parse_request(event)
    except workflow.InvalidInputError as error:
        assert str(error)
    else:
        assert request.action in WORKFLOW_ACTIONS


match_confidences = st.lists(st.floats(0, 1), max_size=8)


def match(pattern: str, confidence: float, end: int) -> dict:
    return {
        "pattern": pattern, "confidence": confidence, "start": 0, "end": end,
        "startTimestamp": 1_700_000_000, "endTimestamp": 1_700_000_000 + 60 * end,
    }


@given(match_confidences, match_confidences)
def test_score_ranks_every_match_and_decide_alerts_only_above_the_threshold(a, b):
    results = [
        {"family": "double-top", "symbol": "AAPL", "matches": [match("double-top", c, i) for i, c in enumerate(a)]},
        {"family": "head-and-shoulders", "symbol": "AAPL", "matches": [match("head-and-shoulders", c, i) for i, c in enumerate(b)]},
    ]
    scored = workflow.score(ScoreRequest.model_validate({"action": "score", "symbol": "AAPL", "results": results}))
    confidences = [m["confidence"] for m in scored["matches"]]
    assert sorted(confidences, reverse=True) == confidences and len(confidences) == len(a) + len(b)
    decided, alert = workflow.decide(
        DecideRequest.model_validate({"action": "decide", **scored}), detected_at=datetime(2026, 1, 1, tzinfo=timezone.utc)
    )
    top = max(a + b, default=None)
    if top is not None and top > ALERT_CONFIDENCE_THRESHOLD:
        assert decided["decision"] == "ALERT" and alert is not None and alert.confidence == top
    else:
        assert decided["decision"] == "NO_ALERT" and alert is None


def test_decide_uses_the_stream_alert_identity():
    top = match("double-top", 0.99, 40)
    _, alert = workflow.decide(
        DecideRequest.model_validate({"action": "decide", "symbol": "AAPL", "matches": [top], "topMatch": top, "severity": "CRITICAL"}),
        detected_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )
    assert alert.alertId == f"AAPL#{str(top['endTimestamp']).zfill(12)}#double-top"


@pytest.mark.parametrize("action", WORKFLOW_ACTIONS)
def test_every_declared_action_has_a_schema(action):
    with pytest.raises(workflow.InvalidInputError) as caught:
        workflow.parse_request({"action": action})
    assert "unknown action" not in str(caught.value)
