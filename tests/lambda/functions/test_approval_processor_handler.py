"""approval-processor: GET and POST /approve/{token} with real API Gateway REST event shapes."""
from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from approval_processor import handler
from approval_testkit import ALERT_ID, BROWSER, FORM, PNG, approval_item, browse, call, headers_of, request, start_approval, store_chart
from lambda_testkit import APPROVERS, BAD_BASE64_BODIES, FlakyClient, LinearizableClient, api_event, install_client, metric_values
from patternwatch_shared.approvers import Approver, approvers_json
from patternwatch_shared.names.functions import ENV_APPROVERS
from patternwatch_shared.names.metrics import METRIC_APPROVALS_PROCESSED

# --- the page (GET) ----------------------------------------------------------------------------

def test_the_page_shows_the_alert_the_chart_and_the_form_to_its_approver(aws_resources, lambda_context):
    tokens = start_approval(aws_resources)
    store_chart(aws_resources)
    response = browse("GET", tokens["ada"], lambda_context)
    assert response["statusCode"] == 200
    headers = headers_of(response)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "img-src data:", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'", "style-src 'sha256-"):
        assert directive in csp
    page = response["body"]
    assert "Ada Lovelace" in page and "AAPL" in page and "head-and-shoulders" in page and "98.0%" in page
    assert '<form method="post">' in page and 'value="approve"' in page and 'value="reject"' in page and 'name="comment"' in page
    import base64

    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<script" not in page


def test_a_missing_chart_is_said_so(aws_resources, lambda_context):
    tokens = start_approval(aws_resources)
    page = browse("GET", tokens["grace"], lambda_context)["body"]
    assert "The evidence chart for this alert is missing." in page
    assert "data:image/png" not in page


def approve_event(token: str, body: str | None, *, base64_encoded: bool = False) -> dict:
    return api_event(
        "POST", "/approve/{token}", f"/approve/{token}", body=body, path_parameters={"token": token}, base64_encoded=base64_encoded
    )


def test_an_unreadable_bucket_leaves_the_page_working(aws_resources, lambda_context, monkeypatch):
    tokens = start_approval(aws_resources)
    monkeypatch.setenv("DATA_BUCKET_NAME", "no-such-bucket")
    response = browse("GET", tokens["ada"], lambda_context)
    assert response["statusCode"] == 200
    assert "could not be loaded" in response["body"] or "missing" in response["body"]


def test_get_never_decides_anything_even_past_the_deadline(aws_resources, lambda_context):
    tokens = start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(hours=2))
    before = approval_item(aws_resources)
    response = browse("GET", tokens["ada"], lambda_context)
    assert response["statusCode"] == 410
    assert "expired" in response["body"]
    assert approval_item(aws_resources) == before
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []


def test_api_clients_get_json_from_the_page(aws_resources, lambda_context):
    tokens = start_approval(aws_resources)
    code, body = call(tokens["ada"], None, lambda_context, method="GET")
    assert code == 200
    assert (body["status"], body["alertId"], body["alert"]["symbol"]) == ("PENDING", ALERT_ID, "AAPL")
    assert body["deadline"] == int(approval_item(aws_resources)["deadline"]["N"])


# --- the decision (POST) -----------------------------------------------------------------------

def test_the_form_records_the_decision_with_who_when_where_and_why(aws_resources, lambda_context, capsys):
    tokens = start_approval(aws_resources)
    response = browse("POST", tokens["ada"], lambda_context, form={"action": "approve", "comment": "Looks right <b>to me</b>"})
    assert response["statusCode"] == 200
    assert headers_of(response)["Content-Type"] == "text/html; charset=utf-8"
    assert "Thank you, Ada Lovelace. You approved this alert" in response["body"]
    item = approval_item(aws_resources)
    assert item["status"]["S"] == "APPROVED"
    assert (item["decidedBy"]["S"], item["decidedByName"]["S"]) == ("ada", "Ada Lovelace")
    assert item["sourceIp"]["S"] == "203.0.113.7"
    assert item["userAgent"]["S"] == BROWSER["User-Agent"]
    assert item["comment"]["S"] == "Looks right <b>to me</b>"
    assert item["decidedAt"]["S"].endswith("Z")
    (published,) = aws_resources.published(aws_resources.trading_alerts_inbox)
    message = published["Message"]
    assert (message["status"], message["decision"], message["decidedBy"], message["decidedByName"]) == ("APPROVED", "approve", "ada", "Ada Lovelace")
    assert message["alert"]["alertId"] == ALERT_ID
    assert metric_values(capsys.readouterr().out, METRIC_APPROVALS_PROCESSED, Action="approve") == [1.0]


@pytest.mark.parametrize(
    ("body", "status"),
    [('{"action": "approve"}', "APPROVED"), ("reject", "REJECTED"), ("approve", "APPROVED"), ('"reject"', "REJECTED"),
     ('{"action": "reject", "comment": "no"}', "REJECTED")],
)
def test_json_clients_keep_their_answers(aws_resources, lambda_context, capsys, body, status):
    tokens = start_approval(aws_resources)
    code, payload = call(tokens["grace"], body, lambda_context)
    assert (code, payload["status"], payload["notified"], payload["decidedBy"]) == (200, status, True, "grace")
    assert approval_item(aws_resources)["status"]["S"] == status
    published = aws_resources.published(aws_resources.trading_alerts_inbox)
    assert [p["Message"]["status"] for p in published] == [status]
    action = "approve" if status == "APPROVED" else "reject"
    assert metric_values(capsys.readouterr().out, METRIC_APPROVALS_PROCESSED, Action=action) == [1.0]


def test_the_first_decision_wins_and_the_others_see_who_decided(aws_resources, lambda_context):
    tokens = start_approval(aws_resources)
    assert browse("POST", tokens["ada"], lambda_context, form={"action": "approve"})["statusCode"] == 200

    seen = browse("GET", tokens["grace"], lambda_context)
    assert seen["statusCode"] == 200
    assert "already decided by Ada Lovelace at " in seen["body"] and ": approved." in seen["body"]
    assert "<form" not in seen["body"]
    late = browse("POST", tokens["grace"], lambda_context, form={"action": "reject"})
    assert late["statusCode"] == 409 and "already decided by Ada Lovelace" in late["body"]
    code, body = call(tokens["ada"], "reject", lambda_context)
    assert (code, body["status"], body["message"], body["decidedBy"]) == (409, "APPROVED", "approval already decided", "ada")
    assert approval_item(aws_resources)["status"]["S"] == "APPROVED"
    assert len(aws_resources.published(aws_resources.trading_alerts_inbox)) == 1


def test_an_expired_approval_is_410_and_a_late_click_records_the_auto_reject_once(aws_resources, lambda_context, capsys):
    tokens = start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(hours=2))
    code, payload = call(tokens["ada"], "approve", lambda_context)
    assert code == 410 and payload["status"] == "EXPIRED"
    item = approval_item(aws_resources)
    assert (item["status"]["S"], item["decidedBy"]["S"], item["decidedByName"]["S"]) == ("EXPIRED", "platform", "the platform")
    published = aws_resources.published(aws_resources.trading_alerts_inbox)
    assert [p["Message"]["decision"] for p in published] == ["auto-reject"]
    assert metric_values(capsys.readouterr().out, METRIC_APPROVALS_PROCESSED, Action="auto-reject") == [1.0]

    page = browse("POST", tokens["grace"], lambda_context, form={"action": "reject"})
    assert page["statusCode"] == 410 and "rejected automatically by the platform" in page["body"]
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []


def test_a_decision_just_before_the_deadline_still_counts(aws_resources, lambda_context):
    tokens = start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(seconds=3600 - 30))
    assert call(tokens["ada"], "approve", lambda_context)[0] == 200


def test_a_link_never_issued_is_404_even_with_the_api_key(aws_resources, lambda_context):
    start_approval(aws_resources)
    event = request("POST", "0" * 32, body="approve")
    event["headers"]["x-api-key"] = "k" * 40  # the shared key grants nothing on approval routes
    response = handler.lambda_handler(event, lambda_context)
    assert (response["statusCode"], json.loads(response["body"])) == (404, {"message": "unknown approval token"})
    assert browse("GET", "0" * 32, lambda_context)["statusCode"] == 404
    assert approval_item(aws_resources)["status"]["S"] == "PENDING"


def test_a_link_whose_approver_was_removed_decides_nothing(aws_resources, lambda_context, monkeypatch):
    tokens = start_approval(aws_resources)
    monkeypatch.setenv(ENV_APPROVERS, approvers_json([APPROVERS[0]]))  # grace is no longer an approver
    assert call(tokens["grace"], "approve", lambda_context) == (403, {"message": "this link's approver is no longer an approver"})
    page = browse("GET", tokens["grace"], lambda_context)
    assert page["statusCode"] == 403 and "no longer on this environment" in page["body"]
    assert approval_item(aws_resources)["status"]["S"] == "PENDING"
    assert call(tokens["ada"], "approve", lambda_context)[0] == 200


def test_everything_the_page_shows_is_escaped(aws_resources, lambda_context, monkeypatch):
    monkeypatch.setenv(ENV_APPROVERS, approvers_json([Approver("ada", '<script>alert("x")</script>'), APPROVERS[1]]))
    tokens = start_approval(aws_resources)
    page = browse("GET", tokens["ada"], lambda_context)["body"]
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    browse("POST", tokens["ada"], lambda_context, form={"action": "reject", "comment": '"><img src=x onerror=alert(1)>'})
    page = browse("GET", tokens["grace"], lambda_context)["body"]
    assert "<img src=x" not in page and "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page


MALFORMED_TOKENS = ["abc", "G" * 32, "A" * 32, "0" * 33, "0" * 4096]  # "A" * 32: upper case is not what we issue
MALFORMED_BODIES = [
    None, "", "maybe", "approve" * 1000, '"escalate"', '"approve', '"approve" "reject"', '["approve"]', "{not json",
    '{"action": "escalate"}', '{"action": "approve", "extra": 1}', '{"action": 1}', '{"decision": "approve"}',
    '{"action": "approve", "comment": "' + "c" * 501 + '"}',
]
MALFORMED_FORMS = [
    "action=escalate", "action=approve&action=reject", "action=approve&extra=1", "comment=hello",
    "action=approve&comment=" + "c" * 501, "action", "&&&",
]


@pytest.mark.parametrize(
    ("token", "body", "content_type"),
    [(token, "approve", None) for token in MALFORMED_TOKENS]
    + [("0" * 32, body, None) for body in MALFORMED_BODIES]
    + [("0" * 32, form, FORM) for form in MALFORMED_FORMS],
)
def test_malformed_token_or_body_is_400(aws_resources, lambda_context, token, body, content_type):
    event = request("POST", token, body=body)
    if content_type:  # a script posting the form, asking for JSON back
        event["headers"].update({"Content-Type": content_type, "Accept": "application/json"})
    response = handler.lambda_handler(event, lambda_context)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["message"]


def test_a_malformed_link_in_a_browser_gets_a_page(aws_resources, lambda_context):
    response = browse("GET", "not-a-token", lambda_context)
    assert response["statusCode"] == 400
    assert headers_of(response)["Content-Type"].startswith("text/html") and "Not an approval request" in response["body"]


@pytest.mark.parametrize(
    "body",
    ['{"action":"reject","action":"approve"}', '{"action":"approve","action":"approve"}', '{"action":"approve","action":"reject"}'],
)
def test_a_body_with_a_repeated_key_is_400_and_decides_nothing(aws_resources, lambda_context, body):
    tokens = start_approval(aws_resources)
    code, payload = call(tokens["ada"], body, lambda_context)
    assert code == 400 and "duplicate key 'action'" in payload["message"]
    assert approval_item(aws_resources)["status"]["S"] == "PENDING"


@pytest.mark.parametrize("body", BAD_BASE64_BODIES)
def test_a_base64_flagged_body_that_does_not_decode_is_400_and_decides_nothing(aws_resources, lambda_context, body):
    tokens = start_approval(aws_resources)
    response = handler.lambda_handler(approve_event(tokens["ada"], body, base64_encoded=True), lambda_context)
    assert response["statusCode"] == 400
    assert "base64" in json.loads(response["body"])["message"]
    assert approval_item(aws_resources)["status"]["S"] == "PENDING"


def test_a_base64_encoded_decision_is_read_like_a_plain_one(aws_resources, lambda_context):
    tokens = start_approval(aws_resources)
    body = base64.b64encode(b'{"action": "reject"}').decode()
    response = handler.lambda_handler(approve_event(tokens["ada"], body, base64_encoded=True), lambda_context)
    assert response["statusCode"] == 200
    assert approval_item(aws_resources)["status"]["S"] == "REJECTED"


def test_unknown_methods_are_not_served(aws_resources, lambda_context):
    response = handler.lambda_handler(api_event("PUT", "/approve/{token}", "/approve/" + "0" * 32), lambda_context)
    assert response["statusCode"] == 404


# Twenty invocations share one process here (Lambda would use twenty containers), so one thread's
# metrics flush can empty the shared metric set before another's: harmless for this test.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_twenty_concurrent_decisions_on_both_links_exactly_one_wins(aws_resources, lambda_context):
    tokens = start_approval(aws_resources)
    # DynamoDB's per-request atomicity, which moto in process lacks (see LinearizableClient). The
    # handler itself takes no lock: only its conditional write decides the winner.
    install_client("dynamodb", LinearizableClient(aws_resources.dynamodb))
    barrier = threading.Barrier(20)
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def decide(index: int) -> None:
        try:
            barrier.wait()
            token = tokens["ada" if index % 2 else "grace"]
            code, _ = call(token, "approve" if index % 3 else "reject", lambda_context)
            with lock:
                results.append(code)
        except BaseException as error:  # surfaced below: a crashed thread must fail the test
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(results) == [200] + [409] * 19
    assert approval_item(aws_resources)["status"]["S"] in {"APPROVED", "REJECTED"}
    assert len(aws_resources.published(aws_resources.trading_alerts_inbox)) == 1


def test_sns_fault_after_decision_is_502_and_a_repeat_resends_it(aws_resources, lambda_context):
    tokens = start_approval(aws_resources)
    install_client("sns", FlakyClient(aws_resources.sns, "publish", failing_calls={1}))
    code, payload = call(tokens["ada"], "approve", lambda_context)
    assert (code, payload["status"], payload["notified"]) == (502, "APPROVED", False)
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []

    assert call(tokens["ada"], "approve", lambda_context)[0] == 409
    published = aws_resources.published(aws_resources.trading_alerts_inbox)
    assert [p["Message"]["status"] for p in published] == ["APPROVED"]
    assert call(tokens["grace"], "approve", lambda_context)[0] == 409
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []
