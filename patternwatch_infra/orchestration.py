"""Orchestration layer: the analysis workflow and the EventBridge rules.

Creates:
- Step Functions `PatternAnalysisWorkflow-<s>` (EXPRESS): validate -> 3 families in parallel -> score ->
  decide on PatternDetector:live; errors go to ManualReview (SNS, the ops topic); its role, a
  KMS-encrypted log group (level ALL) and X-Ray tracing
- EventBridge `threshold-check-<s>` (every 5 minutes -> ThresholdChecker:live) and
  `pattern-detected-<s>` (PatternDetected events at or above the confidence threshold -> the analysis
  workflow, through a role that may only start that one machine)
- for each rule's target: a retry policy and its own encrypted dead-letter queue
  (`ThresholdCheckRule-DLQ-<s>`, `PatternDetectedRule-DLQ-<s>`) that only that rule may send to

The state machine definition is data (patternwatch_infra/workflows/); every Resource in it is an alias ARN
of a compute-layer function. The power tuner is tooling and has a stack of its own (power_tuner.py).
"""
from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import (
    CloudwatchEventTarget,
    CloudwatchEventTargetDeadLetterConfig,
    CloudwatchEventTargetRetryPolicy,
)
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from constructs import Construct
from patternwatch_shared.names.messages import (
    EVENT_DETAIL_TYPE_PATTERN_DETECTED, EVENT_FIELD_CONFIDENCE, EVENT_SOURCE_PATTERNS, THRESHOLD_CHECK_RULE_BASE_NAME,
)

from .architecture_layer import ArchitectureLayer
from .blocks import EncryptedQueue, ServiceSender
from .compute import USE_KEY, ComputeLayer
from .config import EnvironmentConfig
from .data import DataLayer
from .function import LIVE_ALIAS
from .naming import Naming
from .policies import condition, statement
from .state_machines import encrypted_state_machine, workflow_log_group, workflow_telemetry_statements
from .workflows import analysis

THRESHOLD_CHECK_SCHEDULE = "rate(5 minutes)"
# EventBridge retries a delivery its target refused (throttled, missing, not permitted) with backoff; after
# this many attempts or this long the event goes to the rule's dead-letter queue, whose alarm pages operators.
# An hour: a threshold check that late is superseded by twelve newer ones, and a pattern analysed that late
# is better looked at by a person.
EVENT_TARGET_MAX_RETRY_ATTEMPTS = 8
EVENT_TARGET_MAX_EVENT_AGE_SECONDS = 3600


class OrchestrationLayer(ArchitectureLayer):
    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, naming: Naming, data: DataLayer, compute: ComputeLayer,
    ) -> None:
        super().__init__(scope, id, config=config, naming=naming)
        self.data = data
        self.compute = compute
        naming = self.naming
        key_arn = data.kms_key.arn

        # --- Pattern analysis (EXPRESS) ------------------------------------------------------------
        detector_alias = compute.pattern_detector.alias.arn
        review_topic = data.ops_topic.topic.arn
        self.analysis_log_group = workflow_log_group(
            self, "analysis_log_group", naming=naming, machine_name="PatternAnalysisWorkflow",
            retention_days=config.lambda_.log_retention_days, kms_key=data.kms_key,
        )
        self.analysis_role = self.service_role(
            "analysis_role",
            "PatternAnalysisWorkflow",
            "states.amazonaws.com",
            [
                statement(sid="InvokePatternDetector", actions=["lambda:InvokeFunction"], resources=[detector_alias]),
                statement(sid="PublishManualReviews", actions=["sns:Publish"], resources=[review_topic]),
                # The review topic and the state machine itself are encrypted with the platform key.
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=[key_arn]),
                *workflow_telemetry_statements(),
            ],
        )
        self.analysis_definition = analysis.definition(detector_arn=detector_alias, review_topic_arn=review_topic)
        self.analysis_state_machine = encrypted_state_machine(
            self, "analysis_workflow", naming=naming, base_name="PatternAnalysisWorkflow", machine_type="EXPRESS",
            definition=self.analysis_definition, role=self.analysis_role, log_group=self.analysis_log_group, kms_key=data.kms_key,
        )

        # --- EventBridge -----------------------------------------------------------------------------
        checker = compute.threshold_checker
        self.threshold_rule = CloudwatchEventRule(
            self,
            "threshold_check_rule",
            name=naming.name(THRESHOLD_CHECK_RULE_BASE_NAME),
            description="Runs ThresholdChecker:live every five minutes",
            schedule_expression=THRESHOLD_CHECK_SCHEDULE,
        )
        self.threshold_target, self.threshold_rule_dlq = self._target_with_dead_letters(
            "threshold_check", "ThresholdCheckRule", self.threshold_rule, target_id="ThresholdChecker", arn=checker.alias.arn
        )
        self.threshold_permission = LambdaPermission(
            self,
            "threshold_check_permission",
            statement_id="AllowThresholdCheckSchedule",
            action="lambda:InvokeFunction",
            function_name=checker.function.function_name,
            qualifier=LIVE_ALIAS,
            principal="events.amazonaws.com",
            source_arn=self.threshold_rule.arn,
        )

        self.pattern_event_pattern = {
            "source": [EVENT_SOURCE_PATTERNS],
            "detail-type": [EVENT_DETAIL_TYPE_PATTERN_DETECTED],
            "detail": {EVENT_FIELD_CONFIDENCE: [{"numeric": [">=", config.alerts.confidence_threshold]}]},
        }
        self.pattern_rule = CloudwatchEventRule(
            self,
            "pattern_detected_rule",
            name=naming.name("pattern-detected"),
            description="High-confidence PatternDetected events start PatternAnalysisWorkflow",
            event_pattern=json.dumps(self.pattern_event_pattern, separators=(",", ":")),
        )
        machine_arn = self.analysis_state_machine.arn
        self.events_role = self.service_role(
            "events_role",
            "PatternEvents",
            "events.amazonaws.com",
            [
                statement(sid="StartAnalysisWorkflow", actions=["states:StartExecution"], resources=[machine_arn]),
                # The machine is encrypted with the platform key, and a new execution's input is encrypted
                # with the caller's key permissions; the condition limits the key to that one machine.
                statement(
                    sid="EncryptWorkflowInput",
                    actions=["kms:GenerateDataKey"],
                    resources=[key_arn],
                    conditions=[condition("StringEquals", "kms:EncryptionContext:aws:states:stateMachineArn", machine_arn)],
                ),
            ],
        )
        self.pattern_target, self.pattern_rule_dlq = self._target_with_dead_letters(
            "pattern_detected",
            "PatternDetectedRule",
            self.pattern_rule,
            target_id="PatternAnalysisWorkflow",
            arn=machine_arn,
            role_arn=self.events_role.role.arn,
            # The workflow's input is the event's detail: {"symbol", "bars", ...}.
            input_path="$.detail",
        )
        self.rule_dead_letter_queues = [self.threshold_rule_dlq, self.pattern_rule_dlq]

        self.output("analysis_state_machine_arn", machine_arn, description="PatternAnalysisWorkflow ARN")
        self.output("threshold_check_rule_name", self.threshold_rule.name, description="EventBridge schedule for ThresholdChecker")
        self.output("pattern_detected_rule_name", self.pattern_rule.name, description="EventBridge rule starting the analysis workflow")
        self.output("threshold_check_rule_dlq_url", self.threshold_rule_dlq.queue.url, description="events the schedule could not deliver")
        self.output("pattern_detected_rule_dlq_url", self.pattern_rule_dlq.queue.url, description="events the pattern rule could not deliver")

    def _target_with_dead_letters(
        self, id_prefix: str, dlq_base_name: str, rule: CloudwatchEventRule, **target
    ) -> tuple[CloudwatchEventTarget, EncryptedQueue]:
        """The rule's target (`<id_prefix>_target`), with bounded retries, and its dead-letter queue
        (`<id_prefix>_rule_dlq`, `<dlq_base_name>-DLQ-<s>`): encrypted, keeping events 14 days, and only this
        rule may send to it (EventBridge dead-letters with the queue's policy, not with a role of ours)."""
        dead_letter_queue = EncryptedQueue.for_failures(
            self,
            f"{id_prefix}_rule_dlq",
            queue_name=self.naming.name(f"{dlq_base_name}-DLQ"),
            kms_key=self.data.kms_key,
            service_senders=[ServiceSender("AllowThisRuleToDeadLetter", "events.amazonaws.com", [rule.arn])],
        )
        event_target = CloudwatchEventTarget(
            self,
            f"{id_prefix}_target",
            rule=rule.name,
            retry_policy=CloudwatchEventTargetRetryPolicy(
                maximum_retry_attempts=EVENT_TARGET_MAX_RETRY_ATTEMPTS, maximum_event_age_in_seconds=EVENT_TARGET_MAX_EVENT_AGE_SECONDS
            ),
            dead_letter_config=CloudwatchEventTargetDeadLetterConfig(arn=dead_letter_queue.queue.arn),
            **target,
        )
        return event_target, dead_letter_queue
