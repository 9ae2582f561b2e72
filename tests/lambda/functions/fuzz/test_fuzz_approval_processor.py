"""Fuzzing approval-processor: sequences of GET and POST /approve/{token} requests, good and bad.

For every generated sequence: every request is answered with a status (never an exception, which
API Gateway turns into a 502); the status is the one the rules give (400 for a malformed token or
body, whatever its encoding; 404 unknown, or a method with no route; GET: 200 for a live approval,
decided or not, 410 past its deadline, and it never decides; POST: 200 for the first decision on a
live approval, 409 after; 410 for an expired one, which it auto-rejects); the recorded status is
the first decision's; each decided approval is published exactly once, also when the sequence is
sent again or two decisions race.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approval_processor import handler
from fuzz_support import DEEP_NESTING, EVENTS_PER_HANDLER, FuzzPlatform, count_event, deliver_at_once, fuzz, tally
from lambda_testkit import API_BASE_URL, APPROVAL_TRACKING, APPROVERS, BAD_BASE64_BODIES, api_event
from patternwatch_shared import approvals
from patternwatch_shared.approvals import ApprovalWorkflow
from patternwatch_shared.models import AlertMessage

HANDLER = "approval-processor"
LIVE, EXPIRED, UNKNOWN = "1" * 32, "2" * 32, "3" * 32
MALFORMED_TOKENS = ("", "1" * 31, "1" * 33, "A" * 32, "g" * 32, "٣" * 32, "1" * 10_000, "../" + "1" * 29, "1" * 31 + "\n")
GOOD_BODIES = {
    '{"action":"approve"}': "approve", '{"action": "reject"}': "reject", '"approve"': "approve", '"reject"': "reject",
    "approve": "approve", "reject": "reject", "  reject\n": "reject", '\t{"action":"approve"} ': "approve",
}
BAD_BODIES = (
    None, "", "   ", '{"action":"reject","action":"approve"}', '{"action":"approve","action":"approve"}', '{"action":NaN}',
    '{"action":"escalate"}', '{"action":"approve","note":1}', '["approve"]', "APPROVE", "approve!", '"approve', "{",
    "approve" * 50, DEEP_NESTING, '{"action":' + "1" * 5000 + "}", "\ud800",
)


@st.composite
def approval_requests(draw) -> tuple[str, dict]:
    """(the token, an API Gateway proxy event for POST /approve/{token})."""
    token = draw(st.one_of(st.sampled_from((LIVE, EXPIRED, UNKNOWN)), st.sampled_from(MALFORMED_TOKENS)))
    body = draw(st.one_of(st.sampled_from(sorted(GOOD_BODIES)), st.sampled_from(BAD_BODIES), st.text(max_size=30)))
    encoding = draw(st.sampled_from(("plain", "plain", "base64", "bad base64")))
    if encoding == "base64" and body is not None:
        body = base64.b64encode(body.encode("utf-8", errors="surrogatepass")).decode()
    elif encoding == "bad base64":
        body = draw(st.sampled_from(BAD_BASE64_BODIES))
    method = draw(st.sampled_from(("POST", "POST", "POST", "GET", "PUT")))
    event = api_event(method, "/approve/{token}", f"/approve/{token}", body=body, path_parameters={"token": token},
                      base64_encoded=encoding != "plain")
    return token, event


def decoded(event: dict) -> str | None:
    body = event["body"]
    if body is None or not event["isBase64Encoded"]:
        return body
    try:
        return base64.b64decode(body, validate=True).decode("utf-8")
    except ValueError:
        return "\0not decodable"  # no decision reads like this: a 400


def expected_status(token: str, event: dict, decided: dict[str, str]) -> int:
    """The status the rules give, given what has been decided so far (updated here)."""
    if event["httpMethod"] not in ("GET", "POST"):
        return 404  # no such route
    if token not in (LIVE, EXPIRED, UNKNOWN):
        return 400
    if event["httpMethod"] == "GET":  # the page: it shows, and never decides
        return {UNKNOWN: 404, EXPIRED: 410, LIVE: 200}[token]
    action = GOOD_BODIES.get((decoded(event) or "").strip()) or GOOD_BODIES.get(decoded(event) or "")
    if action is None:
        return 400
    if token == UNKNOWN:
        return 404
    if token == EXPIRED:
        decided.setdefault(EXPIRED, "EXPIRED")
        return 410
    if LIVE in decided:
        return 409
    decided[LIVE] = {"approve": "APPROVED", "reject": "REJECTED"}[action]
    return 200


def store_approvals(platform: FuzzPlatform, monkeypatch) -> None:
    """A live and an expired approval, opened as alert-processor opens them, with ada's link as the token."""
    resources = platform.resources
    workflow = ApprovalWorkflow(resources.dynamodb, APPROVAL_TRACKING, sqs=resources.sqs, sns=resources.sns)
    now = datetime.now(timezone.utc)
    for token, opened_at in ((LIVE, now), (EXPIRED, now - timedelta(hours=2))):
        monkeypatch.setattr(approvals, "new_token", lambda token=token: token)
        alert = AlertMessage(
            alertId=f"alert-{token[0]}", source="stream", severity="CRITICAL", detectedAt=opened_at.isoformat(), confidence=0.97,
            symbol="AAPL", pattern="head-and-shoulders", startTimestamp=1_699_990_000, endTimestamp=1_700_000_000,
        )
        workflow.open(alert, {"ada": APPROVERS[0]}, now=opened_at, expiry_seconds=3600, api_base_url=API_BASE_URL,
                      pending_queue_url=platform.deliveries, requests_topic_arn=resources.approval_requests_topic)
    platform.clear(queues=[platform.deliveries, resources.approval_requests_inbox])


def statuses(platform: FuzzPlatform) -> dict[str, str]:
    by_alert = {i["alertId"]["S"]: i["status"]["S"] for i in platform.approval_items() if i["tokenHash"]["S"].startswith("approval#")}
    return {token: by_alert[f"alert-{token[0]}"] for token in (LIVE, EXPIRED)}


def test_each_approval_is_decided_once_and_every_bad_request_is_a_400(platform, lambda_context, monkeypatch):
    @fuzz()
    @given(requests=st.lists(approval_requests(), min_size=1, max_size=3))
    def send(requests):
        platform.clear(approvals=True, queues=[platform.resources.trading_alerts_inbox])
        store_approvals(platform, monkeypatch)
        counts = count_event(HANDLER, len(requests))
        decided: dict[str, str] = {}
        for round_ in range(2):  # the whole sequence, then again (a client retrying every request)
            for token, event in requests:
                response = handler.lambda_handler(event, lambda_context)
                counts.deliveries += 1
                expected = expected_status(token, event, decided)
                if token in MALFORMED_TOKENS and event["httpMethod"] in ("GET", "POST"):
                    # Refused either way: by the handler (400) or, when it cannot be one path segment
                    # ("", "/", a newline), by the route match (404), as API Gateway would.
                    assert response["statusCode"] in (400, 404), (round_, token, event["body"])
                else:
                    assert response["statusCode"] == expected, (round_, token, event["body"])
                json.loads(response["body"], parse_constant=lambda token: pytest.fail(f"{token} in a response"))
        assert statuses(platform) == {LIVE: decided.get(LIVE, "PENDING"), EXPIRED: decided.get(EXPIRED, "PENDING")}
        published = sorted(m["alertId"] for m in platform.published(platform.resources.trading_alerts_inbox))
        assert published == sorted(f"alert-{token[0]}" for token in decided)

    send()
    assert tally(HANDLER).events >= EVENTS_PER_HANDLER


def test_decisions_racing_for_one_approval_record_and_publish_one(platform, lambda_context, monkeypatch):
    @fuzz(20)
    @given(actions=st.lists(st.sampled_from(sorted(GOOD_BODIES)), min_size=2, max_size=4))
    def race(actions):
        platform.clear(approvals=True, queues=[platform.resources.trading_alerts_inbox])
        store_approvals(platform, monkeypatch)
        count_event(HANDLER, len(actions))
        events = [api_event("POST", "/approve/{token}", f"/approve/{LIVE}", body=body, path_parameters={"token": LIVE}) for body in actions]
        responses = deliver_at_once("approval_processor", HANDLER, events, lambda_context)
        codes = [response["statusCode"] for response in responses]
        assert sorted(codes) == [200] + [409] * (len(actions) - 1)
        winner = GOOD_BODIES[actions[codes.index(200)]]
        assert statuses(platform)[LIVE] == {"approve": "APPROVED", "reject": "REJECTED"}[winner]
        assert [m["alertId"] for m in platform.published(platform.resources.trading_alerts_inbox)] == ["alert-1"]

    race()
