"""AlertQueue / PendingApprovals / SNS senders over the low-level clients."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from patternwatch_shared import strict_json
from patternwatch_shared.models import AlertMessage
from patternwatch_shared.storage import is_aws_error

logger = logging.getLogger(__name__)

SQS_BATCH_LIMIT = 10
SNS_SUBJECT_LIMIT = 100


def alert_json(alert: AlertMessage) -> str:
    return alert.model_dump_json(exclude_none=True)


class AlertQueue:
    def __init__(self, sqs_client: Any, queue_url: str):
        self._sqs = sqs_client
        self._url = queue_url

    def send(self, alerts: Sequence[AlertMessage]) -> set[str]:
        """Send alerts in batches of 10. Returns the alertIds that could not be queued."""
        failed: set[str] = set()
        for start in range(0, len(alerts), SQS_BATCH_LIMIT):
            chunk = alerts[start : start + SQS_BATCH_LIMIT]
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": alert_json(alert),
                    "MessageAttributes": {"severity": {"DataType": "String", "StringValue": alert.severity}},
                }
                for index, alert in enumerate(chunk)
            ]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            except Exception as error:
                if not is_aws_error(error):
                    raise
                logger.warning("alert batch send failed: %s", error)
                failed.update(alert.alertId for alert in chunk)
                continue
            for failure in response.get("Failed", []):
                failed.add(chunk[int(failure["Id"])].alertId)
        return failed


def send_json(sqs_client: Any, queue_url: str, payload: dict[str, Any]) -> None:
    sqs_client.send_message(QueueUrl=queue_url, MessageBody=strict_json.dumps(payload))


def publish_json(
    sns_client: Any, topic_arn: str, subject: str, payload: dict[str, Any], attributes: dict[str, str], *, email: str | None = None
) -> None:
    """Publish `payload` as JSON; with `email`, e-mail subscribers get that text instead (the other
    protocols, SQS and Lambda among them, still get the JSON)."""
    message = strict_json.dumps(payload)
    structure = {}
    if email is not None:
        message = strict_json.dumps({"default": message, "email": email})
        structure = {"MessageStructure": "json"}
    sns_client.publish(
        TopicArn=topic_arn,
        Subject=subject[:SNS_SUBJECT_LIMIT],
        Message=message,
        MessageAttributes={key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()},
        **structure,
    )
