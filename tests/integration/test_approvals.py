"""Approvals on the deployed platform: who gets which link, expiry on the platform clock, nothing leaked."""
from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from patternwatch_shared.names.messages import SEVERITY_CRITICAL
from patternwatch_shared.names.metrics import METRIC_APPROVALS_PROCESSED, METRICS_NAMESPACE

from integration_helpers import drain, drain_raw, queue_depth, subscribe_inbox
from tooling import demo_approvals, emulator
from tooling.approval_links import approval_requests
from tooling.local_aws import admin

pytestmark = pytest.mark.integration
APPROVERS = ("ada", "grace")  # envs/local.json


def critical_alert(symbol: str) -> dict:
    now = datetime.now(timezone.utc)
    return {
        "alertId": f"{symbol}#{time.time_ns()}#head-and-shoulders", "source": "stream", "severity": SEVERITY_CRITICAL,
        "detectedAt": now.isoformat(), "confidence": 0.97, "symbol": symbol, "pattern": "head-and-shoulders",
        "startTimestamp": 1_700_000_000, "endTimestamp": 1_700_864_000,
    }


@pytest.fixture(scope="module")
def inboxes(session, endpoint, deployed, clients) -> dict[str, str]:
    """Each approver's inbox: subscribed with the filter policy of their own (Terraform-made) e-mail subscription."""
    inboxes = demo_approvals.approver_inboxes(session, endpoint, deployed["approval_requests_topic_arn"], list(APPROVERS),
                                              prefix="ItApproverInbox")
    for url in inboxes.values():
        approval_requests(clients.sqs, url)  # empty: a reused emulator may hold requests of an earlier run
    return inboxes


@pytest.fixture
def platform_clock(endpoint):
    """Lets a test move the platform clock; puts it back afterwards, so later tests see real time again."""
    yield lambda seconds: admin.advance_clock(endpoint, seconds)
    admin.reset_clock(endpoint)


def open_approval(clients, runner, deployed, inboxes, symbol: str) -> tuple[dict, dict[str, dict]]:
    """Queue a CRITICAL alert and let the platform open its approval; the alert and each approver's request."""
    alert = critical_alert(symbol)
    clients.sqs.send_message(QueueUrl=deployed["alert_queue_url"], MessageBody=json.dumps(alert))
    runner.drain()
    requests = {approver: [r for r in approval_requests(clients.sqs, url) if r["alertId"] == alert["alertId"]]
                for approver, url in inboxes.items()}
    assert {a: len(r) for a, r in requests.items()} == {a: 1 for a in APPROVERS}, requests
    return alert, {a: r[0] for a, r in requests.items()}


def path_of(request: dict) -> str:
    return demo_approvals.api_path(request["approveUrl"])


def approval_item(clients, deployed, alert_id: str) -> dict:
    return clients.dynamodb.get_item(TableName=deployed["approval_tracking_table_name"],
                                     Key={"tokenHash": {"S": f"approval#{alert_id}"}}, ConsistentRead=True)["Item"]


def test_each_approver_receives_only_their_own_link(deployed, runner, clients, inboxes):
    alert, requests = open_approval(clients, runner, deployed, inboxes, "ITOWN")
    assert {a: (r["approver"], r["approverName"]) for a, r in requests.items()} == {
        "ada": ("ada", "Ada Lovelace"), "grace": ("grace", "Grace Hopper")}
    assert requests["ada"]["approveUrl"] != requests["grace"]["approveUrl"]
    links = [clients.dynamodb.get_item(TableName=deployed["approval_tracking_table_name"], Key={
        "tokenHash": {"S": hashlib.sha256(demo_approvals.token_of(r).encode()).hexdigest()}})["Item"] for r in requests.values()]
    assert sorted(link["approver"]["S"] for link in links) == ["ada", "grace"]
    assert {link["alertId"]["S"] for link in links} == {alert["alertId"]}


def test_the_page_and_its_form_work_without_an_api_key_and_the_key_guards_the_data_routes(deployed, runner, clients, inboxes):
    alert, requests = open_approval(clients, runner, deployed, inboxes, "ITPAGE")
    page = runner.request("GET", path_of(requests["grace"]), headers={"Accept": "text/html", "Content-Type": ""})
    assert page["statusCode"] == 200 and "Grace Hopper" in page["body"] and '<form method="post">' in page["body"]
    assert page["headers"]["Content-Security-Policy"].startswith("default-src 'none'")
    assert page["headers"]["Cache-Control"] == "no-store"
    form = runner.request("POST", path_of(requests["grace"]), body=urlencode({"action": "reject", "comment": "not convinced"}),
                          headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html", "User-Agent": "ItBrowser/1.0"})
    assert form["statusCode"] == 200 and "You rejected this alert" in form["body"]
    item = approval_item(clients, deployed, alert["alertId"])
    assert (item["status"]["S"], item["decidedBy"]["S"], item["comment"]["S"]) == ("REJECTED", "grace", "not convinced")
    assert item["sourceIp"]["S"] == "127.0.0.1" and item["userAgent"]["S"] == "ItBrowser/1.0"
    assert runner.request("GET", "/patterns/ITPAGE")["statusCode"] == 403  # data routes still need the key
    assert runner.request("GET", "/patterns/ITPAGE", api_key=deployed["api_key_value"])["statusCode"] == 200


def test_an_unanswered_approval_is_auto_rejected_at_its_deadline_and_a_decided_one_left_alone(
    deployed, runner, clients, inboxes, endpoint, platform_clock
):
    alerts_inbox = subscribe_inbox(clients, deployed["trading_alerts_topic_arn"], "ItTradingAlertsInbox")
    unanswered, unanswered_requests = open_approval(clients, runner, deployed, inboxes, "ITEXPIRY")
    answered, requests = open_approval(clients, runner, deployed, inboxes, "ITANSWERED")
    assert runner.request("POST", path_of(requests["ada"]), body={"action": "approve"})["statusCode"] == 200
    decided = approval_item(clients, deployed, answered["alertId"])
    drain(clients, alerts_inbox)

    runner.drain()  # before the deadline nothing happens: both timers wait, invisible, in PendingApprovals
    assert approval_item(clients, deployed, unanswered["alertId"])["status"]["S"] == "PENDING"
    platform_clock(3600 + 60)  # an hour passes for SQS and the functions, without sleeping
    runner.drain()

    expired = approval_item(clients, deployed, unanswered["alertId"])
    assert (expired["status"]["S"], expired["decidedBy"]["S"], expired["decidedByName"]["S"]) == ("EXPIRED", "platform", "the platform")
    decided_at = datetime.fromisoformat(expired["decidedAt"]["S"].replace("Z", "+00:00")).timestamp()
    assert decided_at >= int(expired["deadline"]["N"])  # at its expiry, on the platform clock
    assert approval_item(clients, deployed, answered["alertId"]) == decided
    published = [m for m in drain(clients, alerts_inbox) if m.get("alertId") in (unanswered["alertId"], answered["alertId"])]
    assert [(m["alertId"], m["decision"], m["status"], m["decidedBy"]) for m in published] == [
        (unanswered["alertId"], "auto-reject", "EXPIRED", "platform")]
    late = runner.request("GET", path_of(unanswered_requests["grace"]), headers={"Accept": "text/html"})
    assert late["statusCode"] == 410 and "rejected automatically by the platform" in late["body"]

    admin.flush_metrics(endpoint)
    now = datetime.fromtimestamp(admin.platform_clock(endpoint)["now"], timezone.utc)
    points = clients.cloudwatch.get_metric_statistics(
        Namespace=METRICS_NAMESPACE, MetricName=METRIC_APPROVALS_PROCESSED, StartTime=now - timedelta(hours=2), EndTime=now + timedelta(minutes=5),
        Period=60, Statistics=["Sum"], Dimensions=[{"Name": "service", "Value": "approval-expiry"}, {"Name": "Action", "Value": "auto-reject"}],
    )["Datapoints"]
    assert sum(p["Sum"] for p in points) >= 1


def test_a_failed_alert_comes_back_after_its_visibility_timeout_and_is_dead_lettered(deployed, runner, clients, platform_clock):
    queue, dlq = deployed["alert_queue_url"], deployed["alert_dlq_url"]
    before = queue_depth(clients, dlq)
    clients.sqs.send_message(QueueUrl=queue, MessageBody="not an alert")
    runner.drain()
    # Lambda leaves a failed message alone: it is invisible for the queue's visibility timeout (6 x 30 s).
    assert queue_depth(clients, queue) == 0 and queue_depth(clients, dlq) == before
    for _ in range(3):
        platform_clock(6 * 30 + 1)
        runner.drain()
    assert queue_depth(clients, dlq) == before + 1  # received maxReceiveCount (3) times, then redriven
    assert "not an alert" in drain_raw(clients, dlq)


def test_no_token_or_key_reaches_a_log_a_metric_or_the_demo_summary(deployed, runner, clients, session, endpoint, inboxes, tmp_path):
    key = deployed["api_key_value"]
    _, requests = open_approval(clients, runner, deployed, inboxes, "ITSECRETS")
    token = demo_approvals.token_of(requests["grace"])
    # The page and its form, a JSON decision that even carries the shared key, and the data routes with it.
    assert runner.request("GET", path_of(requests["grace"]), headers={"Accept": "text/html"})["statusCode"] == 200
    assert runner.request("POST", path_of(requests["grace"]), body={"action": "approve"}, api_key=key)["statusCode"] == 200
    assert runner.request("GET", path_of(requests["ada"]), headers={"Accept": "application/json"})["statusCode"] == 200
    assert runner.request("GET", "/patterns/ITSECRETS", api_key=key)["statusCode"] == 200
    # The demo's approval step, on two more approvals: one approved in Chromium, one left pending.
    for symbol in ("ITDEMOA", "ITDEMOB"):
        clients.sqs.send_message(QueueUrl=deployed["alert_queue_url"], MessageBody=json.dumps(critical_alert(symbol)))
    runner.drain()
    report = demo_approvals.approval_step(session, endpoint, runner, inboxes, output_dir=tmp_path, keep_pending_symbol="ITDEMOB")
    assert len(report.decided_tokens) == 1 and report.screenshot.exists()
    kept = json.loads(runner.request("GET", path_of({"approveUrl": report.pending_url}), headers={"Accept": "application/json"})["body"])
    assert (kept["status"], kept["alert"]["symbol"]) == ("PENDING", "ITDEMOB")
    secrets = [key, token, *report.decided_tokens]

    found = []
    logs = clients.logs
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            for events in logs.get_paginator("filter_log_events").paginate(logGroupName=group["logGroupName"]):
                for event in events["events"]:
                    found += [(group["logGroupName"], event["message"][:200]) for s in secrets if s in event["message"]]
    assert found == []
    dimensions = [d["Value"] for page in clients.cloudwatch.get_paginator("list_metrics").paginate() for m in page["Metrics"]
                  for d in m.get("Dimensions", [])]
    assert not [v for v in dimensions if any(s in v for s in secrets)]
    assert not any(s in emulator.LOG_FILE.read_text(errors="replace") for s in secrets)  # the emulator's own request log
    outputs = [report.text, *(p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file())]
    assert not any(s in output for s in secrets for output in outputs)
    # The summary's pending link is a working page (a different token, by design: it is meant to be opened).
    pending = runner.request("GET", path_of({"approveUrl": report.pending_url}), headers={"Accept": "text/html"})
    assert pending["statusCode"] == 200 and '<form method="post">' in pending["body"]

