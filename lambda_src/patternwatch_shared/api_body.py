"""The text of an API Gateway proxy request's body, or a MalformedBody that the route answers with 400.

Powertools' `decoded_body` trusts `isBase64Encoded`: a body flagged as base64 that is not base64 of
UTF-8 text raises binascii.Error or UnicodeDecodeError out of the route, which API Gateway turns
into a 502. Clients control both the flag (through the Content-Type) and the body, so this is bad
input, not a server error.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any


class MalformedBody(ValueError):
    """The body cannot be read as text; the message is safe to return to the client."""


def request_text(event: Any) -> str | None:
    """The body as text (None when there is none), base64-decoded when the event says it is encoded.

    `event` is a Powertools proxy event (`body`, `is_base64_encoded`).
    """
    body = event.body
    if body is None:
        return None
    if not isinstance(body, str):
        raise MalformedBody("request body is not text")
    if not event.is_base64_encoded:
        return body
    try:
        # validate=True: the default silently drops characters outside the alphabet.
        return base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError, and non-ASCII text, are ValueErrors
        raise MalformedBody("request body is flagged as base64 but is not base64 of UTF-8 text") from None
