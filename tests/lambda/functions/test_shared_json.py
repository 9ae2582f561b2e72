"""Strict JSON: what the platform writes to queues, topics, the API and Step Functions is always valid JSON."""
from __future__ import annotations

import json
import math

import pytest

from patternwatch_shared import strict_json
from patternwatch_shared.messaging import publish_json, send_json


class Recorder:
    """Stands in for the SQS and SNS clients: keeps what would have been sent."""

    def __init__(self):
        self.calls = []

    def send_message(self, **request):
        self.calls.append(request)

    def publish(self, **request):
        self.calls.append(request)


NON_FINITE = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("value", NON_FINITE)
def test_dumps_refuses_non_finite_numbers_anywhere_in_the_payload(value):
    with pytest.raises(ValueError, match="not JSON compliant"):
        strict_json.dumps({"alert": {"details": {"ratio": [1.0, value]}}})


def test_dumps_is_compact_and_round_trips():
    payload = {"a": [1, 2.5, None, True], "b": {"c": "é"}}
    text = strict_json.dumps(payload)
    assert " " not in text and json.loads(text) == payload


@pytest.mark.parametrize("value", NON_FINITE)
def test_queue_and_topic_payloads_with_non_finite_numbers_are_never_sent(value):
    recorder = Recorder()
    with pytest.raises(ValueError):
        send_json(recorder, "https://queue", {"confidence": value})
    with pytest.raises(ValueError):
        publish_json(recorder, "arn:topic", "subject", {"details": {"x": value}}, {"severity": "HIGH"})
    assert recorder.calls == []
