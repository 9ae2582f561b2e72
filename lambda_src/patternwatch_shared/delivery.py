"""alert-processor's claim on an alert: one delivery per alert, however often AlertQueue hands it over.

AlertQueue is at-least-once, and the same alert can also be queued twice (the stream and the workflow
both find a pattern). The claim is a conditional write taken BEFORE any side effect, so of any number of
concurrent deliveries exactly one goes on to publish or open the approval; the others find the alert
delivered (and skip it) or being delivered (AlertInFlight: their message fails and SQS hands it back
later, when it is delivered and skipped, or its holder died and the claim can be taken over; so no copy
of an alert is dropped while its delivery may still fail). Checking a ledger first and writing it after
the side effects (what this replaced) let 20 of 20 concurrent deliveries through.

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
    DELIVERY_LEASE_ATTRIBUTE, DELIVERY_STATE_ATTRIBUTE, DELIVERY_STATE_CLAIMED, DELIVERY_STATE_DELIVERED,
)
from patternwatch_shared.storage import error_code

CLAIMED = DELIVERY_STATE_CLAIMED
DELIVERED = DELIVERY_STATE_DELIVERED
STATE = DELIVERY_STATE_ATTRIBUTE
LEASE = DELIVERY_LEASE_ATTRIBUTE


@dataclass(frozen=True)
class Claim:
    alert_id: str
    claim_id: str


class AlertInFlight(RuntimeError):
    """Another invocation is delivering this alert right now: the message fails, and SQS retries it later."""


class DeliveryClaims:
    def __init__(self, dynamodb: Any, table_name: str):
        self._ddb = dynamodb
        self._table = table_name

    @staticmethod
    def key(alert_id: str) -> dict[str, Any]:
        return {APPROVAL_PARTITION_KEY: {"S": f"{DELIVERED_ALERT_KEY_PREFIX}{alert_id}"}}

    def claim(self, alert_id: str, *, now: datetime, lease_seconds: float) -> Claim | None:
        """The claim: deliver, then mark_delivered (or release after a failure). None: delivered already.
        AlertInFlight: another delivery holds a live claim."""
        from botocore.exceptions import ClientError

        claim = Claim(alert_id, str(uuid.uuid4()))
        epoch = int(now.timestamp())
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    **self.key(alert_id),
                    STATE: {"S": CLAIMED},
                    "claimId": {"S": claim.claim_id},
                    "claimedAt": {"S": keys.iso_utc(now)},
                    LEASE: {"N": str(epoch + max(1, int(lease_seconds)))},
                    APPROVAL_TTL_ATTRIBUTE: {"N": str(epoch + DELIVERED_ALERT_RETENTION_SECONDS)},
                },
                # New, or a claim whose holder's lease ran out without delivering.
                ConditionExpression="attribute_not_exists(#key) OR (#state = :claimed AND #lease < :now)",
                ExpressionAttributeNames={"#key": APPROVAL_PARTITION_KEY, "#state": STATE, "#lease": LEASE},
                ExpressionAttributeValues={":claimed": {"S": CLAIMED}, ":now": {"N": str(epoch)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            held = error.response.get("Item", {})
            # A ledger entry from before claims (no state) records a delivery too.
            if held.get(STATE, {}).get("S", DELIVERED) != DELIVERED:
                raise AlertInFlight(f"alert {alert_id[:64]} is being delivered by another invocation") from None
            return None
        return claim

    def release(self, claim: Claim) -> None:
        """Give the claim back after a failed delivery, so the retry need not wait for the lease."""
        from botocore.exceptions import ClientError

        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key=self.key(claim.alert_id),
                ConditionExpression="claimId = :mine AND #state = :claimed",
                ExpressionAttributeNames={"#state": STATE},
                ExpressionAttributeValues={":mine": {"S": claim.claim_id}, ":claimed": {"S": CLAIMED}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def mark_delivered(self, claim: Claim, *, now: datetime) -> None:
        self._ddb.update_item(
            TableName=self._table,
            Key=self.key(claim.alert_id),
            UpdateExpression="SET #state = :delivered, deliveredAt = :now REMOVE #lease",
            ConditionExpression="claimId = :mine",
            ExpressionAttributeNames={"#state": STATE, "#lease": LEASE},
            ExpressionAttributeValues={":delivered": {"S": DELIVERED}, ":now": {"S": keys.iso_utc(now)}, ":mine": {"S": claim.claim_id}},
        )
