"""The emulator's HTTP front: the deployed REST APIs, a few admin endpoints, and moto for everything else.

Admin endpoints (JSON; only this emulator has them, no AWS API does):
- GET  /_patternwatch/clock                      {"offsetSeconds", "now"}
- POST /_patternwatch/clock  {"advanceSeconds": n} or {"reset": true}
- POST /_patternwatch/metrics/flush              wait for queued async invocations, publish SQS/Kinesis metrics
- POST /_patternwatch/events/fire  {"rule", "bus"?, "region"?, "wait"?: true}
                                                 deliver a scheduled rule's event to its targets now
- POST /_patternwatch/lambda/wait  {"timeout"?}  wait until EventBridge retries and queued async invocations are done
- GET  /_patternwatch/lambda/stats               invocations, cold starts, errors, dropped async events
- GET  /_patternwatch/events/stats               EventBridge retries pending, events that found no dead-letter queue
- GET  /_patternwatch/calls                      AWS calls served, by service.operation; DynamoDB request units (call_counts.py)
- GET, POST, DELETE /_patternwatch/faults       the fault rules (POST {"rules": [...]}), what fired; DELETE clears
                                                 (faults.py; tests/integration/test_faults.py)
- GET  /_patternwatch/identity                   {"pid", "projectRoot", "startedAt"}: which checkout's emulator answers
                                                 on this port (tooling/emulator.py refuses another checkout's)
"""
from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from . import api_gateway, call_counts, clock, event_delivery, faults, service_metrics
from .lambda_service import service

DEFAULT_ACCOUNT = "123456789012"
ADMIN_PREFIX = "/_patternwatch/"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTED_AT = time.time()


def default_region() -> str:
    return os.environ.get("PATTERNWATCH_EMULATOR_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length else b""


def _respond(start_response, status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    from http import HTTPStatus

    raw = body if isinstance(body, bytes) else json.dumps(body, default=str).encode()
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
    start_response(f"{status} {reason}", [*(headers or [("Content-Type", "application/json")]), ("Content-Length", str(len(raw)))])
    return [raw]


def _drain(timeout: float) -> bool:
    """EventBridge's retries first (they may invoke functions asynchronously), then the Lambda service's queue."""
    return event_delivery.wait_for_retries(timeout) & service().wait_for_async(timeout)


def _admin(method: str, path: str, body: dict) -> tuple[int, Any]:
    route = path[len(ADMIN_PREFIX):].rstrip("/")
    if route == "clock":
        if method == "POST":
            if body.get("reset"):
                clock.reset()
            else:
                clock.advance(float(body.get("advanceSeconds", 0)))
        return 200, {"offsetSeconds": clock.offset(), "now": clock.now()}
    if route == "metrics/flush" and method == "POST":
        drained = _drain(float(body.get("timeout", 120)))
        return 200, {"asyncDrained": drained, "dataPoints": service_metrics.publish_now()}
    if route == "events/fire" and method == "POST":
        result = event_delivery.fire_rule(body.get("account", DEFAULT_ACCOUNT), body.get("region", default_region()), body["rule"],
                                          body.get("bus", "default"), body.get("time"))
        if body.get("wait", True):
            result["asyncDrained"] = _drain(float(body.get("timeout", 300)))
        return 200, result
    if route == "lambda/wait" and method == "POST":
        return 200, {"asyncDrained": _drain(float(body.get("timeout", 300)))}
    if route == "lambda/stats" and method == "GET":
        return 200, service().stats()
    if route == "events/stats" and method == "GET":
        return 200, event_delivery.stats()
    if route == "calls" and method == "GET":
        return 200, call_counts.snapshot()
    if route == "faults":
        if method == "POST":
            return 200, {"rules": faults.configure(body.get("rules", []))}
        if method == "DELETE":
            return 200, {"rules": faults.clear()}
        return 200, {"rules": faults.report()}
    if route == "identity" and method == "GET":
        return 200, {"pid": os.getpid(), "projectRoot": str(PROJECT_ROOT), "startedAt": STARTED_AT}
    return 404, {"message": f"no admin endpoint {method} {path}"}


def _gateway_request(environ, path: str) -> api_gateway.Request:
    from urllib.parse import parse_qs

    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((api_gateway.canonical_header(key[5:].replace("_", "-").lower()), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((api_gateway.canonical_header(key.replace("_", "-").lower()), value))
    return api_gateway.Request(
        method=environ["REQUEST_METHOD"],
        path=path or "/",
        query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
        headers=headers,
        body=_read_body(environ),
        source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
    )


def _find_api_region(account: str, api_id: str) -> str:
    from moto.apigateway.models import apigateway_backends

    for region, backend in list(apigateway_backends[account].items()):
        if api_id in backend.apis:
            return region
    return default_region()


class PlatformApp:
    """WSGI: admin and gateway paths here, the rest to moto's dispatcher."""

    def __init__(self, moto_app) -> None:
        self.moto_app = moto_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(ADMIN_PREFIX):
            raw = _read_body(environ)
            try:
                status, body = _admin(environ["REQUEST_METHOD"], path, json.loads(raw) if raw else {})
            except (KeyError, ValueError) as error:
                status, body = 400, {"message": f"{type(error).__name__}: {error}"}
            return _respond(start_response, status, body)
        match = api_gateway.PATH.match(path)
        if match:
            request = _gateway_request(environ, match.group("path"))
            account = DEFAULT_ACCOUNT
            response = api_gateway.handle(account, _find_api_region(account, match.group("api")), match.group("api"), match.group("stage"), request)
            return _respond(start_response, response.status, response.body, response.headers)
        body = _read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        service, operation = call_counts.operation_of(environ, body)
        return faults.serve(environ, start_response, self._counted, service, operation, body)

    def _counted(self, environ, start_response):
        return call_counts.counted(environ, start_response, self.moto_app)


def application():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return PlatformApp(DomainDispatcherApplication(create_backend_app))


def redacted_request_line(line: str) -> str:
    """A request line (or path) for the emulator's own log, with the path below a REST API stage cut off.

    Like API Gateway's access log (which records $context.resourcePath), the emulator's log must not
    keep what the path carries: an approval link's token.
    """
    return _USER_REQUEST_PATH.sub(r"\1/…", line)


_USER_REQUEST_PATH = re.compile(r"(/restapis/[^/\s]+/[^/\s]+/_user_request_)/[^\s\"]*")


def serve(host: str, port: int) -> None:
    """Run the emulator in the foreground (python -m tooling.moto_extensions does this)."""
    import signal
    import sys

    from werkzeug.serving import WSGIRequestHandler, run_simple

    class RedactingRequestHandler(WSGIRequestHandler):
        def log_request(self, code="-", size="-"):
            path = getattr(self, "path", None)
            if path is not None:
                self.path = redacted_request_line(path)
            self.requestline = redacted_request_line(self.requestline)
            try:
                super().log_request(code, size)
            finally:
                if path is not None:
                    self.path = path

    os.environ.setdefault("MOTO_PORT", str(port))
    os.environ.setdefault("MOTO_HOST", host)

    def stop(*_):
        service().shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    run_simple(host, port, application(), threaded=True, request_handler=RedactingRequestHandler)

