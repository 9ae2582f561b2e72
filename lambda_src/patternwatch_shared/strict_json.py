"""JSON as the platform writes it: always valid JSON, never NaN or Infinity.

Python's json module writes the non-standard tokens NaN, Infinity and -Infinity by default; other
JSON readers (SNS subscribers, Step Functions, browsers) refuse them. Everything the handlers send
to a queue, a topic, an API client or the workflow goes through `dumps`, which raises instead.
"""
from __future__ import annotations

import json
from typing import Any


def dumps(payload: Any) -> str:
    """Compact JSON text; ValueError if the payload holds a non-finite number."""
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except ValueError as error:
        raise ValueError(f"refusing to write invalid JSON: {error}") from None


def require_json(payload: Any) -> Any:
    """`payload` unchanged, after checking that it can be written as valid JSON (for results the
    Lambda runtime serialises itself, such as a workflow task's output)."""
    dumps(payload)
    return payload
