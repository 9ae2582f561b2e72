"""The approval page and its answers: pure rendering, no AWS, no I/O (tests/lambda/functions/test_approval_pages.py).

One link, `/approve/{token}`, serves a person in a browser and a script alike:

| what the link finds                  | GET (shows)          | POST (decides)                          |
|--------------------------------------|----------------------|-----------------------------------------|
| a pending approval                   | 200 the decision form | 200 the recorded decision (502: recorded, notification failed; submit again to resend) |
| already decided (by anyone)          | 200 "already decided by <name> at <time>" | 409 the same notice           |
| past its deadline                    | 410 expired          | 410 expired (a still-pending one is auto-rejected now) |
| a link that was never issued         | 404                  | 404                                     |
| a link whose approver was removed    | 403                  | 403                                     |
| not a token / a form we cannot read  | 400                  | 400                                     |

A GET of a decided approval is 200: the page shows the approval's state, which is what was asked for
(and a mail scanner's preview is no error). A POST that comes second conflicts with the recorded
decision, hence 409, as the JSON API always answered.

Browsers get HTML (the page works without JavaScript: a plain form); API clients get JSON when they
send `Accept: application/json` or a JSON body. Every value shown is escaped, the chart is inline as
a data: URI, and the headers forbid everything the page does not use (`SECURITY_HEADERS`).
"""
from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from patternwatch_shared import strict_json
from patternwatch_shared.approvals import Approval, LinkOutcome, LinkState
from patternwatch_shared.names.messages import (
    ACTION_APPROVE, ACTION_AUTO_REJECT, ACTION_REJECT, APPROVAL_STATUS_APPROVED, APPROVAL_STATUS_EXPIRED,
    APPROVAL_STATUS_REJECTED, MAX_APPROVAL_COMMENT_CHARS,
)

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"

STYLE = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --ok: #1f7a3f; --no: #a3262a; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f4f6f9; }
main { max-width: 44rem; margin: 0 auto; padding: 1rem; background: #fff; min-height: 100vh; }
h1 { font-size: 1.4rem; margin: 0.5rem 0 1rem; }
.notice { padding: 0.75rem 1rem; border-radius: 6px; background: #eef2f7; border-left: 4px solid var(--muted); }
.notice.ok { border-color: var(--ok); background: #eaf6ee; }
.notice.no { border-color: var(--no); background: #fbeceb; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 1rem 0; }
dt { color: var(--muted); }
dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
figure { margin: 1rem 0; }
figure img { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption, .muted { color: var(--muted); font-size: 0.9rem; }
label { display: block; font-weight: 600; margin: 1rem 0 0.25rem; }
textarea { width: 100%; font: inherit; padding: 0.5rem; border: 1px solid var(--line); border-radius: 4px; }
.actions { display: flex; gap: 0.75rem; margin: 1rem 0; }
button { flex: 1; font: inherit; font-weight: 700; padding: 0.9rem; border: 0; border-radius: 6px; color: #fff; cursor: pointer; }
button.approve { background: var(--ok); }
button.reject { background: var(--no); }
"""
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode("ascii")
# Nothing loads from anywhere: no scripts, no fonts, no frames; images only inline, styles only this sheet,
# the form posts only back here.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; img-src data:; style-src 'sha256-{STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",  # a token's page must not sit in any cache
    "Referrer-Policy": "no-referrer",  # and its URL must not leave in a Referer header
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
}

VERBS = {ACTION_APPROVE: "approved", ACTION_REJECT: "rejected", ACTION_AUTO_REJECT: "rejected automatically"}
STATUS_WORDS = {APPROVAL_STATUS_APPROVED: "approved", APPROVAL_STATUS_REJECTED: "rejected", APPROVAL_STATUS_EXPIRED: "rejected automatically"}


@dataclass(frozen=True)
class Chart:
    """The evidence chart for the page: PNG bytes, or why there is none."""

    png: bytes | None = None
    missing_reason: str = "The evidence chart is not available."


@dataclass(frozen=True)
class Answer:
    status_code: int
    content_type: str
    body: str
    headers: dict[str, str]


# --- status codes ---------------------------------------------------------------------------------

VIEW_STATUS = {
    LinkState.PENDING: 200, LinkState.DECIDED: 200, LinkState.EXPIRED: 410, LinkState.UNKNOWN: 404, LinkState.REVOKED: 403,
}
DECIDE_STATUS = {
    LinkState.RECORDED: 200, LinkState.DECIDED: 409, LinkState.EXPIRED: 410, LinkState.UNKNOWN: 404, LinkState.REVOKED: 403,
}


def status_code(outcome: LinkOutcome, *, deciding: bool) -> int:
    if deciding:
        return 502 if outcome.state is LinkState.RECORDED and not outcome.notified else DECIDE_STATUS[outcome.state]
    return VIEW_STATUS[outcome.state]


# --- content negotiation --------------------------------------------------------------------------

def wants_json(accept: str | None, content_type: str | None) -> bool:
    """JSON for API clients (Accept: application/json, or a JSON body); HTML for browsers and anyone else."""
    accept = (accept or "").lower()
    if "text/html" in accept:
        return False
    if "application/json" in accept:
        return True
    return media_type(content_type) == JSON_CONTENT_TYPE


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


# --- answers --------------------------------------------------------------------------------------

def answer(outcome: LinkOutcome, *, deciding: bool, as_json: bool, now: datetime, chart: Chart | None = None) -> Answer:
    code = status_code(outcome, deciding=deciding)
    if as_json:
        return json_answer(code, json_body(outcome, deciding=deciding))
    return html_answer(code, *page(outcome, deciding=deciding, now=now, chart=chart))


def refusal(message: str, *, as_json: bool, status: int = 400) -> Answer:
    """A request we cannot act on (not a token, a form we cannot read)."""
    if as_json:
        return json_answer(status, {"message": message})
    return html_answer(status, "Not an approval request", notice(message, "no"))


def json_answer(status: int, body: dict[str, Any]) -> Answer:
    return Answer(status, JSON_CONTENT_TYPE, strict_json.dumps(body), {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def html_answer(status: int, title: str, content: str) -> Answer:
    return Answer(status, HTML_CONTENT_TYPE, document(title, content), dict(SECURITY_HEADERS))


def json_body(outcome: LinkOutcome, *, deciding: bool) -> dict[str, Any]:
    state, approval = outcome.state, outcome.approval
    if state is LinkState.UNKNOWN:
        return {"message": "unknown approval token"}
    if state is LinkState.REVOKED:
        return {"message": "this link's approver is no longer an approver"}
    assert approval is not None
    body: dict[str, Any] = {"status": approval.status, "alertId": approval.alert_id}
    if approval.decision is not None:
        decision = approval.decision
        body.update(decidedBy=decision.decided_by, decidedByName=decision.decided_by_name, decidedAt=decision.decided_at)
    if state is LinkState.RECORDED:
        body["notified"] = outcome.notified
        if not outcome.notified:
            body["message"] = "decision recorded; notification failed, repeat the request to resend it"
    elif state is LinkState.DECIDED:
        body["message"] = "approval already decided"
    elif state is LinkState.EXPIRED:
        body["message"] = "approval expired and was auto-rejected" if approval.status == APPROVAL_STATUS_EXPIRED else "approval expired"
    else:  # PENDING
        body.update(alert=approval.alert.model_dump(exclude_none=True), deadline=approval.deadline)
    return body


def page(outcome: LinkOutcome, *, deciding: bool, now: datetime, chart: Chart | None) -> tuple[str, str]:
    """(title, the HTML inside <main>) for one outcome."""
    state, approval, approver = outcome.state, outcome.approval, outcome.approver
    if state is LinkState.UNKNOWN:
        return "Unknown approval link", notice(
            "This approval link is not known. It may be mistyped, or so old that its record is gone.", "no"
        )
    if state is LinkState.REVOKED:
        return "Link no longer valid", notice(
            "This link belonged to an approver who is no longer on this environment's list of approvers, "
            "so it cannot decide anything.", "no"
        )
    assert approval is not None
    details = alert_details(approval, now=now)
    decision = approval.decision
    if state is LinkState.PENDING:
        assert approver is not None
        intro = notice(
            f"{approver.name}, this CRITICAL alert needs your decision by {clock_time(approval.deadline)} "
            f"({remaining(approval.deadline, now)}). Without a decision it is rejected automatically.", ""
        )
        return f"Approve {approval.alert.pattern or 'alert'} on {approval.alert.symbol or 'threshold'}?", (
            intro + details + evidence(approval, chart) + decision_form()
        )
    if state is LinkState.RECORDED:
        assert decision is not None and approver is not None
        verb = VERBS[outcome.recorded_action or ACTION_APPROVE]
        text = f"Thank you, {approver.name}. You {verb} this alert at {iso_time(decision.decided_at)}."
        if not outcome.notified:
            text += " The decision is recorded, but its notification could not be sent: submit again to resend it."
        return verb.capitalize(), notice(text, "ok" if outcome.recorded_action == ACTION_APPROVE else "no") + details
    if state is LinkState.EXPIRED:
        if decision is None:  # past the deadline, the timer has not run yet
            text = f"This approval expired at {clock_time(approval.deadline)}; it is being rejected automatically."
        else:
            text = f"This approval expired at {clock_time(approval.deadline)} and was rejected automatically by {decision.decided_by_name}."
        return "Approval expired", notice(text, "no") + details
    assert decision is not None  # DECIDED
    text = (
        f"This alert was already decided by {decision.decided_by_name} at {iso_time(decision.decided_at)}: "
        f"{STATUS_WORDS[decision.status]}."
    )
    if decision.comment:
        text += f" Their comment: \u201c{decision.comment}\u201d"
    return "Already decided", notice(text, "") + details


# --- pieces ---------------------------------------------------------------------------------------

def e(value: Any) -> str:
    """Escaped for HTML text and attribute values alike."""
    return html.escape(str(value), quote=True)


def notice(text: str, tone: str) -> str:
    return f'<p class="notice {tone}">{e(text)}</p>' if tone else f'<p class="notice">{e(text)}</p>'


def alert_details(approval: Approval, *, now: datetime) -> str:
    alert = approval.alert
    rows = [
        ("Symbol", alert.symbol or "all symbols"),
        ("Pattern", alert.pattern or "threshold breach"),
        ("Confidence", f"{alert.confidence:.1%}"),
        ("Severity", alert.severity),
        ("Detected", iso_time(alert.detectedAt)),
    ]
    if alert.startTimestamp is not None and alert.endTimestamp is not None:
        rows.append(("Pattern window", f"{day(alert.startTimestamp)} to {day(alert.endTimestamp)}"))
    rows.append(("Alert", alert.alertId))
    return "<dl>" + "".join(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>" for label, value in rows) + "</dl>"


def evidence(approval: Approval, chart: Chart | None) -> str:
    chart = chart or Chart()
    if chart.png is None:
        return f'<p class="muted">{e(chart.missing_reason)}</p>'
    alert = approval.alert
    alt = f"Price chart of {alert.symbol or 'the market'} with the {alert.pattern or 'alert'} marked"
    data = base64.b64encode(chart.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{e(alt)}">'
        f"<figcaption>{e(alt)} (the evidence the alert was raised on)</figcaption></figure>"
    )


def decision_form() -> str:
    # No action attribute: the form posts back to this very URL, token included, wherever the API is served.
    return (
        '<form method="post">'
        f'<label for="comment">Comment (optional)</label>'
        f'<textarea id="comment" name="comment" rows="3" maxlength="{MAX_APPROVAL_COMMENT_CHARS}"></textarea>'
        '<div class="actions">'
        f'<button type="submit" name="action" value="{ACTION_APPROVE}" class="approve">Approve</button>'
        f'<button type="submit" name="action" value="{ACTION_REJECT}" class="reject">Reject</button>'
        "</div></form>"
        '<p class="muted">This link is yours alone: the decision is recorded under your name. '
        "The first approver to decide settles the alert.</p>"
    )


def document(title: str, content: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{e(title)} \u2013 PatternWatch</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{e(title)}</h1>{content}</main></body></html>"
    )


def clock_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def iso_time(text: str) -> str:
    """The ISO 8601 time the table records, shown like clock_time; anything unparsable as it is."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return text


def day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d")


def remaining(deadline: int, now: datetime) -> str:
    minutes = max(0, (deadline - int(now.timestamp())) // 60)
    if minutes >= 120:
        return f"in {minutes // 60} hours"
    return "in less than a minute" if minutes == 0 else f"in {minutes} minute{'s' if minutes != 1 else ''}"
