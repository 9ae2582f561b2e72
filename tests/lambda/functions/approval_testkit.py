"""Approvals opened as alert-processor opens them, and requests to the approval page (shared by the approval tests)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import urlencode

from approval_processor import handler
from lambda_testkit import API_BASE_URL, APPROVAL_TRACKING, APPROVERS, DATA_BUCKET, api_event
from patternwatch_shared.approvals import ApprovalWorkflow
from patternwatch_shared.evidence import evidence_keys
from patternwatch_shared.models import AlertMessage

ALERT_ID = "AAPL#001700000000#head-and-shoulders"
PNG = b"\x89PNG\r\n\x1a\n" + b"chart-bytes" * 10
FORM = "application/x-www-form-urlencoded"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "User-Agent": "Mozilla/5.0 (X11; Linux) Test/1.0"}


def start_approval(resources, *, now: datetime | None = None, expiry_seconds: int = 3600, alert_id: str = ALERT_ID) -> dict[str, str]:
    """Open an approval as alert-processor does; returns each approver's token."""
    workflow = ApprovalWorkflow(resources.dynamodb, APPROVAL_TRACKING, sqs=resources.sqs, sns=resources.sns)
    alert = AlertMessage(
        alertId=alert_id,
        source="stream",
        severity="CRITICAL",
        detectedAt="2026-01-01T00:00:00.000000Z",
        confidence=0.98,
        symbol="AAPL",
        pattern="head-and-shoulders",
        startTimestamp=1_699_990_000,
        endTimestamp=1_700_000_000,
    )
    opened = workflow.open(
        alert,
        {a.id: a for a in APPROVERS},
        now=now or datetime.now(timezone.utc),
        expiry_seconds=expiry_seconds,
        api_base_url=API_BASE_URL,
        pending_queue_url=resources.pending_queue_url,
        requests_topic_arn=resources.approval_requests_topic,
    )
    resources.published(resources.approval_requests_inbox)  # clear the request notifications
    resources.drain(resources.pending_queue_url)
    return dict(opened.tokens)


def request(method: str, token: str, *, body: str | None = None, headers: dict | None = None) -> dict:
    event = api_event(method, "/approve/{token}", f"/approve/{token}", body=body, path_parameters={"token": token})
    if headers is not None:
        event["headers"] = dict(headers)
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
        event["requestContext"]["identity"]["userAgent"] = headers.get("User-Agent")
    return event


def call(token: str, body: str | None, context, *, method: str = "POST") -> tuple[int, dict]:
    """A JSON API client (the event's Content-Type is application/json)."""
    response = handler.lambda_handler(request(method, token, body=body), context)
    return response["statusCode"], json.loads(response["body"])


def browse(method: str, token: str, context, *, form: dict | None = None) -> dict:
    """A browser: Accept text/html, and for POST the form the page submits."""
    headers = dict(BROWSER)
    if form is not None:
        headers["Content-Type"] = FORM
    return handler.lambda_handler(request(method, token, body=urlencode(form) if form is not None else None, headers=headers), context)


def headers_of(response: dict) -> dict[str, str]:
    """The REST resolver answers with multiValueHeaders, one value each here."""
    return {name: values[-1] for name, values in response["multiValueHeaders"].items()}


def approval_item(resources, alert_id: str = ALERT_ID) -> dict:
    return resources.dynamodb.get_item(TableName=APPROVAL_TRACKING, Key={"tokenHash": {"S": f"approval#{alert_id}"}})["Item"]


def store_chart(resources, alert_id: str = ALERT_ID) -> None:
    resources.s3.put_object(Bucket=DATA_BUCKET, Key=evidence_keys(alert_id).chart, Body=PNG, ContentType="image/png")
