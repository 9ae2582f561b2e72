"""boto3 clients, created once per container and pointed at AWS_ENDPOINT_URL when it is set.

boto3 is imported lazily: it is the heaviest import a handler has, and the API routes that fail
validation never need it.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from patternwatch_shared.names.functions import ENV_AWS_ENDPOINT_URL

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    """The container's client for `service` (e.g. "dynamodb", "sqs", "sns")."""
    existing = _clients.get(service)
    if existing is not None:
        return existing
    with _lock:  # several threads may ask at once (the approval race test does)
        if service not in _clients:
            _clients[service] = _new_client(service)
        return _clients[service]


def _new_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Standard retry mode backs off on throttling and 5xx; the batch handlers turn what is still
    # failing after these attempts into batch-item failures, so the event source retries later.
    config = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10)
    endpoint_url = os.environ.get(ENV_AWS_ENDPOINT_URL) or None
    return boto3.session.Session().client(service, endpoint_url=endpoint_url, config=config)


def reset_clients() -> None:
    """Forget cached clients (tests start each moto context with fresh ones)."""
    with _lock:
        _clients.clear()
