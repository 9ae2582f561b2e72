"""Issue 11's "done when": a person approves a CRITICAL alert on its page in a real browser (headless Chromium).

The link comes from a real approval request: the alert processor publishes it to AlertApprovalRequests,
and it reaches an inbox subscribed with the approver's own filter policy, as it reaches their mailbox.
"""
from __future__ import annotations

import io
import json
import time
from datetime import datetime, timezone

import pytest
from patternwatch_shared.evidence import evidence_keys

from integration_helpers import planted_bars
from tooling import demo_approvals
from tooling.approval_links import approval_requests, approve_in_browser

pytestmark = pytest.mark.integration


def chart_png(symbol: str) -> bytes:
    """A price chart of the planted series, standing in for the evidence chart where no evidence writer has run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = planted_bars(symbol)
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.plot([b["timestamp"] for b in bars], [b["close"] for b in bars], color="0.3")
    axis.set_title(f"{symbol}: close (evidence)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def test_an_approver_approves_on_the_page_in_chromium_and_the_link_then_says_who_decided(
    deployed, runner, clients, session, endpoint, tmp_path
):
    inboxes = demo_approvals.approver_inboxes(session, endpoint, deployed["approval_requests_topic_arn"], ["ada", "grace"],
                                              prefix="ItBrowserInbox")
    for url in inboxes.values():
        approval_requests(clients.sqs, url)
    alert = {
        "alertId": f"ITBROWSER#{time.time_ns()}#head-and-shoulders", "source": "stream", "severity": "CRITICAL",
        "detectedAt": datetime.now(timezone.utc).isoformat(), "confidence": 0.97, "symbol": "ITBROWSER",
        "pattern": "head-and-shoulders", "startTimestamp": 1_609_718_400, "endTimestamp": 1_619_000_000,
    }
    clients.sqs.send_message(QueueUrl=deployed["alert_queue_url"], MessageBody=json.dumps(alert))
    runner.drain()
    (request,) = approval_requests(clients.sqs, inboxes["ada"])
    (other,) = approval_requests(clients.sqs, inboxes["grace"])
    assert (request["approver"], other["approver"], request["alertId"]) == ("ada", "grace", alert["alertId"])
    s3 = session.client("s3", endpoint_url=endpoint)
    chart = evidence_keys(alert["alertId"]).chart
    if "Contents" not in s3.list_objects_v2(Bucket=deployed["data_bucket_name"], Prefix=chart):
        s3.put_object(Bucket=deployed["data_bucket_name"], Key=chart, Body=chart_png("ITBROWSER"), ContentType="image/png")

    screenshot = tmp_path / "approval-page.png"
    seen = approve_in_browser(request["approveUrl"], [screenshot], comment="Neckline broken on volume: approve")

    assert seen.page_status == 200
    assert seen.page_heading == "Approve head-and-shoulders on ITBROWSER?"
    assert seen.chart_shown, "the evidence chart did not load on the page"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
    assert seen.confirmation_status == 200
    assert seen.confirmation.startswith("Approved: Thank you, Ada Lovelace. You approved this alert at ")
    assert seen.revisit_status == 200
    assert seen.revisit.startswith("Already decided: This alert was already decided by Ada Lovelace at ")
    item = clients.dynamodb.get_item(TableName=deployed["approval_tracking_table_name"],
                                     Key={"tokenHash": {"S": f"approval#{alert['alertId']}"}}, ConsistentRead=True)["Item"]
    assert (item["status"]["S"], item["decidedBy"]["S"], item["comment"]["S"]) == ("APPROVED", "ada", "Neckline broken on volume: approve")
    assert item["sourceIp"]["S"] == "127.0.0.1" and item["userAgent"]["S"] == seen.user_agent and "Chrome" in seen.user_agent
    # The other approver's link now says who decided, and decides nothing.
    theirs = runner.request("GET", demo_approvals.api_path(other["approveUrl"]), headers={"Accept": "text/html"})
    assert theirs["statusCode"] == 200 and "already decided by Ada Lovelace" in theirs["body"]
