"""Approval links on the local platform, received and opened the way an approver does (the demo and the tests).

- `approver_inbox`: an SQS queue subscribed to AlertApprovalRequests with the filter policy of that
  approver's own subscription, read back from the emulator (Terraform made it, for their e-mail address):
  the queue receives exactly what their mailbox would;
- `approve_in_browser`: headless Chromium from the Debian package (`/usr/bin/chromium`, or
  PATTERNWATCH_CHROMIUM), driven by Playwright: opens the link on a phone-sized screen, takes a
  screenshot, approves with a comment, reads the confirmation, opens the link again and reads what it
  says then. Playwright never downloads a browser here (no `playwright install`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from patternwatch_shared.names.messages import APPROVER_MESSAGE_ATTRIBUTE

CHROMIUM = Path(os.environ.get("PATTERNWATCH_CHROMIUM", "/usr/bin/chromium"))
# Quiet, self-contained and root-friendly (CI runs as root in a container, where the sandbox cannot start).
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
)
PHONE_SCREEN = {"width": 390, "height": 844}
NAVIGATION_TIMEOUT_MS = 60_000


def approver_subscription(sns, topic_arn: str, approver_id: str) -> dict:
    """The attributes of the approver's own subscription to the topic (the one whose filter names them)."""
    for subscription in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]:
        attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
        policy = json.loads(attributes.get("FilterPolicy") or "{}")
        if subscription["Protocol"] == "email" and policy.get(APPROVER_MESSAGE_ATTRIBUTE) == [approver_id]:
            return attributes
    raise LookupError(f"no subscription of approver {approver_id!r} on {topic_arn}")


def approver_inbox(sqs, sns, topic_arn: str, approver_id: str, queue_name: str) -> str:
    """A queue that receives what the approver's mailbox receives: their subscription's filter policy, raw delivery."""
    own = approver_subscription(sns, topic_arn, approver_id)
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if not any(s["Endpoint"] == arn for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]):
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True, Attributes={
            "RawMessageDelivery": "true",
            "FilterPolicy": own["FilterPolicy"],
            "FilterPolicyScope": own.get("FilterPolicyScope", "MessageAttributes"),
        })
    return url


def approval_requests(sqs, inbox_url: str) -> list[dict]:
    """Every approval request waiting in an inbox, oldest first, removed from it."""
    requests = []
    while True:
        messages = sqs.receive_message(QueueUrl=inbox_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return requests
        for message in messages:
            requests.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=inbox_url, ReceiptHandle=message["ReceiptHandle"])


@dataclass(frozen=True)
class BrowserApproval:
    """What a person saw, approving through the page."""

    page_status: int
    page_heading: str
    chart_shown: bool  # the evidence chart loaded and has a size (a data: URI the page's CSP admits)
    screenshots: tuple[Path, ...]
    confirmation_status: int
    confirmation: str  # the result page's heading and notice
    revisit_status: int
    revisit: str  # what the same link says afterwards
    user_agent: str


def approve_in_browser(url: str, screenshots: Sequence[Path], *, comment: str) -> BrowserApproval:
    """Open the link in headless Chromium on a phone-sized screen, screenshot it, approve, and open it again."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: `make setup` installs Chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport=PHONE_SCREEN, device_scale_factor=2, is_mobile=True, has_touch=True)
            page = context.new_page()
            page.set_default_timeout(NAVIGATION_TIMEOUT_MS)
            opened = page.goto(url, wait_until="load")
            heading = page.inner_text("h1")
            chart_shown = page.evaluate("() => { const img = document.querySelector('figure img'); return !!img && img.complete && img.naturalWidth > 0; }")
            for path in screenshots:
                path.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(path), full_page=True)
            page.fill("textarea[name=comment]", comment)
            with page.expect_navigation(wait_until="load") as navigation:
                page.click("button[value=approve]")
            confirmed = navigation.value
            confirmation = f"{page.inner_text('h1')}: {page.inner_text('.notice')}"
            revisited = page.goto(url, wait_until="load")
            revisit = f"{page.inner_text('h1')}: {page.inner_text('.notice')}"
            user_agent = page.evaluate("navigator.userAgent")
        finally:
            browser.close()
    return BrowserApproval(
        page_status=opened.status,
        page_heading=heading,
        chart_shown=chart_shown,
        screenshots=tuple(screenshots),
        confirmation_status=confirmed.status if confirmed else 0,
        confirmation=confirmation,
        revisit_status=revisited.status,
        revisit=revisit,
        user_agent=user_agent,
    )
