"""JSON as the platform reads and writes it: one meaning per text, and always valid JSON.

Reading (`loads`) refuses what lenient readers take silently: a repeated key (Python's json and
pydantic keep the last value, so {"action":"reject","action":"approve"} would count as approve),
nesting deep enough to exhaust the parser's stack, integers longer than Python converts, and bytes
that are not UTF-8. Every API body, queue message and stream record goes through it before its
model validates it. Non-finite numbers are left to the models (allow_inf_nan=False on every one),
which name the field: the NaN and Infinity tokens and overflowing literals such as 1e400 (which no
parser option catches) all arrive there as non-finite floats.

Writing (`dumps`): Python's json writes NaN, Infinity and -Infinity by default; other JSON readers
(SNS subscribers, Step Functions, browsers) refuse them. Everything the handlers send to a queue, a
topic, an API client or the workflow goes through `dumps`, which raises instead.
"""
from __future__ import annotations

import json
from typing import Any


class StrictJsonError(ValueError):
    """The text is not JSON this platform accepts; the message says why without echoing the input."""


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJsonError(f"duplicate key {key[:64]!r}")
            seen.add(key)
    return document


_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_repeated_keys)


def loads(text: str | bytes) -> Any:
    """The document in `text`; StrictJsonError with a short reason for anything else."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise StrictJsonError("Invalid JSON: the text is not UTF-8") from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise StrictJsonError(f"Invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise StrictJsonError("Invalid JSON: nested too deeply") from None
    except StrictJsonError:
        raise
    except ValueError:  # an integer longer than int() converts (sys.get_int_max_str_digits)
        raise StrictJsonError("Invalid JSON: a number has too many digits") from None


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
