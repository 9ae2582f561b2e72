"""alert-processor: AlertQueue (SQS) -> each alert's evidence to the data bucket; then CRITICAL alerts start
a human approval, others go to TradingAlerts.

Each message succeeds or fails on its own (partial batch response); failed messages are redelivered
by SQS and dead-lettered after the queue's maxReceiveCount. Each alert is claimed before anything
happens for it (patternwatch_shared.delivery), so concurrent and repeated deliveries act once.
"""
from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from patternwatch_shared import aws
from patternwatch_shared.alert_evidence import EvidenceWriter
from patternwatch_shared.approvals import ApprovalWorkflow
from patternwatch_shared.approvers import parse_approvers
from patternwatch_shared.batch import ReportingBatchProcessor, batch_handler
from patternwatch_shared.config import EnvReader
from patternwatch_shared.decoding import decode_alert_body
from patternwatch_shared.delivery import Claim, DeliveryClaims
from patternwatch_shared.messaging import alert_json
from patternwatch_shared.models import AlertMessage, build_validators, utc_now
from patternwatch_shared.names.functions import (
    ALERT_PROCESSOR, ENV_APPROVAL_API_BASE_URL, ENV_APPROVAL_EXPIRY_SECONDS, ENV_APPROVAL_REQUESTS_TOPIC_ARN,
    ENV_APPROVAL_TABLE, ENV_APPROVERS, ENV_DATA_BUCKET, ENV_PENDING_APPROVALS_QUEUE_URL, ENV_TRADING_ALERTS_TOPIC_ARN,
    ENV_TRADING_PATTERNS_TABLE,
)
from patternwatch_shared.names.messages import MAX_APPROVAL_EXPIRY_SECONDS, SEVERITY_CRITICAL
from patternwatch_shared.names.metrics import (
    DIMENSION_SEVERITY, METRIC_ALERT_PRIORITY, METRIC_APPROVALS_REQUESTED, METRIC_DUPLICATE_ALERTS_SKIPPED,
    METRIC_RECORDS_REJECTED,
)
from patternwatch_shared.storage import TradingPatternsTable
from patternwatch_shared.telemetry import DimensionedMetrics, powertools_for

SPEC = ALERT_PROCESSOR
build_validators(AlertMessage)
logger, tracer, metrics = powertools_for(SPEC)
processor = ReportingBatchProcessor(EventType.SQS, logger)
# A claim's lease outlasts the invocation that holds it by this much (clock skew between instances).
CLAIM_LEASE_MARGIN_SECONDS = 10


class AlertRouter:
    """Routes one invocation's alerts; built per invocation so settings are read when they apply."""

    def __init__(self, context: LambdaContext) -> None:
        env = EnvReader(SPEC)
        table = env.require(ENV_APPROVAL_TABLE)
        self.context = context
        self.approvals = ApprovalWorkflow(aws.client("dynamodb"), table, sqs=aws.client("sqs"), sns=aws.client("sns"))
        self.claims = DeliveryClaims(aws.client("dynamodb"), table)
        self.approvers = parse_approvers(env.require(ENV_APPROVERS))
        self.expiry_seconds = int(env.require_float(ENV_APPROVAL_EXPIRY_SECONDS, minimum=60, maximum=MAX_APPROVAL_EXPIRY_SECONDS))
        self.api_base_url = env.require(ENV_APPROVAL_API_BASE_URL)
        self.pending_queue_url = env.require(ENV_PENDING_APPROVALS_QUEUE_URL)
        self.requests_topic_arn = env.require(ENV_APPROVAL_REQUESTS_TOPIC_ARN)
        self.alerts_topic_arn = env.require(ENV_TRADING_ALERTS_TOPIC_ARN)
        self.priorities = DimensionedMetrics(SPEC.service_name)
        trading_patterns = TradingPatternsTable(aws.client("dynamodb"), env.require(ENV_TRADING_PATTERNS_TABLE))
        self.evidence = EvidenceWriter(aws.client("s3"), env.require(ENV_DATA_BUCKET), trading_patterns)

    def handle(self, record: SQSRecord) -> None:
        logger.set_correlation_id(record.message_id)
        logger.remove_keys(["alert_id"])  # the previous message's, if it failed
        alert = decode_alert_body(record.body)
        logger.append_keys(alert_id=alert.alertId)
        # Held until this invocation can no longer be running, so a live holder is never overtaken.
        lease = self.context.get_remaining_time_in_millis() / 1000 + CLAIM_LEASE_MARGIN_SECONDS
        # AlertInFlight (another delivery holds it now) fails this message: SQS hands it back later.
        claim = self.claims.claim(alert.alertId, now=utc_now(), lease_seconds=lease)
        if claim is None:
            logger.info("alert already delivered; skipped")
            metrics.add_metric(name=METRIC_DUPLICATE_ALERTS_SKIPPED, unit=MetricUnit.Count, value=1)
            return
        try:
            self.deliver(alert)
        except Exception:
            self.release(claim)
            raise
        try:
            self.claims.mark_delivered(claim, now=utc_now())
        except Exception:
            # Delivered already: failing the message now would only deliver it again.
            logger.warning("alert delivered but its claim not marked delivered", exc_info=True)
        self.priorities.add(METRIC_ALERT_PRIORITY, MetricUnit.Count, DIMENSION_SEVERITY, alert.severity, 1)

    def release(self, claim: Claim) -> None:
        """SQS redelivers the failed message and the retry claims the alert again (or, if this release
        fails too, once the claim's lease has run out)."""
        try:
            self.claims.release(claim)
        except Exception:
            logger.warning("claim not released; its lease frees it", exc_info=True)

    def deliver(self, alert: AlertMessage) -> None:
        # Evidence first: nothing is published about an alert whose evidence is not stored (a failed
        # write raises: the claim is released, the message fails and is retried).
        evidence = self.evidence.write(alert).written_keys()
        logger.info("evidence written", extra={"evidence": evidence})
        if alert.severity != SEVERITY_CRITICAL:
            publish_alert(alert, self.alerts_topic_arn)
            return
        opened = self.approvals.open(
            alert,
            self.approvers,
            evidence=evidence,
            now=utc_now(),
            expiry_seconds=self.expiry_seconds,
            api_base_url=self.api_base_url,
            pending_queue_url=self.pending_queue_url,
            requests_topic_arn=self.requests_topic_arn,
        )
        metrics.add_metric(name=METRIC_APPROVALS_REQUESTED, unit=MetricUnit.Count, value=1)
        logger.info(
            "approval requested",
            extra={"deadline": opened.deadline, "approvers": sorted(opened.tokens), "already_requested": list(opened.already_requested)},
        )


def publish_alert(alert: AlertMessage, topic_arn: str) -> None:
    subject = f"{alert.severity} {alert.pattern or 'threshold'} {alert.symbol or ''}".strip()
    aws.client("sns").publish(
        TopicArn=topic_arn,
        Subject=subject[:100],
        Message=alert_json(alert),
        MessageAttributes={"severity": {"DataType": "String", "StringValue": alert.severity}},
    )


@batch_handler("SQS", logger, tracer, metrics)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    router = AlertRouter(context)
    try:
        response = process_partial_response(event=event, record_handler=router.handle, processor=processor, context=context)
    finally:
        router.priorities.flush()
    metrics.add_metric(name=METRIC_RECORDS_REJECTED, unit=MetricUnit.Count, value=processor.rejected)
    return response
