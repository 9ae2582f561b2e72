"""Issue 11's "done when": a person approves a CRITICAL alert on its page in a real browser (headless Chromium).

The link comes from a real approval request: the alert processor publishes it to AlertApprovalRequests,
and it reaches an inbox subscribed with the approver's own filter policy, as it reaches their mailbox.
"""
from __future__ import annotations

import base64
import time

import pytest
from patternwatch_shared.evidence import evidence_keys

from integration_helpers import as_records, planted_bars, put_records
from tooling import demo_approvals
from tooling.approval_links import approval_requests, approve_in_browser

pytestmark = pytest.mark.integration


def test_an_approver_approves_on_the_page_in_chromium_and_the_link_then_says_who_decided(
    deployed, runner, clients, session, endpoint, tmp_path
):
    inboxes = demo_approvals.approver_inboxes(session, endpoint, deployed["approval_requests_topic_arn"], ["ada", "grace"],
                                              prefix="ItBrowserInbox")
    for url in inboxes.values():
        approval_requests(clients.sqs, url)
    # A planted head-and-shoulders on the stream: the consumer, the workflow and the alert processor raise
    # the CRITICAL alert, write its evidence (the chart) and send each approver their link.
    symbol = f"ITB{time.time_ns() % 10**8}"  # its own series: a reused emulator does not alert a stored pattern twice
    put_records(clients, deployed["market_data_stream_name"], as_records(planted_bars(symbol)), symbol)
    runner.drain()
    (request,) = [r for r in approval_requests(clients.sqs, inboxes["ada"]) if r["alert"]["symbol"] == symbol]
    (other,) = [r for r in approval_requests(clients.sqs, inboxes["grace"]) if r["alert"]["symbol"] == symbol]
    alert = request["alert"]
    assert (request["approver"], other["approver"], other["alertId"]) == ("ada", "grace", request["alertId"])
    # The page shows the evidence chart the alert processor stored, inline (no stand-in: the real one).
    chart = session.client("s3", endpoint_url=endpoint).get_object(
        Bucket=deployed["data_bucket_name"], Key=evidence_keys(request["alertId"]).chart
    )["Body"].read()
    page = runner.request("GET", demo_approvals.api_path(request["approveUrl"]), headers={"Accept": "text/html"})
    assert f"data:image/png;base64,{base64.b64encode(chart).decode()}" in page["body"]

    screenshot = tmp_path / "approval-page.png"
    seen = approve_in_browser(request["approveUrl"], [screenshot], comment="Neckline broken on volume: approve")

    assert seen.page_status == 200
    assert seen.page_heading == f"Approve {alert['pattern']} on {symbol}?"
    assert seen.chart_shown, "the evidence chart did not load on the page"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
    assert seen.confirmation_status == 200
    assert seen.confirmation.startswith("Approved: Thank you, Ada Lovelace. You approved this alert at ")
    assert seen.revisit_status == 200
    assert seen.revisit.startswith("Already decided: This alert was already decided by Ada Lovelace at ")
    item = clients.dynamodb.get_item(TableName=deployed["approval_tracking_table_name"],
                                     Key={"tokenHash": {"S": f"approval#{request['alertId']}"}}, ConsistentRead=True)["Item"]
    assert (item["status"]["S"], item["decidedBy"]["S"], item["comment"]["S"]) == ("APPROVED", "ada", "Neckline broken on volume: approve")
    assert item["sourceIp"]["S"] == "127.0.0.1" and item["userAgent"]["S"] == seen.user_agent and "Chrome" in seen.user_agent
    # The other approver's link now says who decided, and decides nothing.
    theirs = runner.request("GET", demo_approvals.api_path(other["approveUrl"]), headers={"Accept": "text/html"})
    assert theirs["statusCode"] == 200 and "already decided by Ada Lovelace" in theirs["body"]
