"""The approval page's rendering: pure functions, no AWS (approval_processor/pages.py)."""
from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from datetime import datetime, timezone

import pytest

from approval_processor import pages
from approval_processor.pages import Chart, answer, refusal, remaining, status_code, wants_json
from patternwatch_shared.approvals import Approval, Decision, LinkOutcome, LinkState
from patternwatch_shared.approvers import Approver
from patternwatch_shared.models import AlertMessage

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=timezone.utc)
DEADLINE = int(NOW.timestamp()) + 45 * 60
HOSTILE = '<script>alert("x")</script>&\'"'


def alert(**overrides) -> AlertMessage:
    fields = dict(alertId="AAPL#001700000000#head-and-shoulders", source="stream", severity="CRITICAL",
                  detectedAt="2026-12-01T13:58:00.000000Z", confidence=0.973, symbol="AAPL", pattern="head-and-shoulders",
                  startTimestamp=1_699_000_000, endTimestamp=1_700_000_000)
    fields.update(overrides)
    return AlertMessage(**fields)


def approval(status: str = "PENDING", decision: Decision | None = None, **alert_overrides) -> Approval:
    return Approval(alert_id="AAPL#001700000000#head-and-shoulders", alert=alert(**alert_overrides), status=status,
                    deadline=DEADLINE, decision=decision)


ADA = Approver("ada", "Ada Lovelace")
DECIDED_BY_ADA = Decision("APPROVED", "ada", "Ada Lovelace", "2026-12-01T14:05:00.000000Z", comment=None)


def html_of(outcome: LinkOutcome, *, deciding: bool = False, chart: Chart | None = None) -> tuple[int, str]:
    reply = answer(outcome, deciding=deciding, as_json=False, now=NOW, chart=chart)
    assert reply.content_type == "text/html; charset=utf-8"
    assert reply.headers == pages.SECURITY_HEADERS
    return reply.status_code, reply.body


def visible_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.split("</style>")[-1]))


def test_the_pending_page_has_the_alert_the_chart_and_a_form_that_posts_back_here():
    png = b"\x89PNG fake"
    code, page = html_of(LinkOutcome(LinkState.PENDING, approval=approval(), approver=ADA), chart=Chart(png=png))
    assert code == 200
    text = visible_text(page)
    for shown in ("Ada Lovelace", "AAPL", "head-and-shoulders", "97.3%", "CRITICAL", "2026-12-01 14:45 UTC", "in 45 minutes",
                  "2023-11-03 to 2023-11-14"):
        assert shown in text, shown
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page
    form = re.search(r"<form[^>]*>", page).group(0)
    assert form == '<form method="post">'  # no action: the same URL, token included
    assert re.findall(r'<button type="submit" name="action" value="(\w+)"', page) == ["approve", "reject"]
    assert 'maxlength="500"' in page


@pytest.mark.parametrize(
    ("chart", "said"),
    [(None, "The evidence chart is not available."), (Chart(missing_reason="The evidence chart for this alert is missing."), "missing")],
)
def test_without_a_chart_the_page_says_why(chart, said):
    _, page = html_of(LinkOutcome(LinkState.PENDING, approval=approval(), approver=ADA), chart=chart)
    assert said in page and "<img" not in page


def test_each_state_has_its_page_and_status():
    expired = Decision("EXPIRED", "platform", "the platform", "2026-12-01T14:45:03.000000Z")
    cases = [
        (LinkOutcome(LinkState.RECORDED, approval=approval("APPROVED", DECIDED_BY_ADA), approver=ADA, recorded_action="approve"), True,
         200, "Thank you, Ada Lovelace. You approved this alert at 2026-12-01 14:05 UTC."),
        (LinkOutcome(LinkState.RECORDED, approval=approval("REJECTED", DECIDED_BY_ADA), approver=ADA, recorded_action="reject"), True,
         200, "You rejected this alert"),
        (LinkOutcome(LinkState.RECORDED, approval=approval("APPROVED", DECIDED_BY_ADA), approver=ADA, recorded_action="approve", notified=False),
         True, 502, "submit again to resend it"),
        (LinkOutcome(LinkState.DECIDED, approval=approval("APPROVED", DECIDED_BY_ADA), approver=ADA), False,
         200, "This alert was already decided by Ada Lovelace at 2026-12-01 14:05 UTC: approved."),
        (LinkOutcome(LinkState.DECIDED, approval=approval("APPROVED", DECIDED_BY_ADA), approver=ADA), True, 409, "already decided by Ada Lovelace"),
        (LinkOutcome(LinkState.EXPIRED, approval=approval("EXPIRED", expired), approver=ADA), False,
         410, "expired at 2026-12-01 14:45 UTC and was rejected automatically by the platform"),
        (LinkOutcome(LinkState.EXPIRED, approval=approval(), approver=ADA), False, 410, "it is being rejected automatically"),
        (LinkOutcome(LinkState.UNKNOWN), False, 404, "This approval link is not known."),
        (LinkOutcome(LinkState.UNKNOWN), True, 404, "This approval link is not known."),
        (LinkOutcome(LinkState.REVOKED, approval=approval()), True, 403, "no longer on this environment's list of approvers"),
    ]
    for outcome, deciding, status, text in cases:
        code, page = html_of(outcome, deciding=deciding)
        assert (code, text in visible_text(page).replace("  ", " ")) == (status, True), (outcome.state, text, visible_text(page))
        assert "<form" not in page


def test_status_codes_follow_the_table_in_the_module():
    assert [status_code(LinkOutcome(state), deciding=False) for state in
            (LinkState.PENDING, LinkState.DECIDED, LinkState.EXPIRED, LinkState.UNKNOWN, LinkState.REVOKED)] == [200, 200, 410, 404, 403]
    assert [status_code(LinkOutcome(state), deciding=True) for state in
            (LinkState.RECORDED, LinkState.DECIDED, LinkState.EXPIRED, LinkState.UNKNOWN, LinkState.REVOKED)] == [200, 409, 410, 404, 403]


def test_every_value_shown_is_escaped():
    hostile_decision = Decision("REJECTED", "ada", HOSTILE, "2026-12-01T14:05:00.000000Z", comment=HOSTILE)
    hostile_approver = Approver("ada", HOSTILE)
    outcomes = [
        LinkOutcome(LinkState.PENDING, approval=approval(detectedAt=HOSTILE[:40], alertId=HOSTILE), approver=hostile_approver),
        LinkOutcome(LinkState.DECIDED, approval=approval("REJECTED", hostile_decision), approver=ADA),
        LinkOutcome(LinkState.RECORDED, approval=approval("REJECTED", hostile_decision), approver=hostile_approver, recorded_action="reject"),
    ]
    for outcome in outcomes:
        _, page = html_of(outcome, deciding=outcome.state is LinkState.RECORDED)
        assert "<script>" not in page
        assert "&lt;script&gt;" in page
        assert "alert(&quot;x&quot;)" in page or "alert(&quot;x" in page
    _, page = html_of(LinkOutcome(LinkState.PENDING, approval=approval(), approver=ADA), chart=Chart(missing_reason=HOSTILE))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<script>" not in refusal(HOSTILE, as_json=False).body


def test_the_headers_forbid_everything_the_page_does_not_use():
    csp = dict(part.strip().split(" ", 1) for part in pages.CONTENT_SECURITY_POLICY.split(";"))
    assert csp == {
        "default-src": "'none'", "img-src": "data:", "style-src": f"'sha256-{pages.STYLE_HASH}'",
        "form-action": "'self'", "frame-ancestors": "'none'", "base-uri": "'none'",
    }
    # The hash is of the exact style sheet the page inlines, so the browser applies it and nothing else.
    _, page = html_of(LinkOutcome(LinkState.UNKNOWN))
    (inline,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode() == pages.STYLE_HASH
    assert pages.SECURITY_HEADERS["Cache-Control"] == "no-store"
    assert pages.SECURITY_HEADERS["Referrer-Policy"] == "no-referrer"
    assert pages.SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert "<script" not in page and " on" not in re.sub(r">[^<]*<", "><", page)  # no scripts, no event handlers


def test_the_page_reads_well_on_a_phone():
    _, page = html_of(LinkOutcome(LinkState.PENDING, approval=approval(), approver=ADA))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "max-width: 44rem" in pages.STYLE and "width: 100%" in pages.STYLE
    assert page.startswith("<!doctype html><html lang=\"en\">")


@pytest.mark.parametrize(
    ("accept", "content_type", "json_wanted"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/x-www-form-urlencoded", False),
        ("text/html", "application/json", False),
        ("application/json", None, True),
        (None, "application/json; charset=utf-8", True),
        ("*/*", "application/json", True),
        (None, None, False),
        ("*/*", "application/x-www-form-urlencoded", False),
    ],
)
def test_browsers_get_html_and_api_clients_json(accept, content_type, json_wanted):
    assert wants_json(accept, content_type) is json_wanted


def test_json_answers_keep_the_api_contract():
    reply = answer(LinkOutcome(LinkState.RECORDED, approval=approval("APPROVED", DECIDED_BY_ADA), approver=ADA, recorded_action="approve"),
                   deciding=True, as_json=True, now=NOW)
    assert (reply.status_code, reply.content_type, reply.headers["Cache-Control"]) == (200, "application/json", "no-store")
    assert json.loads(reply.body) == {"status": "APPROVED", "alertId": "AAPL#001700000000#head-and-shoulders", "notified": True,
                                      "decidedBy": "ada", "decidedByName": "Ada Lovelace", "decidedAt": "2026-12-01T14:05:00.000000Z"}
    pending = json.loads(answer(LinkOutcome(LinkState.PENDING, approval=approval(), approver=ADA), deciding=False, as_json=True, now=NOW).body)
    assert (pending["status"], pending["deadline"], pending["alert"]["symbol"]) == ("PENDING", DEADLINE, "AAPL")
    assert json.loads(refusal("bad", as_json=True).body) == {"message": "bad"}


@pytest.mark.parametrize(
    ("seconds", "said"), [(0, "in less than a minute"), (59, "in less than a minute"), (60, "in 1 minute"), (45 * 60, "in 45 minutes"),
                          (3 * 3600, "in 3 hours"), (-30, "in less than a minute")],
)
def test_time_left_in_words(seconds, said):
    assert remaining(int(NOW.timestamp()) + seconds, NOW) == said


def test_a_threshold_alert_page_names_what_it_is_about():
    threshold = Approval(alert_id="threshold#x", alert=AlertMessage(alertId="threshold#x", source="threshold", severity="CRITICAL",
                                                                    detectedAt="2026-12-01T13:58:00Z", confidence=0.99),
                         status="PENDING", deadline=DEADLINE, decision=None)
    _, page = html_of(LinkOutcome(LinkState.PENDING, approval=threshold, approver=ADA), chart=Chart(missing_reason="Threshold alerts have no chart"))
    assert "all symbols" in page and "threshold breach" in page and "Threshold alerts have no chart" in page
    assert pages.iso_time("not a time") == "not a time"
