"""alert-processor's claim on an alert: one delivery per alert, however often AlertQueue hands it over.

AlertQueue is at-least-once, and the same alert can also be queued twice (the stream and the workflow
both find a pattern). The claim is a conditional write taken BEFORE any side effect, so of any number of
concurrent deliveries exactly one goes on to publish or open the approval; the others see the claim and
skip. Checking a ledger first and writing it after the side effects (what this replaced) let 20 of 20
concurrent deliveries through.

A claim whose side effects failed must not block the alert for good:
- the failing delivery releases its claim (a conditional delete of its own claim), and SQS redelivers;
- a claim whose holder died without releasing it (timeout, crash) has a lease: once the lease is over,
  the next delivery may take it over. The lease outlasts the holder's invocation, so a live holder is
  never overtaken.
After the side effects the claim becomes DELIVERED and is kept for a day.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from patternwatch_shared import keys
from patternwatch_shared.names.table import (
    APPROVAL_PARTITION_KEY, APPROVAL_TTL_ATTRIBUTE, DELIVERED_ALERT_KEY_PREFIX, DELIVERED_ALERT_RETENTION_SECONDS,
)
from patternwatch_shared.storage import error_code

CLAIMED = "CLAIMED"
DELIVERED = "DELIVERED"


@dataclass(frozen=True)
class Claim:
    alert_id: str
    claim_id: str


@dataclass(frozen=True)
class Refusal:
    """Why a delivery may not go ahead: the alert was delivered, or another delivery holds it now."""

    delivered: bool


class DeliveryClaims:
    def __init__(self, dynamodb: Any, table_name: str):
        self._ddb = dynamodb
        self._table = table_name

    @staticmethod
    def key(alert_id: str) -> dict[str, Any]:
        return {APPROVAL_PARTITION_KEY: {"S": f"{DELIVERED_ALERT_KEY_PREFIX}{alert_id}"}}

    def claim(self, alert_id: str, *, now: datetime, lease_seconds: float) -> Claim | Refusal:
        from botocore.exceptions import ClientError

        claim = Claim(alert_id, str(uuid.uuid4()))
        epoch = int(now.timestamp())
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    **self.key(alert_id),
                    "claimState": {"S": CLAIMED},
                    "claimId": {"S": claim.claim_id},
                    "claimedAt": {"S": keys.iso_utc(now)},
                    "leaseUntil": {"N": str(epoch + max(1, int(lease_seconds)))},
                    APPROVAL_TTL_ATTRIBUTE: {"N": str(epoch + DELIVERED_ALERT_RETENTION_SECONDS)},
                },
                # New, or a claim whose holder's lease ran out without delivering.
                ConditionExpression="attribute_not_exists(#key) OR (claimState = :claimed AND leaseUntil < :now)",
                ExpressionAttributeNames={"#key": APPROVAL_PARTITION_KEY},
                ExpressionAttributeValues={":claimed": {"S": CLAIMED}, ":now": {"N": str(epoch)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            held = error.response.get("Item", {})
            # A ledger entry from before claims (no claimState) records a delivery too.
            return Refusal(delivered=held.get("claimState", {}).get("S", DELIVERED) == DELIVERED)
        return claim

    def release(self, claim: Claim) -> None:
        """Give the claim back after a failed delivery, so the retry need not wait for the lease."""
        from botocore.exceptions import ClientError

        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key=self.key(claim.alert_id),
                ConditionExpression="claimId = :mine AND claimState = :claimed",
                ExpressionAttributeValues={":mine": {"S": claim.claim_id}, ":claimed": {"S": CLAIMED}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def mark_delivered(self, claim: Claim, *, now: datetime) -> None:
        self._ddb.update_item(
            TableName=self._table,
            Key=self.key(claim.alert_id),
            UpdateExpression="SET claimState = :delivered, deliveredAt = :now REMOVE leaseUntil",
            ConditionExpression="claimId = :mine",
            ExpressionAttributeValues={":delivered": {"S": DELIVERED}, ":now": {"S": keys.iso_utc(now)}, ":mine": {"S": claim.claim_id}},
        )
