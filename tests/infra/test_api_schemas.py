"""The API's request models are generated from the handlers' pydantic types: the edge and the handler agree.

Every body below goes through the pydantic type (as the handler parses it, from JSON text) and through a
draft-04 validator on the generated schema (as API Gateway checks it). Structural mistakes are refused by
both; the rules JSON Schema cannot say are the model's alone, and the schema never refuses a body the
model accepts.
"""
from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import TypeAdapter, ValidationError
from pattern_engine.limits import MIN_WINDOW
from patternwatch_shared.models import MAX_REQUEST_WINDOW, ApprovalDecision, PatternsRequest

from patternwatch_infra.api import APPROVAL_DECISION_SCHEMA, PATTERNS_REQUEST_SCHEMA
from patternwatch_infra.json_schema import DRAFT_04, draft4

BAR = {"timestamp": 1_700_000_000, "open": 10.0, "high": 11.0, "low": 9.5, "close": 10.5, "volume": 1000}


def patterns_body(**changes) -> dict:
    body = {"symbol": "AAPL", "bars": [BAR]}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def bar(**changes) -> dict:
    return {k: v for k, v in {**BAR, **changes}.items() if v is not ...}


def model_accepts(python_type, body) -> bool:
    try:
        TypeAdapter(python_type).validate_json(json.dumps(body))
    except ValidationError:
        return False
    return True


def schema_accepts(schema: dict, body) -> bool:
    return jsonschema.Draft4Validator(schema).is_valid(body)


VALID_PATTERNS_REQUESTS = [
    patterns_body(),
    patterns_body(window=MIN_WINDOW, patterns=["head-and-shoulders", "double-top"]),
    patterns_body(window=MAX_REQUEST_WINDOW, patterns=None),
    patterns_body(bars=[bar(timestamp="2026-01-02T00:00:00Z"), bar(timestamp=1_700_086_400)]),
    patterns_body(bars=[bar(open=10, high=11, low=9, close=10, volume=0)]),
    patterns_body(symbol="BRK.B"),
]
INVALID_PATTERNS_REQUESTS = [
    patterns_body(symbol=...),
    patterns_body(bars=...),
    patterns_body(symbol="aapl"),
    patterns_body(symbol="TOOLONGSYMBOL1"),
    patterns_body(symbol=7),
    patterns_body(bars=[]),
    patterns_body(bars=BAR),
    patterns_body(bars=[bar(open=0)]),
    patterns_body(bars=[bar(close=-1.5)]),
    patterns_body(bars=[bar(volume=-1)]),
    patterns_body(bars=[bar(high="11")]),
    patterns_body(bars=[bar(low=True)]),
    patterns_body(bars=[bar(volume=...)]),
    patterns_body(bars=[bar(extra=1)]),
    patterns_body(bars=[bar(timestamp=1.5)]),
    patterns_body(bars=[bar(timestamp=10**12)]),
    patterns_body(bars=[bar(timestamp=100)]),
    patterns_body(bars=[bar(timestamp="2026-01-02T00:00:00.000000000000000000000000Z")]),
    patterns_body(bars=[bar(timestamp=None)]),
    patterns_body(window=4),
    patterns_body(window=MIN_WINDOW - 1),  # the engine needs at least MIN_WINDOW bars
    patterns_body(window=MAX_REQUEST_WINDOW + 1),
    patterns_body(window="38"),
    patterns_body(window=38.5),
    patterns_body(patterns=[]),
    patterns_body(patterns=["Head And Shoulders"]),
    patterns_body(patterns="double-top"),
    patterns_body(extra=True),
    ["AAPL"],
    "AAPL",
    None,
]
# Valid JSON shape, but a rule only the model can check: the API lets these through to the handler,
# which answers 400 with the reason.
MODEL_ONLY_REFUSALS = [
    patterns_body(bars=[bar(high=9.0)]),  # high below low
    patterns_body(bars=[bar(low=10.8)]),  # low above open/close
    patterns_body(bars=[BAR, BAR]),  # two bars share a timestamp
    patterns_body(bars=[bar(timestamp="yesterday")]),  # not ISO 8601
    patterns_body(bars=[bar(timestamp="2026-01-02T00:00:00")]),  # no time zone
    patterns_body(bars=[bar(open=10.0, high=1e200)]),  # a number DynamoDB cannot store
]


@pytest.mark.parametrize("body", VALID_PATTERNS_REQUESTS)
def test_valid_patterns_requests_pass_both(body):
    assert model_accepts(PatternsRequest, body)
    assert schema_accepts(PATTERNS_REQUEST_SCHEMA, body)


@pytest.mark.parametrize("body", INVALID_PATTERNS_REQUESTS)
def test_malformed_patterns_requests_are_refused_by_both(body):
    assert not model_accepts(PatternsRequest, body)
    assert not schema_accepts(PATTERNS_REQUEST_SCHEMA, body)


@pytest.mark.parametrize("body", MODEL_ONLY_REFUSALS)
def test_rules_json_schema_cannot_say_are_the_models(body):
    assert schema_accepts(PATTERNS_REQUEST_SCHEMA, body)
    assert not model_accepts(PatternsRequest, body)


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"action": "approve"}, True),
        ({"action": "reject"}, True),
        ("approve", True),
        ("reject", True),
        ({"action": "maybe"}, False),
        ({"action": "approve", "note": "ok"}, False),
        ({}, False),
        ("maybe", False),
        ("APPROVE", False),
        (1, False),
        (None, False),
        (["approve"], False),
    ],
)
def test_approval_decisions_agree(body, valid):
    assert model_accepts(ApprovalDecision, body) is valid
    assert schema_accepts(APPROVAL_DECISION_SCHEMA, body) is valid


@pytest.mark.parametrize("schema", [PATTERNS_REQUEST_SCHEMA, APPROVAL_DECISION_SCHEMA], ids=["patterns", "approval"])
def test_generated_schemas_are_draft_04_without_later_keywords(schema):
    jsonschema.Draft4Validator.check_schema(schema)
    assert schema["$schema"] == DRAFT_04
    text = json.dumps(schema)
    for later in ('"$defs"', '"$ref"', '"const"', '"prefixItems"'):
        assert later not in text
    exclusive = [v for v in _walk(schema) if "exclusiveMinimum" in v]
    assert all(v["exclusiveMinimum"] is True and "minimum" in v for v in exclusive)


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


# --- the converter on its own -----------------------------------------------------------------------

def test_references_are_inlined_and_newer_keywords_translated():
    from typing import Annotated, Literal

    from pydantic import BaseModel, Field

    class Inner(BaseModel):
        """Not shown below the root."""

        kind: Literal["only"]
        ratio: Annotated[float, Field(gt=0, lt=1)]

    class Outer(BaseModel):
        first: Inner
        rest: list[Inner]
        label: Annotated[str, Field(title="Ignored")] = "x"

    schema = draft4(Outer, title="Outer")
    assert (schema["$schema"], schema["title"]) == (DRAFT_04, "Outer")
    inner = schema["properties"]["first"]
    assert schema["properties"]["rest"]["items"] == inner
    assert inner["properties"]["kind"] == {"enum": ["only"], "type": "string"}
    assert inner["properties"]["ratio"] == {"minimum": 0, "exclusiveMinimum": True, "maximum": 1, "exclusiveMaximum": True, "type": "number"}
    assert "title" not in inner and "description" not in inner and "title" not in schema["properties"]["label"]
    jsonschema.Draft4Validator.check_schema(schema)


def test_not_and_boolean_keywords_pass_through():
    from typing import Annotated

    from pydantic import Field, WithJsonSchema

    NotEmpty = Annotated[str, WithJsonSchema({"type": "string", "not": {"enum": [""]}, "additionalProperties": False})]
    assert draft4(NotEmpty, title="NotEmpty")["not"] == {"enum": [""]}
    assert draft4(Annotated[int, Field(ge=1)], title="Positive")["minimum"] == 1


def test_a_keyword_draft_04_lacks_stops_synthesis():
    from typing import Annotated

    from pydantic import WithJsonSchema

    Tuple = Annotated[list, WithJsonSchema({"type": "array", "prefixItems": [{"type": "string"}]})]
    with pytest.raises(ValueError, match="'prefixItems' has no draft-04 equivalent"):
        draft4(Tuple, title="Tuple")
