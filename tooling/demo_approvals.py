"""The demo's approval step: a person approves one CRITICAL alert on its page, another stays pending.

Each approver of `local` (envs/local.json) gets an inbox queue that receives what their mailbox would:
it is subscribed with the filter policy of their own SNS subscription. The step then:
1. counts the requests each approver received (one per CRITICAL alert each);
2. opens the first approver's link for one pending alert in headless Chromium, takes a screenshot
   (demo-output/approval-page.png), approves with a comment, and opens the link again ("already decided
   by ...");
3. keeps one other alert pending and prints its link, which works in any browser until its deadline
   (the planted PENDING_SYMBOL series exists for this; its request is put back in the inbox, so a later
   run can show it again while it is still pending);
4. reports the approvals the platform auto-rejected at their deadline (ApprovalsProcessed, auto-reject).

Before that, `decisions_step` decides the CRITICAL alerts of three more planted series every other way an
approval can end, so the dashboard's "Approvals processed" has each of its lines after a demo: one rejected
on its page, one nobody answers (the platform clock moves past its deadline and ApprovalExpiry rejects
it), one clicked too late (ApprovalProcessor rejects it on the click). The demo streams the series it
approves and keeps pending only after that, so the clock's move cannot expire them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

from patternwatch_shared.names.functions import APPROVAL_EXPIRY, APPROVAL_PROCESSOR
from patternwatch_shared.names.messages import ACTION_AUTO_REJECT, APPROVAL_STATUS_PENDING
from patternwatch_shared.names.metrics import DIMENSION_ACTION, DIMENSION_SERVICE, METRIC_APPROVALS_PROCESSED, METRICS_NAMESPACE

from .approval_links import approval_requests, approve_in_browser, approver_inbox
from .local_aws import admin

# A second planted series, so that one CRITICAL alert can stay pending while the other is approved.
PENDING_SYMBOL = "SYNTHB"
PENDING_PATTERN = "inverse-head-and-shoulders"
# Planted series whose CRITICAL alerts decisions_step decides: rejected on the page, left to expire, clicked late.
REJECTED_SYMBOL = "SYNTHR"
EXPIRED_SYMBOL = "SYNTHX"
LATE_SYMBOL = "SYNTHL"
DECIDED_SYMBOLS = (REJECTED_SYMBOL, EXPIRED_SYMBOL, LATE_SYMBOL)
REJECT_COMMENT = "Checked the chart: rejected (PatternWatch demo)"
# The first bar of every planted series: 2021-01-04, daily.
PLANTED_START = int(datetime(2021, 1, 4, tzinfo=timezone.utc).timestamp())
INBOX_PREFIX = "DemoApprovalInbox"
SCREENSHOT = "approval-page.png"
DEMO_COMMENT = "Checked the chart: approved (PatternWatch demo)"


def planted_series(symbol: str, pattern: str = "head-and-shoulders", *, seed: int = 7, noise: float = 0.001) -> list[dict]:
    """A seeded synthetic series with a planted pattern as stream records, daily from 2021-01-04, priced near 10,000."""
    from pattern_engine.synthetic import planted_bar_records

    return planted_bar_records(symbol, pattern, seed=seed, noise=noise, start=PLANTED_START, scale=100)


def pending_series_bars() -> list[dict]:
    """The seeded synthetic series whose approval the demo leaves pending."""
    return planted_series(PENDING_SYMBOL, PENDING_PATTERN)


def decided_series_bars() -> list[dict]:
    """The series decisions_step decides: the same clean head-and-shoulders (CRITICAL, 0.996) under three symbols."""
    return [bar for symbol in DECIDED_SYMBOLS for bar in planted_series(symbol)]


def approver_inboxes(session, endpoint: str, topic_arn: str, approver_ids: list[str], *, prefix: str = INBOX_PREFIX,
                     suffix: str = "local") -> dict[str, str]:
    """One inbox queue per approver, receiving exactly that approver's requests."""
    sqs, sns = session.client("sqs", endpoint_url=endpoint), session.client("sns", endpoint_url=endpoint)
    return {a: approver_inbox(sqs, sns, topic_arn, a, f"{prefix}-{a}-{suffix}") for a in approver_ids}


@dataclass
class ApprovalReport:
    lines: list[str] = field(default_factory=list)
    decided_tokens: list[str] = field(default_factory=list)  # links decided by this step (they must appear nowhere)
    pending_url: str | None = None
    screenshot: Path | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def token_of(request: dict) -> str:
    return request["approveUrl"].rstrip("/").rsplit("/", 1)[-1]


def api_path(url: str) -> str:
    """`<emulator>/restapis/<id>/<stage>/_user_request_/approve/<token>` -> `/approve/<token>`."""
    return url.split("/_user_request_", 1)[1]


def link_status(runner, request: dict) -> str | None:
    """What the link says now (its approval's status), asked as an API client; None if it is unknown."""
    answer = runner.request("GET", api_path(request["approveUrl"]), headers={"Accept": "application/json"})
    return json.loads(answer["body"]).get("status") if answer["statusCode"] in (200, 410) else None


def approval_step(session, endpoint: str, runner, inboxes: dict[str, str], *, output_dir: Path,
                  keep_pending_symbol: str = PENDING_SYMBOL) -> ApprovalReport:
    sqs = session.client("sqs", endpoint_url=endpoint)
    report = ApprovalReport()
    received = {approver: approval_requests(sqs, url) for approver, url in inboxes.items()}
    report.lines.append("approval requests in the approvers' inboxes: " + ", ".join(f"{a} {len(r)}" for a, r in received.items())
                        + " (each approver's own links, through their own filtered subscription)")
    approver, inbox = next(iter(inboxes.items()))
    pending = [r for r in received[approver] if link_status(runner, r) == APPROVAL_STATUS_PENDING]
    keep = next((r for r in reversed(pending) if r["alert"].get("symbol") == keep_pending_symbol), pending[-1] if pending else None)
    to_approve = next((r for r in pending if r is not keep), None)
    if to_approve is not None:
        alert = to_approve["alert"]
        screenshot = output_dir / SCREENSHOT
        seen = approve_in_browser(to_approve["approveUrl"], [screenshot], comment=DEMO_COMMENT)
        report.decided_tokens.append(token_of(to_approve))
        report.screenshot = screenshot
        report.lines.append(
            f"approval page ({screenshot}): {to_approve['approverName']} approved {alert['severity']} {alert.get('pattern')} on "
            f"{alert.get('symbol')} in Chromium -> HTTP {seen.confirmation_status} \"{seen.confirmation}\"; "
            f"the same link again -> HTTP {seen.revisit_status} \"{seen.revisit}\""
        )
    else:
        report.lines.append("approval page: no second pending approval to approve in the browser this run "
                            "(CRITICAL alerts are raised once per pattern; `make down` and `make demo` start afresh)")
    if keep is not None:
        sqs.send_message(QueueUrl=inbox, MessageBody=json.dumps(keep))  # shown again by a later run while it is pending
        deadline = datetime.fromtimestamp(keep["expiresAt"], timezone.utc).strftime("%H:%M UTC")
        report.pending_url = keep["approveUrl"]
        report.lines.append(f"pending approval of {keep['alert'].get('pattern')} on {keep['alert'].get('symbol')} for "
                            f"{keep['approverName']}, open it in a browser until {deadline} (platform clock): {keep['approveUrl']}")
    else:
        report.lines.append("pending approval: none left (all decided or expired)")
    report.lines.append(auto_rejected(session, endpoint))
    return report


def decisions_step(session, endpoint: str, runner, inboxes: dict[str, str], *, expiry_seconds: int) -> list[str]:
    """Decide the DECIDED_SYMBOLS' pending approvals as the first approver: reject one on its page, then move the
    platform clock past the deadline (only if one is still pending), click the late one's link, and let the expiry
    timers run. Every request read is put back in the inbox, so approval_step still counts them. Returns summary lines."""
    sqs = session.client("sqs", endpoint_url=endpoint)
    inbox = next(iter(inboxes.values()))
    received = approval_requests(sqs, inbox)
    for request in received:
        sqs.send_message(QueueUrl=inbox, MessageBody=json.dumps(request))
    pending = {r["alert"].get("symbol"): r for r in received
               if r["alert"].get("symbol") in DECIDED_SYMBOLS and link_status(runner, r) == APPROVAL_STATUS_PENDING}
    lines = []
    rejected = pending.get(REJECTED_SYMBOL)
    if rejected is not None:
        answer = runner.request("POST", api_path(rejected["approveUrl"]), body=urlencode({"action": "reject", "comment": REJECT_COMMENT}),
                                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        lines.append(f"rejected on its page: {rejected['alert'].get('pattern')} on {REJECTED_SYMBOL} by {rejected['approverName']} "
                     f"-> HTTP {answer['statusCode']} {json.loads(answer['body']).get('status')}")
    if EXPIRED_SYMBOL in pending or LATE_SYMBOL in pending:
        admin.advance_clock(endpoint, expiry_seconds + 60)
        late = pending.get(LATE_SYMBOL)
        if late is not None:
            answer = runner.request("POST", api_path(late["approveUrl"]), body={"action": "approve"}, headers={"Accept": "application/json"})
            lines.append(f"clicked after its deadline: {late['alert'].get('pattern')} on {LATE_SYMBOL} -> HTTP {answer['statusCode']} "
                         f"{json.loads(answer['body']).get('status')} (the platform rejects it on the click)")
        runner.drain()  # the expiry timers are due now: ApprovalExpiry rejects what nobody answered
        if EXPIRED_SYMBOL in pending:
            lines.append(f"left unanswered: {pending[EXPIRED_SYMBOL]['alert'].get('pattern')} on {EXPIRED_SYMBOL} -> "
                         f"{link_status(runner, pending[EXPIRED_SYMBOL])} at its deadline")
        lines.append(f"platform clock moved {expiry_seconds + 60} s ahead for the deadlines (no waiting); `make down` resets it")
    return lines


def auto_rejected(session, endpoint: str) -> str:
    """Approvals the platform rejected at their deadline (the expiry timer) or on a link opened too late."""
    admin.flush_metrics(endpoint)
    now = datetime.fromtimestamp(admin.platform_clock(endpoint)["now"], timezone.utc)
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint)
    counts = {}
    for label, service in (("at the deadline", APPROVAL_EXPIRY.service_name), ("on a late click", APPROVAL_PROCESSOR.service_name)):
        points = cloudwatch.get_metric_statistics(
            Namespace=METRICS_NAMESPACE, MetricName=METRIC_APPROVALS_PROCESSED, StartTime=now - timedelta(days=1), EndTime=now + timedelta(minutes=1),
            Period=86_400 + 60, Statistics=["Sum"],
            Dimensions=[{"Name": DIMENSION_SERVICE, "Value": service}, {"Name": DIMENSION_ACTION, "Value": ACTION_AUTO_REJECT}],
        )["Datapoints"]
        counts[label] = int(sum(p["Sum"] for p in points))
    return (f"approvals auto-rejected in the last day: {sum(counts.values())} ("
            + ", ".join(f"{n} {label}" for label, n in counts.items())
            + "); an approval nobody answers is rejected by the platform at its deadline, 1 h after it opens")
