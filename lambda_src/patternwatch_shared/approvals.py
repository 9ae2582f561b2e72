"""Human approval of CRITICAL alerts: tokens, the ApprovalTracking item and the decision rules.

Only the SHA-256 of a token is stored, so a table read does not hand out working approve links.
Every state change is a conditional write on `status`, which is what makes a decision happen once
even when many requests race for the same token.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from patternwatch_shared import keys
from patternwatch_shared.messaging import alert_json, publish_json, send_json
from patternwatch_shared.models import AlertMessage
from patternwatch_shared.names.messages import (
    ACTION_APPROVE, ACTION_AUTO_REJECT, ACTION_REJECT, APPROVAL_STATUS_APPROVED, APPROVAL_STATUS_EXPIRED,
    APPROVAL_STATUS_PENDING, APPROVAL_STATUS_REJECTED, APPROVAL_TOKEN_BYTES,
)
from patternwatch_shared.names.table import (
    APPROVAL_PARTITION_KEY, APPROVAL_STATUS_ATTRIBUTE, APPROVAL_TTL_ATTRIBUTE, DELIVERED_ALERT_KEY_PREFIX,
    DELIVERED_ALERT_RETENTION_SECONDS, DELIVERY_LEASE_ATTRIBUTE, DELIVERY_STATE_ATTRIBUTE, DELIVERY_STATE_CLAIMED,
    DELIVERY_STATE_DELIVERED,
)
from patternwatch_shared.storage import error_code

TOKEN_PATTERN = re.compile(rf"^[0-9a-f]{{{APPROVAL_TOKEN_BYTES * 2}}}$")
HASH_KEY = APPROVAL_PARTITION_KEY
TTL = APPROVAL_TTL_ATTRIBUTE
STATUS = APPROVAL_STATUS_ATTRIBUTE
STATE = DELIVERY_STATE_ATTRIBUTE
LEASE = DELIVERY_LEASE_ATTRIBUTE
DECIDED_STATUS = {ACTION_APPROVE: APPROVAL_STATUS_APPROVED, ACTION_REJECT: APPROVAL_STATUS_REJECTED}


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


@dataclass(frozen=True)
class ApprovalStarted:
    token: str
    token_hash: str
    expires_at: int


@dataclass(frozen=True)
class DecisionOutcome:
    status_code: int
    body: dict[str, Any]
    recorded_action: str | None = None  # the action this request recorded (for ApprovalsProcessed)


class ApprovalWorkflow:
    def __init__(self, dynamodb: Any, table_name: str, *, sqs: Any = None, sns: Any = None):
        self._ddb = dynamodb
        self._table = table_name
        self._sqs = sqs
        self._sns = sns

    # --- alert-processor side --------------------------------------------------------------------
    def start(
        self,
        alert: AlertMessage,
        *,
        now: datetime,
        expiry_seconds: int,
        api_base_url: str,
        pending_queue_url: str,
        requests_topic_arn: str,
    ) -> ApprovalStarted:
        token = new_token()
        hashed = token_hash(token)
        expires_at = int((now + timedelta(seconds=expiry_seconds)).timestamp())
        self._ddb.put_item(
            TableName=self._table,
            Item={
                HASH_KEY: {"S": hashed},
                STATUS: {"S": APPROVAL_STATUS_PENDING},
                TTL: {"N": str(expires_at)},
                "alertId": {"S": alert.alertId},
                "alert": {"S": alert_json(alert)},
                "createdAt": {"S": keys.iso_utc(now)},
            },
            ConditionExpression="attribute_not_exists(#hash)",  # a 128-bit collision is a bug, not data
            ExpressionAttributeNames={"#hash": HASH_KEY},
        )
        summary = {
            "alertId": alert.alertId,
            "tokenHash": hashed,
            "expiresAt": expires_at,
            "severity": alert.severity,
            "alert": alert.model_dump(exclude_none=True),
        }
        # Queue before publishing: if the publish fails the message is retried with a new token
        # and the orphaned item expires; a human never gets a link that was not recorded.
        send_json(self._sqs, pending_queue_url, summary)
        publish_json(
            self._sns,
            requests_topic_arn,
            subject=f"Approval needed: {alert.severity} {alert.pattern or 'threshold'} {alert.symbol or ''}".strip(),
            payload={**summary, "approveUrl": approve_link(api_base_url, token)},
            attributes={"severity": alert.severity},
        )
        return ApprovalStarted(token=token, token_hash=hashed, expires_at=expires_at)

    # --- approval-processor side -----------------------------------------------------------------
    def decide(self, token: str, action: str, *, now: datetime, results_topic_arn: str) -> DecisionOutcome:
        hashed = token_hash(token)
        new_status = DECIDED_STATUS[action]
        from botocore.exceptions import ClientError

        try:
            updated = self._ddb.update_item(
                TableName=self._table,
                Key={HASH_KEY: {"S": hashed}},
                UpdateExpression="SET #status = :new, decidedAt = :now, resultPublished = :false",
                ConditionExpression="attribute_exists(#hash) AND #status = :pending AND #ttl > :epoch",
                ExpressionAttributeNames={"#status": STATUS, "#hash": HASH_KEY, "#ttl": TTL},
                ExpressionAttributeValues={
                    ":new": {"S": new_status},
                    ":pending": {"S": APPROVAL_STATUS_PENDING},
                    ":now": {"S": keys.iso_utc(now)},
                    ":epoch": {"N": str(int(now.timestamp()))},
                    ":false": {"BOOL": False},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return self._explain_refusal(hashed, now=now, results_topic_arn=results_topic_arn)
        notified = self._publish_result(updated, action, results_topic_arn)
        body = {"status": new_status, "alertId": updated["alertId"]["S"], "notified": notified}
        if not notified:
            body["message"] = "decision recorded; notification failed, repeat the request to resend it"
            return DecisionOutcome(502, body, recorded_action=action)
        return DecisionOutcome(200, body, recorded_action=action)

    def _explain_refusal(self, hashed: str, *, now: datetime, results_topic_arn: str) -> DecisionOutcome:
        item = self._ddb.get_item(TableName=self._table, Key={HASH_KEY: {"S": hashed}}, ConsistentRead=True).get("Item")
        if item is None:
            return DecisionOutcome(404, {"message": "unknown approval token"})
        status = item[STATUS]["S"]
        if status == APPROVAL_STATUS_PENDING and int(item[TTL]["N"]) <= int(now.timestamp()):
            return self._auto_reject(item, now=now, results_topic_arn=results_topic_arn)
        self._resend_unpublished(item, results_topic_arn)
        if status == APPROVAL_STATUS_EXPIRED:
            return DecisionOutcome(410, {"status": status, "message": "approval expired and was auto-rejected"})
        return DecisionOutcome(409, {"status": status, "message": "approval already decided"})

    def _auto_reject(self, item: dict[str, Any], *, now: datetime, results_topic_arn: str) -> DecisionOutcome:
        from botocore.exceptions import ClientError

        try:
            updated = self._ddb.update_item(
                TableName=self._table,
                Key={HASH_KEY: item[HASH_KEY]},
                UpdateExpression="SET #status = :expired, decidedAt = :now, resultPublished = :false",
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": STATUS},
                ExpressionAttributeValues={
                    ":expired": {"S": APPROVAL_STATUS_EXPIRED},
                    ":pending": {"S": APPROVAL_STATUS_PENDING},
                    ":now": {"S": keys.iso_utc(now)},
                    ":false": {"BOOL": False},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            # Another request recorded the auto-reject first.
            return DecisionOutcome(410, {"status": APPROVAL_STATUS_EXPIRED, "message": "approval expired and was auto-rejected"})
        self._publish_result(updated, ACTION_AUTO_REJECT, results_topic_arn)
        return DecisionOutcome(
            410,
            {"status": APPROVAL_STATUS_EXPIRED, "message": "approval expired and was auto-rejected"},
            recorded_action=ACTION_AUTO_REJECT,
        )

    def _resend_unpublished(self, item: dict[str, Any], results_topic_arn: str) -> None:
        if item.get("resultPublished", {}).get("BOOL") is False:
            action = {
                APPROVAL_STATUS_APPROVED: ACTION_APPROVE,
                APPROVAL_STATUS_REJECTED: ACTION_REJECT,
            }.get(item[STATUS]["S"], ACTION_AUTO_REJECT)
            self._publish_result(item, action, results_topic_arn)

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
        try:
            publish_json(
                self._sns,
                topic_arn,
                subject=f"Approval {item[STATUS]['S'].lower()}: {item['alertId']['S']}",
                payload={
                    "alertId": item["alertId"]["S"],
                    "decision": action,
                    "status": item[STATUS]["S"],
                    "decidedAt": item.get("decidedAt", {}).get("S"),
                    "alert": item["alert"]["S"],
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


class AlertInFlight(RuntimeError):
    """Another invocation is delivering this alert right now: the message is retried later (by then
    it is delivered and skipped, or the other invocation died and its claim has lapsed)."""


class DeliveryLedger:
    """Remembers which alerts alert-processor has delivered, so SQS redeliveries and duplicate
    alerts (AlertQueue is at-least-once) neither open a second approval nor publish twice.

    Before delivering, an invocation claims the alert with a conditional write; a second invocation
    delivering the same alert at the same moment (SQS may hand a message, or a duplicate of it, to
    two at once) fails that write and hands its message back instead of delivering it again. The
    claim lapses at the invocation's deadline, so a delivery that dies mid-way is retried; the mark
    is written after delivery, so a failure in between means delivering again (at-least-once),
    never losing the alert.
    """

    def __init__(self, dynamodb: Any, table_name: str):
        self._ddb = dynamodb
        self._table = table_name

    @staticmethod
    def key(alert_id: str) -> dict[str, Any]:
        return {HASH_KEY: {"S": f"{DELIVERED_ALERT_KEY_PREFIX}{alert_id}"}}

    def claim(self, alert_id: str, *, now: datetime, lease_seconds: int) -> bool:
        """True: deliver the alert now, then mark_delivered (or release if delivery fails).
        False: it was delivered already. AlertInFlight: another invocation is delivering it."""
        from botocore.exceptions import ClientError

        epoch = int(now.timestamp())
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    **self.key(alert_id),
                    STATE: {"S": DELIVERY_STATE_CLAIMED},
                    LEASE: {"N": str(epoch + lease_seconds)},
                    TTL: {"N": str(epoch + DELIVERED_ALERT_RETENTION_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(#hash) OR (#state = :claimed AND #lease < :now)",
                ExpressionAttributeNames={"#hash": HASH_KEY, "#state": STATE, "#lease": LEASE},
                ExpressionAttributeValues={":claimed": {"S": DELIVERY_STATE_CLAIMED}, ":now": {"N": str(epoch)}},
            )
            return True
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
        item = self._ddb.get_item(TableName=self._table, Key=self.key(alert_id), ConsistentRead=True).get("Item")
        if item is None or item.get(STATE, {}).get("S") == DELIVERY_STATE_CLAIMED:
            raise AlertInFlight(f"alert {alert_id[:64]} is being delivered by another invocation")
        return False

    def release(self, alert_id: str) -> None:
        """Give up a claim after a failed delivery, so that the retry need not wait for it to lapse."""
        from botocore.exceptions import ClientError

        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={**self.key(alert_id), STATE: {"S": DELIVERY_STATE_CLAIMED}, LEASE: {"N": "0"}},
                ConditionExpression="#state = :claimed",
                ExpressionAttributeNames={"#state": STATE},
                ExpressionAttributeValues={":claimed": {"S": DELIVERY_STATE_CLAIMED}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def mark_delivered(self, alert_id: str, *, now: datetime) -> None:
        expires_at = int(now.timestamp()) + DELIVERED_ALERT_RETENTION_SECONDS
        self._ddb.put_item(
            TableName=self._table,
            Item={
                **self.key(alert_id),
                STATE: {"S": DELIVERY_STATE_DELIVERED},
                TTL: {"N": str(expires_at)},
                "deliveredAt": {"S": keys.iso_utc(now)},
            },
        )
