"""Decoders for what arrives on the stream and the queue: raw text in, a validated model or a
RecordRejected with a short, log-safe reason out. Pure functions, no AWS."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from patternwatch_shared import strict_json
from patternwatch_shared.models import AlertMessage, Bar

Parsed = TypeVar("Parsed")

# A bar is ~150 bytes of JSON; anything far larger is a producer bug or abuse, refused before parsing.
MAX_BAR_JSON_BYTES = 2_048
MAX_BAR_BASE64_CHARS = 4 * ((MAX_BAR_JSON_BYTES + 2) // 3)
MAX_ALERT_BODY_CHARS = 16_384
MAX_REASON_CHARS = 500


class RecordRejected(ValueError):
    """A record that can never succeed, however often it is retried. The message says why."""


def describe_validation_error(error: ValidationError) -> str:
    """"field: problem; ..." without echoing the input (it may be huge or sensitive)."""
    parts = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        location = ".".join(str(part) for part in item["loc"]) or "record"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)[:MAX_REASON_CHARS]


def decode_bar_record(data_base64: Any) -> Bar:
    """Kinesis record data (base64 of one JSON bar) -> Bar."""
    if not isinstance(data_base64, str) or not data_base64:
        raise RecordRejected("record data is missing or not base64 text")
    if len(data_base64) > MAX_BAR_BASE64_CHARS:
        raise RecordRejected(f"record data is larger than {MAX_BAR_JSON_BYTES} bytes")
    try:
        # validate=True: the default silently drops non-alphabet characters and "decodes" garbage.
        raw = base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise RecordRejected("record data is not valid base64") from None
    return parse_bar_json(raw)


def parse_document(validate: Callable[[Any], Parsed], raw: bytes | str, what: str | None = None) -> Parsed:
    """A JSON object's text -> `validate(document)`, or RecordRejected("invalid <what>: <reason>").

    The text is read by strict_json (no repeated keys, no NaN or Infinity, ...) and then validated
    as a Python object, e.g. `parse_document(Bar.model_validate, raw, "bar")`: pydantic's own JSON
    parser keeps the last of a repeated key.
    """
    prefix = f"invalid {what}: " if what else ""
    try:
        document = strict_json.loads(raw)
    except strict_json.StrictJsonError as error:
        raise RecordRejected(f"{prefix}{error}") from None
    if not isinstance(document, dict):
        raise RecordRejected(f"{prefix}must be a JSON object")
    try:
        return validate(document)
    except ValidationError as error:
        raise RecordRejected(f"{prefix}{describe_validation_error(error)}") from None


def parse_bar_json(raw: bytes | str) -> Bar:
    if len(raw) > MAX_BAR_JSON_BYTES:
        raise RecordRejected(f"bar JSON is larger than {MAX_BAR_JSON_BYTES} bytes")
    return parse_document(Bar.model_validate, raw, "bar")


def decode_alert_body(body: Any) -> AlertMessage:
    """AlertQueue message body (JSON) -> AlertMessage."""
    if not isinstance(body, str) or not body:
        raise RecordRejected("message body is missing or not text")
    if len(body) > MAX_ALERT_BODY_CHARS:
        raise RecordRejected(f"message body is longer than {MAX_ALERT_BODY_CHARS} characters")
    return parse_document(AlertMessage.model_validate, body, "alert")
