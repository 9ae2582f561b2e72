"""Monitoring layer: dashboard, alarms, anomaly detection and billing guardrails.

Creates:
- dashboard `PatternDetectionDashboard-<s>` (patternwatch_infra/dashboard.py: the widgets as data)
- `PatternDetectionDuration-Anomaly-<s>`: an ANOMALY_DETECTION_BAND alarm on the stream's detection time
- alarms on dead-letter and failure queue depth (the work queues' DLQs, the stream's failures, the
  threshold checker's DLQ and each EventBridge rule's DLQ), analysis workflow failures and API 5xx
- `PatternWatchPlatformHealth-<s>`: one composite alarm over those and every function's error,
  throttle and iterator-age alarm, so operators get one page for "the platform is unhealthy"
- `PatternWatchBilling-<s>` on AWS/Billing EstimatedCharges (us-east-1, threshold from config) and an
  AWS Budgets monthly cost budget `PatternWatchMonthly-<s>` with actual and forecast notifications
Every alarm and budget notification goes to the ops topic (data.ops_topic).
"""
from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.budgets_budget import BudgetsBudget, BudgetsBudgetCostFilter, BudgetsBudgetNotification
from cdktf_cdktf_provider_aws.cloudwatch_composite_alarm import CloudwatchCompositeAlarm
from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm, CloudwatchMetricAlarmMetricQuery
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct
from patternwatch_shared.names.functions import KINESIS_CONSUMER
from patternwatch_shared.names.metrics import (
    DIMENSION_PATTERN_TYPE, DIMENSION_SERVICE, METRICS_NAMESPACE, METRIC_PATTERN_DETECTION_DURATION,
    PATTERN_TYPE_ALL,
)

from . import dashboard
from .alarms import ABOVE_BAND, THREE_OF_FIVE_MINUTES, Evaluation, Metric, alarm
from .api import ApiLayer
from .architecture_layer import ArchitectureLayer
from .compute import ComputeLayer
from .config import EnvironmentConfig
from .data import DataLayer
from .emulator import deployable
from .naming import Naming
from .orchestration import OrchestrationLayer

# AWS publishes billing metrics only in us-east-1, and an alarm can only notify a topic in its own region.
BILLING_REGION = "us-east-1"
# EstimatedCharges is updated a few times a day; a shorter period only adds empty datapoints.
BILLING_PERIOD_SECONDS = 6 * 3600
ANOMALY_PERIOD_SECONDS = 300
# Workflow failures and queue depth: any breach in a five-minute period.
FIVE_MINUTES = Evaluation(period_seconds=300)
# Band width in standard deviations: 2 is CloudWatch's default and tolerates normal market-hours swings.
ANOMALY_BAND_STDDEVS = 2
ANOMALY_EVALUATION_PERIODS = 3
ANOMALY_DATAPOINTS_TO_ALARM = 2
# Budget notifications: warn at 80% of actual spend, and when the month is forecast to go over.
BUDGET_ACTUAL_PERCENT = 80
BUDGET_FORECAST_PERCENT = 100
# The environment's own resources, by the Environment cost tag (an activated cost allocation tag).
BUDGET_TAG = "Environment"


def billing_alarm_region_check(region: str) -> None:
    """The billing alarm notifies the ops topic, so the stack must live where billing metrics do."""
    if region != BILLING_REGION:
        raise ValueError(
            f"region {region}: the billing alarm lives in {BILLING_REGION} and CloudWatch can only notify a topic in the "
            f"alarm's region; give this environment an ops topic in {BILLING_REGION} before deploying it elsewhere"
        )


class MonitoringLayer(ArchitectureLayer):
    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, naming: Naming, data: DataLayer, compute: ComputeLayer,
        api: ApiLayer, orchestration: OrchestrationLayer, billing_provider: AwsProvider,
    ) -> None:
        super().__init__(scope, id, config=config, naming=naming)
        self.data = data
        self.compute = compute
        self.api = api
        self.orchestration = orchestration
        # AWS publishes billing metrics only in us-east-1, whatever the stack's region.
        self.billing_provider = billing_provider
        naming = self.naming
        self.ops_topic_arn = data.ops_topic.topic.arn
        self.alarm_actions = [self.ops_topic_arn]

        self.duration_anomaly_alarm = self._duration_anomaly_alarm()
        self.dead_letter_alarms = [
            self._queue_depth_alarm(f"{queue_id}_dlq_depth", f"{base}-DLQ-Depth", queue.dead_letter_queue, config.alarms.dlq_depth, "messages failed every retry")
            for queue_id, base, queue in (
                ("alert_queue", "AlertQueue", data.alert_queue),
                ("pending_approvals", "PendingApprovals", data.pending_approvals_queue),
            )
        ]
        self.stream_failure_alarm = self._queue_depth_alarm(
            "stream_failures_depth", "StreamConsumerFailures-Depth", data.stream_failure_queue.queue, 1, "Kinesis records the consumer gave up on"
        )
        # Asynchronous deliveries that failed every retry: the checker's own events, and each rule's undeliverable events.
        self.async_failure_alarms = [
            self._queue_depth_alarm(f"{queue_id}_depth", f"{base}-DLQ-Depth", queue.queue, config.alarms.dlq_depth, what)
            for queue_id, base, queue, what in (
                ("threshold_checker_dlq", "ThresholdChecker", data.threshold_checker_dlq, "threshold checks that failed every retry"),
                ("threshold_check_rule_dlq", "ThresholdCheckRule", orchestration.threshold_rule_dlq, "schedule events EventBridge could not deliver"),
                ("pattern_detected_rule_dlq", "PatternDetectedRule", orchestration.pattern_rule_dlq, "PatternDetected events EventBridge could not deliver"),
            )
        ]
        self.workflow_failure_alarm = self._alarm(
            "analysis_workflow_failures",
            "PatternAnalysisWorkflow-Failures",
            "PatternAnalysisWorkflow executions failed (each one was sent to manual review)",
            Metric("AWS/States", "ExecutionsFailed", "Sum", {"StateMachineArn": orchestration.analysis_state_machine.arn}),
            threshold=1,
        )
        api_stage = {"ApiName": api.rest_api.name, "Stage": api.stage.stage_name}
        self.api_errors_alarm = self._alarm(
            "api_5xx",
            "PatternDetectionApi-5XXError",
            "The REST API is answering with server errors",
            Metric("AWS/ApiGateway", "5XXError", "Sum", api_stage),
            threshold=config.alarms.api_5xx_errors_per_minute,
            evaluation=THREE_OF_FIVE_MINUTES,
        )
        # What tooling/release.py watches while a new API deployment is on the stage's canary.
        self.api_release_alarms = [self.api_errors_alarm]

        self.health_members = [
            *(member for f in compute.functions for member in f.health_alarms),
            self.duration_anomaly_alarm,
            *self.dead_letter_alarms,
            self.stream_failure_alarm,
            *self.async_failure_alarms,
            self.workflow_failure_alarm,
            self.api_errors_alarm,
        ]
        self.platform_health_alarm: CloudwatchCompositeAlarm | None = None
        if deployable(config, "aws_cloudwatch_composite_alarm"):
            self.platform_health_alarm = CloudwatchCompositeAlarm(
                self,
                "platform_health",
                alarm_name=naming.name("PatternWatchPlatformHealth"),
                alarm_description="Any part of the platform is unhealthy: ingest, detection, alerts, approvals, workflows or the API",
                alarm_rule=" OR ".join(f'ALARM("{alarm.alarm_name}")' for alarm in self.health_members),
                alarm_actions=self.alarm_actions,
                ok_actions=self.alarm_actions,
            )

        billing_alarm_region_check(config.region)
        self.billing_alarm = self._alarm(
            "billing",
            "PatternWatchBilling",
            f"Estimated charges this month reached {config.alarms.billing_threshold_usd:g} USD",
            Metric("AWS/Billing", "EstimatedCharges", "Maximum", {"Currency": "USD"}),
            threshold=config.alarms.billing_threshold_usd,
            evaluation=Evaluation(period_seconds=BILLING_PERIOD_SECONDS),
            provider=billing_provider,
            notify_ok=False,  # a bill going down again is not news
        )
        self.budget = BudgetsBudget(
            self,
            "monthly_budget",
            name=naming.name("PatternWatchMonthly"),
            # Set explicitly: the emulator cannot infer it, and it pins the budget to this environment's account.
            account_id=data.caller.account_id,
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{config.alarms.billing_threshold_usd:.2f}",
            limit_unit="USD",
            cost_filter=[BudgetsBudgetCostFilter(name="TagKeyValue", values=[f"user:{BUDGET_TAG}${config.tags[BUDGET_TAG]}"])],
            notification=[
                BudgetsBudgetNotification(
                    comparison_operator="GREATER_THAN",
                    notification_type=kind,
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                    subscriber_sns_topic_arns=[self.ops_topic_arn],
                )
                for kind, percent in (("ACTUAL", BUDGET_ACTUAL_PERCENT), ("FORECASTED", BUDGET_FORECAST_PERCENT))
            ],
        )

        self.dashboard_body = dashboard.body(
            dashboard.DashboardInputs(
                region=config.region,
                function_names=[f.function_name for f in compute.functions],
                kinesis_consumer_function=compute.kinesis_consumer.function_name,
                stream_name=data.market_data_stream.name,
                fan_out_name=data.market_data_fan_out.name,
                queue_names=[data.alert_queue.queue.name, data.pending_approvals_queue.queue.name, data.stream_failure_queue.queue.name],
                dead_letter_queue_names=[
                    data.alert_queue.dead_letter_queue.name,
                    data.pending_approvals_queue.dead_letter_queue.name,
                    data.threshold_checker_dlq.queue.name,
                    *(queue.queue.name for queue in orchestration.rule_dead_letter_queues),
                ],
                api_name=api.rest_api.name,
                api_stage=api.stage.stage_name,
                web_acl_name=api.web_acl.name,
                state_machine_arns=[orchestration.analysis_state_machine.arn],
                alarm_arns=[
                    *([self.platform_health_alarm.arn] if self.platform_health_alarm is not None else []),
                    self.duration_anomaly_alarm.arn,
                    self.workflow_failure_alarm.arn,
                ],
            )
        )
        self.dashboard = CloudwatchDashboard(
            self, "dashboard", dashboard_name=naming.name("PatternDetectionDashboard"), dashboard_body=json.dumps(self.dashboard_body)
        )

        self.output("dashboard_name", self.dashboard.dashboard_name, description="CloudWatch dashboard")
        if self.platform_health_alarm is not None:
            self.output("platform_health_alarm_name", self.platform_health_alarm.alarm_name, description="composite platform health alarm")
        self.output("ops_topic_arn", self.ops_topic_arn, description="SNS topic every alarm notifies")
        self.output(
            "api_release_alarm_names", [a.alarm_name for a in self.api_release_alarms], description="alarms an API release watches"
        )

    def _alarm(
        self, id: str, base_name: str, description: str, metric: Metric, *, evaluation: Evaluation = FIVE_MINUTES, **options
    ) -> CloudwatchMetricAlarm:
        """`<base name>-<s>` on one metric, notifying the ops topic."""
        return alarm(
            self, id, name=self.naming.name(base_name), description=description, metric=metric, actions=self.alarm_actions, evaluation=evaluation, **options
        )

    def _duration_anomaly_alarm(self) -> CloudwatchMetricAlarm:
        """Detection time is judged against its own learned pattern, not a fixed number of milliseconds."""
        dimensions = {DIMENSION_SERVICE: KINESIS_CONSUMER.service_name, DIMENSION_PATTERN_TYPE: PATTERN_TYPE_ALL}
        duration = Metric(METRICS_NAMESPACE, METRIC_PATTERN_DETECTION_DURATION, "Average", dimensions)
        band = CloudwatchMetricAlarmMetricQuery(
            id="band", expression=f"ANOMALY_DETECTION_BAND(duration, {ANOMALY_BAND_STDDEVS})", label="expected detection duration", return_data=True
        )
        return alarm(
            self,
            "duration_anomaly",
            name=self.naming.name(f"{METRIC_PATTERN_DETECTION_DURATION}-Anomaly"),
            description="Stream pattern detection is slower than its anomaly-detection band",
            queries=[duration.query("duration", period=ANOMALY_PERIOD_SECONDS, return_data=True), band],
            comparison=ABOVE_BAND,
            band_id="band",
            actions=self.alarm_actions,
            evaluation=Evaluation(periods=ANOMALY_EVALUATION_PERIODS, datapoints=ANOMALY_DATAPOINTS_TO_ALARM),
        )

    def _queue_depth_alarm(self, id: str, base_name: str, queue: SqsQueue, threshold: int, what: str) -> CloudwatchMetricAlarm:
        depth = Metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", {"QueueName": queue.name})
        return self._alarm(id, base_name, f"{base_name.removesuffix('-Depth')}: {what}", depth, threshold=threshold)
