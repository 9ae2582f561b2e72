"""Human approval of CRITICAL alerts: one approval per alert, one link per approver, the first decision wins.

ApprovalTracking (names.table) holds, per CRITICAL alert, one approval item (`approval#<alertId>`) and, per
approver asked, one link item keyed by the SHA-256 of that approver's token. Only hashes are stored, so a
table read hands out no working link. A link is bound to its approver: it decides only while that
approver is still configured, and the approval records who decided, when, from which source IP and with
which user agent. Every state change is a conditional write on the approval's `status`, which is what
makes the first decision win when approvers (or one approver's double click) race.

Three functions use this module: alert-processor opens approvals (`open`), approval-processor shows
and decides them (`view`, `decide`), approval-expiry auto-rejects them at their deadline (`expire`).
"""
from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from patternwatch_shared import keys
from patternwatch_shared.approvers import Approver
from patternwatch_shared.messaging import alert_json, publish_json, send_json
from patternwatch_shared.models import AlertMessage
from patternwatch_shared.names.messages import (
    ACTION_APPROVE, ACTION_AUTO_REJECT, ACTION_REJECT, APPROVAL_STATUS_APPROVED, APPROVAL_STATUS_EXPIRED,
    APPROVAL_STATUS_PENDING, APPROVAL_STATUS_REJECTED, APPROVAL_TOKEN_BYTES, APPROVER_MESSAGE_ATTRIBUTE,
    DECIDED_BY_PLATFORM, DECIDED_BY_PLATFORM_NAME,
)
from patternwatch_shared.names.table import (
    APPROVAL_DEADLINE_ATTRIBUTE, APPROVAL_KEY_PREFIX, APPROVAL_PARTITION_KEY, APPROVAL_RECORD_RETENTION_SECONDS,
    APPROVAL_STATUS_ATTRIBUTE, APPROVAL_TTL_ATTRIBUTE,
)
from patternwatch_shared.storage import error_code

TOKEN_PATTERN = re.compile(rf"^[0-9a-f]{{{APPROVAL_TOKEN_BYTES * 2}}}$")
HASH_KEY = APPROVAL_PARTITION_KEY
TTL = APPROVAL_TTL_ATTRIBUTE
STATUS = APPROVAL_STATUS_ATTRIBUTE
DEADLINE = APPROVAL_DEADLINE_ATTRIBUTE
DECIDED_STATUS = {ACTION_APPROVE: APPROVAL_STATUS_APPROVED, ACTION_REJECT: APPROVAL_STATUS_REJECTED}
ACTION_FOR_STATUS = {
    APPROVAL_STATUS_APPROVED: ACTION_APPROVE,
    APPROVAL_STATUS_REJECTED: ACTION_REJECT,
    APPROVAL_STATUS_EXPIRED: ACTION_AUTO_REJECT,
}
# Request headers are the client's to fill: bound what the audit trail keeps of them.
MAX_USER_AGENT_CHARS = 512
MAX_SOURCE_IP_CHARS = 64


class MalformedToken(ValueError):
    pass


def new_token() -> str:
    return secrets.token_hex(APPROVAL_TOKEN_BYTES)


def token_hash(token: str) -> str:
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        raise MalformedToken(f"token must be {APPROVAL_TOKEN_BYTES * 2} lowercase hex characters")
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def approve_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/approve/{token}"


def approval_key(alert_id: str) -> dict[str, Any]:
    return {HASH_KEY: {"S": f"{APPROVAL_KEY_PREFIX}{alert_id}"}}


# --- What a link finds (plain data: the page and the JSON answers are rendered from it) -------------

class LinkState(Enum):
    PENDING = "pending"  # the approval waits for a decision (view only)
    RECORDED = "recorded"  # this request's decision was recorded
    DECIDED = "decided"  # someone decided earlier (the first decision won)
    EXPIRED = "expired"  # the deadline passed: auto-rejected, or about to be by the expiry timer
    UNKNOWN = "unknown"  # no such link was ever issued (or its record has been deleted)
    REVOKED = "revoked"  # the link's approver is no longer configured


@dataclass(frozen=True)
class Decision:
    """Who decided, as the approval records it."""

    status: str
    decided_by: str  # approver id, or DECIDED_BY_PLATFORM
    decided_by_name: str
    decided_at: str  # ISO 8601 UTC
    comment: str | None = None


@dataclass(frozen=True)
class Approval:
    alert_id: str
    alert: AlertMessage
    status: str
    deadline: int  # epoch seconds
    decision: Decision | None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Approval:
        decision = None
        if "decidedBy" in item:
            decision = Decision(
                status=item[STATUS]["S"],
                decided_by=item["decidedBy"]["S"],
                decided_by_name=item["decidedByName"]["S"],
                decided_at=item["decidedAt"]["S"],
                comment=item.get("comment", {}).get("S"),
            )
        return cls(
            alert_id=item["alertId"]["S"],
            alert=AlertMessage.model_validate_json(item["alert"]["S"]),
            status=item[STATUS]["S"],
            deadline=int(item[DEADLINE]["N"]),
            decision=decision,
        )


@dataclass(frozen=True)
class LinkOutcome:
    """What a GET or POST of one link found or did."""

    state: LinkState
    approval: Approval | None = None
    approver: Approver | None = None  # the link's approver
    recorded_action: str | None = None  # the action this request recorded (for ApprovalsProcessed)
    notified: bool = True  # False: recorded, but the result could not be published (a repeat resends it)


@dataclass(frozen=True)
class RequestSource:
    """Where a decision came from (the API event's requestContext.identity)."""

    source_ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class ApprovalOpened:
    alert_id: str
    deadline: int
    tokens: Mapping[str, str]  # approver id -> the token sent to them by this call (never stored)
    already_requested: tuple[str, ...]  # approvers an earlier, failed attempt had already sent a link


@dataclass(frozen=True)
class ExpiryCheck:
    """approval-expiry's answer for one timer message."""

    due_in_seconds: int  # > 0: not yet due, wait this long; 0: done with this approval
    recorded: bool = False  # this call recorded the auto-reject


class ApprovalWorkflow:
    def __init__(self, dynamodb: Any, table_name: str, *, sqs: Any = None, sns: Any = None):
        self._ddb = dynamodb
        self._table = table_name
        self._sqs = sqs
        self._sns = sns

    # --- alert-processor: open one approval, send one link per approver ---------------------------
    def open(
        self,
        alert: AlertMessage,
        approvers: Mapping[str, Approver],
        *,
        evidence: dict[str, str] | None = None,
        now: datetime,
        expiry_seconds: int,
        api_base_url: str,
        pending_queue_url: str,
        requests_topic_arn: str,
    ) -> ApprovalOpened:
        """Create the approval (or resume one an earlier attempt left half done), start its expiry timer,
        then send each approver who has not had one yet their own link.

        Called under alert-processor's claim on the alert, so one caller at a time per alert. Each step
        is recorded before the next, so a retry after a failure repeats only what did not happen: the
        approval is never created twice, and an approver who already got a link gets no second one.
        """
        deadline = int((now + timedelta(seconds=expiry_seconds)).timestamp())
        item = self._create_or_read(alert, now=now, deadline=deadline)
        deadline = int(item[DEADLINE]["N"])
        timer = {"alertId": alert.alertId, "deadline": deadline}
        if not item.get("timerQueued", {}).get("BOOL"):
            # The timer first: no person gets a link to an approval that could never expire.
            send_json(self._sqs, pending_queue_url, timer)
            self._set_flag(alert.alertId, "timerQueued")
        requested = tuple(sorted(item.get("requested", {}).get("SS", [])))
        tokens: dict[str, str] = {}
        for approver in approvers.values():
            if approver.id in requested:
                continue
            token = new_token()
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    HASH_KEY: {"S": token_hash(token)},
                    "alertId": {"S": alert.alertId},
                    "approver": {"S": approver.id},
                    "createdAt": {"S": keys.iso_utc(now)},
                    TTL: {"N": str(deadline + APPROVAL_RECORD_RETENTION_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(#hash)",  # a 128-bit collision is a bug, not data
                ExpressionAttributeNames={"#hash": HASH_KEY},
            )
            self._publish_request(alert, approver, token, deadline=deadline, api_base_url=api_base_url, topic_arn=requests_topic_arn,
                                  evidence=evidence)
            self._ddb.update_item(
                TableName=self._table,
                Key=approval_key(alert.alertId),
                UpdateExpression="ADD requested :approver",
                ExpressionAttributeValues={":approver": {"SS": [approver.id]}},
            )
            tokens[approver.id] = token
        return ApprovalOpened(alert_id=alert.alertId, deadline=deadline, tokens=tokens, already_requested=requested)

    def _create_or_read(self, alert: AlertMessage, *, now: datetime, deadline: int) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        item = {
            **approval_key(alert.alertId),
            STATUS: {"S": APPROVAL_STATUS_PENDING},
            "alertId": {"S": alert.alertId},
            "alert": {"S": alert_json(alert)},
            "createdAt": {"S": keys.iso_utc(now)},
            DEADLINE: {"N": str(deadline)},
            TTL: {"N": str(deadline + APPROVAL_RECORD_RETENTION_SECONDS)},
            "timerQueued": {"BOOL": False},
        }
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(#hash)",
                ExpressionAttributeNames={"#hash": HASH_KEY},
            )
            return item
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
        # An earlier attempt created it: carry on from what that attempt recorded.
        return self._ddb.get_item(TableName=self._table, Key=approval_key(alert.alertId), ConsistentRead=True)["Item"]

    def _set_flag(self, alert_id: str, flag: str) -> None:
        self._ddb.update_item(
            TableName=self._table,
            Key=approval_key(alert_id),
            UpdateExpression="SET #flag = :true",
            ExpressionAttributeNames={"#flag": flag},
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )

    def _publish_request(
        self, alert: AlertMessage, approver: Approver, token: str, *, deadline: int, api_base_url: str, topic_arn: str,
        evidence: dict[str, str] | None = None,
    ) -> None:
        link = approve_link(api_base_url, token)
        expires = keys.iso_utc(datetime.fromtimestamp(deadline, tz=timezone.utc))
        subject = f"Approval needed: {alert.severity} {alert.pattern or 'threshold'} {alert.symbol or ''}".strip()
        payload = {
            "alertId": alert.alertId,
            "approver": approver.id,
            "approverName": approver.name,
            "severity": alert.severity,
            "expiresAt": deadline,
            "alert": alert.model_dump(exclude_none=True),
            "approveUrl": link,
        }
        if evidence:
            # Keys in the data bucket, not a presigned URL: the link's page shows the chart inline.
            payload["evidence"] = evidence
        what = f"{alert.pattern or 'threshold breach'} on {alert.symbol}" if alert.symbol else (alert.pattern or "threshold breach")
        email = (
            f"Hello {approver.name},\n\n"
            f"PatternWatch raised a {alert.severity} alert that needs a person's approval: {what} "
            f"(confidence {alert.confidence:.2f}, detected {alert.detectedAt}).\n\n"
            f"Open your personal link to see the evidence and approve or reject it:\n{link}\n\n"
            f"The link is yours alone and works until {expires}; after that the alert is rejected automatically.\n"
        )
        publish_json(
            self._sns,
            topic_arn,
            subject=subject,
            payload=payload,
            attributes={"severity": alert.severity, APPROVER_MESSAGE_ATTRIBUTE: approver.id},
            email=email,
        )

    # --- approval-processor: what a link shows, and its decision ----------------------------------
    def view(self, token: str, *, now: datetime, approvers: Mapping[str, Approver]) -> LinkOutcome:
        """What the link's page shows. Reads only: a GET never decides anything."""
        found = self._link(token, approvers)
        if isinstance(found, LinkOutcome):
            return found
        approval, approver = found
        if approval.status == APPROVAL_STATUS_PENDING:
            state = LinkState.PENDING if approval.deadline > int(now.timestamp()) else LinkState.EXPIRED
        else:
            state = LinkState.EXPIRED if approval.status == APPROVAL_STATUS_EXPIRED else LinkState.DECIDED
        return LinkOutcome(state, approval=approval, approver=approver)

    def decide(
        self,
        token: str,
        action: str,
        *,
        now: datetime,
        approvers: Mapping[str, Approver],
        source: RequestSource,
        results_topic_arn: str,
        comment: str | None = None,
    ) -> LinkOutcome:
        from botocore.exceptions import ClientError

        found = self._link(token, approvers)
        if isinstance(found, LinkOutcome):
            return found
        approval, approver = found
        recorded = {
            ":new": {"S": DECIDED_STATUS[action]},
            ":who": {"S": approver.id},
            ":name": {"S": approver.name},
            ":now": {"S": keys.iso_utc(now)},
            ":false": {"BOOL": False},
            ":pending": {"S": APPROVAL_STATUS_PENDING},
            ":epoch": {"N": str(int(now.timestamp()))},
        }
        assignments = ["#status = :new", "decidedBy = :who", "decidedByName = :name", "decidedAt = :now", "resultPublished = :false"]
        names = {"#status": STATUS, "#deadline": DEADLINE}
        for attribute, value, limit in (
            ("sourceIp", source.source_ip, MAX_SOURCE_IP_CHARS),
            ("userAgent", source.user_agent, MAX_USER_AGENT_CHARS),
            ("comment", comment, None),  # a DynamoDB reserved word, hence the #names
        ):
            if value:
                recorded[f":{attribute}"] = {"S": value[:limit] if limit else value}
                names[f"#{attribute}"] = attribute
                assignments.append(f"#{attribute} = :{attribute}")
        try:
            updated = self._ddb.update_item(
                TableName=self._table,
                Key=approval_key(approval.alert_id),
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression="#status = :pending AND #deadline > :epoch",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=recorded,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return self._explain_refusal(approval.alert_id, approver, now=now, results_topic_arn=results_topic_arn)
        notified = self._publish_result(updated, action, results_topic_arn)
        return LinkOutcome(LinkState.RECORDED, approval=Approval.from_item(updated), approver=approver, recorded_action=action, notified=notified)

    def _link(self, token: str, approvers: Mapping[str, Approver]) -> tuple[Approval, Approver] | LinkOutcome:
        """The approval a link belongs to and the approver it was issued to; or why the link counts for nothing."""
        link = self._ddb.get_item(TableName=self._table, Key={HASH_KEY: {"S": token_hash(token)}}, ConsistentRead=True).get("Item")
        item = None
        if link is not None and "approver" in link:
            item = self._ddb.get_item(TableName=self._table, Key=approval_key(link["alertId"]["S"]), ConsistentRead=True).get("Item")
        if item is None:
            return LinkOutcome(LinkState.UNKNOWN)
        approval = Approval.from_item(item)
        approver = approvers.get(link["approver"]["S"])
        if approver is None:
            return LinkOutcome(LinkState.REVOKED, approval=approval)
        return approval, approver

    def _explain_refusal(self, alert_id: str, approver: Approver, *, now: datetime, results_topic_arn: str) -> LinkOutcome:
        item = self._ddb.get_item(TableName=self._table, Key=approval_key(alert_id), ConsistentRead=True)["Item"]
        status = item[STATUS]["S"]
        if status == APPROVAL_STATUS_PENDING:  # the condition failed on the deadline: the platform decides
            recorded, item = self._auto_reject(alert_id, now=now, results_topic_arn=results_topic_arn)
            return LinkOutcome(LinkState.EXPIRED, approval=Approval.from_item(item), approver=approver,
                               recorded_action=ACTION_AUTO_REJECT if recorded else None)
        self._resend_unpublished(item, results_topic_arn)
        state = LinkState.EXPIRED if status == APPROVAL_STATUS_EXPIRED else LinkState.DECIDED
        return LinkOutcome(state, approval=Approval.from_item(item), approver=approver)

    # --- approval-expiry: the deadline passed and nobody decided ----------------------------------
    def expire(self, alert_id: str, *, now: datetime, results_topic_arn: str) -> ExpiryCheck:
        """Auto-reject the approval if its deadline has passed and it is still pending; an approval
        that someone decided is left alone. Before the deadline, says how long is left."""
        item = self._ddb.get_item(TableName=self._table, Key=approval_key(alert_id), ConsistentRead=True).get("Item")
        if item is None or item[STATUS]["S"] != APPROVAL_STATUS_PENDING:
            if item is not None:
                self._resend_unpublished(item, results_topic_arn)
            return ExpiryCheck(due_in_seconds=0)
        remaining = int(item[DEADLINE]["N"]) - int(now.timestamp())
        if remaining > 0:
            return ExpiryCheck(due_in_seconds=remaining)
        recorded, _ = self._auto_reject(alert_id, now=now, results_topic_arn=results_topic_arn)
        return ExpiryCheck(due_in_seconds=0, recorded=recorded)

    def _auto_reject(self, alert_id: str, *, now: datetime, results_topic_arn: str) -> tuple[bool, dict[str, Any]]:
        """Record the platform's rejection of a pending approval whose deadline has passed, and publish it.
        Returns (whether this call recorded it, the approval item)."""
        from botocore.exceptions import ClientError

        try:
            updated = self._ddb.update_item(
                TableName=self._table,
                Key=approval_key(alert_id),
                UpdateExpression=(
                    "SET #status = :expired, decidedBy = :platform, decidedByName = :platformName, decidedAt = :now, "
                    "resultPublished = :false"
                ),
                ConditionExpression="#status = :pending AND #deadline <= :epoch",
                ExpressionAttributeNames={"#status": STATUS, "#deadline": DEADLINE},
                ExpressionAttributeValues={
                    ":expired": {"S": APPROVAL_STATUS_EXPIRED},
                    ":pending": {"S": APPROVAL_STATUS_PENDING},
                    ":platform": {"S": DECIDED_BY_PLATFORM},
                    ":platformName": {"S": DECIDED_BY_PLATFORM_NAME},
                    ":now": {"S": keys.iso_utc(now)},
                    ":epoch": {"N": str(int(now.timestamp()))},
                    ":false": {"BOOL": False},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            # Another request (a late click, or the timer) recorded it first: publish if that one could not.
            item = self._ddb.get_item(TableName=self._table, Key=approval_key(alert_id), ConsistentRead=True)["Item"]
            self._resend_unpublished(item, results_topic_arn)
            return False, item
        self._publish_result(updated, ACTION_AUTO_REJECT, results_topic_arn)
        return True, updated

    # --- the decision's notification on TradingAlerts, published once -----------------------------
    def _resend_unpublished(self, item: dict[str, Any], results_topic_arn: str) -> None:
        if item.get("resultPublished", {}).get("BOOL") is False:
            self._publish_result(item, ACTION_FOR_STATUS[item[STATUS]["S"]], results_topic_arn)

    def _publish_result(self, item: dict[str, Any], action: str, topic_arn: str) -> bool:
        """Publish the decision once. A conditional claim on resultPublished stops two racing
        requests (the winner and a loser resending) from both publishing it."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = {HASH_KEY: item[HASH_KEY]}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET resultPublished = :true",
                ConditionExpression="resultPublished = :false",
                ExpressionAttributeValues={":true": {"BOOL": True}, ":false": {"BOOL": False}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return True  # another request has published it
            raise
        approval = Approval.from_item(item)
        decision = approval.decision
        try:
            publish_json(
                self._sns,
                topic_arn,
                subject=f"Approval {approval.status.lower()}: {approval.alert_id}",
                payload={
                    "alertId": approval.alert_id,
                    "decision": action,
                    "status": approval.status,
                    "decidedBy": decision.decided_by if decision else None,
                    "decidedByName": decision.decided_by_name if decision else None,
                    "decidedAt": decision.decided_at if decision else None,
                    "alert": approval.alert.model_dump(exclude_none=True),
                },
                attributes={"decision": action},
            )
        except (BotoCoreError, ClientError):
            # Give the claim back so a repeated request can resend it.
            self._ddb.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET resultPublished = :false",
                ExpressionAttributeValues={":false": {"BOOL": False}},
            )
            return False
        return True

