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


# --- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"action":"reject","action":"approve"}', "duplicate key 'action'"),
        ('{"bars":[{"open":1,"open":2}]}', "duplicate key 'open'"),
        ('{"a":{"b":1},"a":{"b":1}}', "duplicate key 'a'"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"x":' + "1" * 4301 + "}", "too many digits"),
        ("{not json", "Invalid JSON"),
        ("", "Invalid JSON"),
        ('{"a":1} trailing', "Invalid JSON"),
    ],
)
def test_loads_refuses_what_a_lenient_reader_would_take_with_a_reason(text, reason):
    with pytest.raises(strict_json.StrictJsonError) as caught:
        strict_json.loads(text)
    assert reason in str(caught.value)
    assert len(str(caught.value)) < 200


def test_loads_reads_ordinary_json_like_json_loads():
    text = '{"a":[1,2.5,-3e-5,null,true,"\u00e9"],"b":{"c":{}},"d":1e300}'
    assert strict_json.loads(text) == json.loads(text)
    assert strict_json.loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", ['{"x":NaN}', '{"x":-Infinity}', '{"x":1e400}'])
def test_loads_leaves_non_finite_numbers_to_the_models_which_name_the_field(text):
    from patternwatch_shared.decoding import RecordRejected, parse_document
    from patternwatch_shared.models import ApprovalDecisionBody, StrictModel

    class Reading(StrictModel):
        x: float

    assert not math.isfinite(strict_json.loads(text)["x"])
    with pytest.raises(RecordRejected, match="x: Input should be a finite number"):
        parse_document(Reading.model_validate, text)
    assert ApprovalDecisionBody.model_config["allow_inf_nan"] is False  # every model inherits it


def test_loads_refuses_bytes_that_are_not_utf8():
    # json.loads would read this as UTF-16 because of the byte-order mark.
    with pytest.raises(strict_json.StrictJsonError, match="UTF-8"):
        strict_json.loads('\ufeff{"a":1}'.encode("utf-16"))
