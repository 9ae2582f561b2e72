"""Orchestration layer: the analysis and power-tuning workflows and the EventBridge rules.

Creates:
- Step Functions `PatternAnalysisWorkflow-<s>` (EXPRESS): validate -> 3 families in parallel -> score ->
  decide on PatternDetector:live; errors go to ManualReview (SNS, the ops topic)
- the power tuner: five functions `PowerTuning{Initializer,Executor,Cleaner,Analyzer,Optimizer}-<s>`
  (one code package, one least-privilege role each) and `PowerTuningWorkflow-<s>` (STANDARD)
- a role per state machine, KMS-encrypted log groups (level ALL) and X-Ray tracing on both
- EventBridge `threshold-check-<s>` (every 5 minutes -> ThresholdChecker:live) and
  `pattern-detected-<s>` (PatternDetected events at or above the confidence threshold -> the analysis
  workflow, through a role that may only start that one machine)

The state machine definitions are data (patternwatch_infra/workflows/); every Resource in them is an
alias ARN of a function built here or in the compute layer.
"""
from __future__ import annotations

import json
from dataclasses import replace

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.sfn_state_machine import (
    SfnStateMachine,
    SfnStateMachineEncryptionConfiguration,
    SfnStateMachineLoggingConfiguration,
    SfnStateMachineTracingConfiguration,
)
from constructs import Construct
from patternwatch_shared.names.functions import (
    POWER_TUNING_ANALYZER, POWER_TUNING_CLEANER, POWER_TUNING_EXECUTOR, POWER_TUNING_INITIALIZER,
    POWER_TUNING_OPTIMIZER, POWER_TUNING_PACKAGE, LambdaFunctionSpec,
)
from patternwatch_shared.names.messages import (
    EVENT_DETAIL_TYPE_PATTERN_DETECTED, EVENT_FIELD_CONFIDENCE, EVENT_SOURCE_PATTERNS, THRESHOLD_CHECK_RULE_BASE_NAME,
)

from .architecture_layer import ArchitectureLayer
from .blocks import ServiceRole, encrypted_log_group
from .compute import USE_KEY, ComputeLayer
from .config import EnvironmentConfig
from .data import DataLayer
from .function import LIVE_ALIAS, MonitoredFunction, canary_deployment_role, grant_canary_deployments
from .naming import Naming
from .packaging import Package, build_function
from .policies import condition, statement
from .workflows import analysis, power_tuning, render

THRESHOLD_CHECK_SCHEDULE = "rate(5 minutes)"
# Step Functions asks KMS for a new data key at most this often (its allowed range is 60-900 s).
KMS_DATA_KEY_REUSE_SECONDS = 300
# The executor invokes the function under test `num` times in a row; Lambda's maximum leaves the most room.
EXECUTOR_TIMEOUT_SECONDS = 900
# Publishing five versions waits for five configuration updates; two minutes each is generous.
TUNER_STEP_TIMEOUT_SECONDS = 300
# Vended-log delivery APIs have no resource-level permissions: AWS accepts only "*" for them.
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)
# X-Ray has no resource-level permissions either; the sampling calls are what Step Functions tracing adds.
WORKFLOW_XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets")
TUNING_ALIAS_PATTERN = "RAM*"


class OrchestrationLayer(ArchitectureLayer):
    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, naming: Naming, data: DataLayer, compute: ComputeLayer,
        tuner_package: Package | None = None,
    ) -> None:
        super().__init__(scope, id, config=config, naming=naming)
        self.data = data
        self.compute = compute
        naming = self.naming
        key_arn = data.kms_key.arn

        # --- Pattern analysis (EXPRESS) ------------------------------------------------------------
        detector_alias = compute.pattern_detector.alias.arn
        review_topic = data.ops_topic.topic.arn
        self.analysis_log_group = self._log_group("analysis_log_group", "PatternAnalysisWorkflow")
        self.analysis_role = self.service_role(
            "analysis_role",
            "PatternAnalysisWorkflow",
            "states.amazonaws.com",
            [
                statement(sid="InvokePatternDetector", actions=["lambda:InvokeFunction"], resources=[detector_alias]),
                statement(sid="PublishManualReviews", actions=["sns:Publish"], resources=[review_topic]),
                # The review topic and the state machine itself are encrypted with the platform key.
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=[key_arn]),
                *self._workflow_telemetry_statements(),
            ],
        )
        self.analysis_definition = analysis.definition(detector_arn=detector_alias, review_topic_arn=review_topic)
        self.analysis_state_machine = self._state_machine(
            "analysis_workflow",
            "PatternAnalysisWorkflow",
            "EXPRESS",
            self.analysis_definition,
            self.analysis_role,
            self.analysis_log_group,
        )

        # --- Power tuner: functions and workflow (STANDARD: runs can outlast Express's 5 minutes) ----
        self.tuner_package = tuner_package or build_function(POWER_TUNING_PACKAGE)
        self.tuner_deployment_role = canary_deployment_role(
            self, "tuner_deployment_role", naming=naming, base_name="PowerTuningCodeDeploy"
        )
        platform = replace(compute.platform, deployment_role=self.tuner_deployment_role.role)
        # Only the platform's own functions can be tuned; each tuner role names them explicitly.
        targets = [f.arn for f in compute.functions]
        qualified_targets = [f"{arn}:*" for arn in targets]
        tuning_aliases = [f"{arn}:{TUNING_ALIAS_PATTERN}" for arn in targets]

        def tuner(spec: LambdaFunctionSpec, statements: list, timeout: int | None = None) -> MonitoredFunction:
            return MonitoredFunction(
                self,
                spec=spec,
                code=self.tuner_package,
                platform=platform,
                environment={},
                statements=statements,
                timeout_seconds=timeout,
            )

        self.tuner_initializer = tuner(
            POWER_TUNING_INITIALIZER,
            [
                statement(
                    sid="ResizeAndPublishTargets",
                    actions=["lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration", "lambda:PublishVersion"],
                    resources=targets,
                ),
                statement(
                    sid="CreateTuningAliases",
                    actions=["lambda:CreateAlias", "lambda:UpdateAlias"],
                    resources=[*targets, *tuning_aliases],
                ),
            ],
            TUNER_STEP_TIMEOUT_SECONDS,
        )
        self.tuner_executor = tuner(
            POWER_TUNING_EXECUTOR,
            # Only the RAM<value> aliases: the executor can never send test traffic to `live`.
            [statement(sid="InvokeTuningAliases", actions=["lambda:InvokeFunction"], resources=tuning_aliases)],
            EXECUTOR_TIMEOUT_SECONDS,
        )
        self.tuner_cleaner = tuner(
            POWER_TUNING_CLEANER,
            [
                statement(
                    sid="RemoveTuningAliases",
                    actions=["lambda:GetAlias", "lambda:ListAliases", "lambda:DeleteAlias"],
                    resources=[*targets, *tuning_aliases],
                ),
                # Qualified ARNs only: the cleaner can delete a version, never the function itself.
                statement(
                    sid="RemoveTuningVersions",
                    actions=["lambda:GetFunctionConfiguration", "lambda:DeleteFunction"],
                    resources=qualified_targets,
                ),
            ],
            TUNER_STEP_TIMEOUT_SECONDS,
        )
        # Pure arithmetic on the executors' numbers: no AWS permission beyond its own logs and traces.
        self.tuner_analyzer = tuner(POWER_TUNING_ANALYZER, [])
        self.tuner_optimizer = tuner(
            POWER_TUNING_OPTIMIZER,
            [
                statement(
                    sid="ApplyChosenMemory",
                    actions=["lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration"],
                    resources=targets,
                )
            ],
            TUNER_STEP_TIMEOUT_SECONDS,
        )
        self.tuner_functions = [self.tuner_initializer, self.tuner_executor, self.tuner_cleaner, self.tuner_analyzer, self.tuner_optimizer]
        grant_canary_deployments(self.tuner_deployment_role, self.tuner_functions)

        self.tuning_log_group = self._log_group("tuning_log_group", "PowerTuningWorkflow")
        self.tuning_role = self.service_role(
            "tuning_role",
            "PowerTuningWorkflow",
            "states.amazonaws.com",
            [
                statement(sid="InvokeTunerSteps", actions=["lambda:InvokeFunction"], resources=[f.alias.arn for f in self.tuner_functions]),
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=[key_arn]),
                *self._workflow_telemetry_statements(),
            ],
        )
        self.tuning_definition = power_tuning.definition(
            initializer_arn=self.tuner_initializer.alias.arn,
            executor_arn=self.tuner_executor.alias.arn,
            cleaner_arn=self.tuner_cleaner.alias.arn,
            analyzer_arn=self.tuner_analyzer.alias.arn,
            optimizer_arn=self.tuner_optimizer.alias.arn,
        )
        self.tuning_state_machine = self._state_machine(
            "power_tuning_workflow",
            "PowerTuningWorkflow",
            "STANDARD",
            self.tuning_definition,
            self.tuning_role,
            self.tuning_log_group,
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
        self.threshold_target = CloudwatchEventTarget(
            self, "threshold_check_target", rule=self.threshold_rule.name, target_id="ThresholdChecker", arn=checker.alias.arn
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
        self.pattern_target = CloudwatchEventTarget(
            self,
            "pattern_detected_target",
            rule=self.pattern_rule.name,
            target_id="PatternAnalysisWorkflow",
            arn=machine_arn,
            role_arn=self.events_role.role.arn,
            # The workflow's input is the event's detail: {"symbol", "bars", ...}.
            input_path="$.detail",
        )

        self.output("analysis_state_machine_arn", machine_arn, description="PatternAnalysisWorkflow ARN")
        self.output("power_tuning_state_machine_arn", self.tuning_state_machine.arn, description="PowerTuningWorkflow ARN")
        self.output("threshold_check_rule_name", self.threshold_rule.name, description="EventBridge schedule for ThresholdChecker")
        self.output("pattern_detected_rule_name", self.pattern_rule.name, description="EventBridge rule starting the analysis workflow")

    def _log_group(self, id: str, machine_name: str) -> CloudwatchLogGroup:
        # /aws/vendedlogs/ keeps Step Functions from growing the account's 5 KB log resource policy.
        name = f"/aws/vendedlogs/states/{self.naming.name(machine_name)}"
        return encrypted_log_group(self, id, name, retention_days=self.config.lambda_.log_retention_days, kms_key=self.data.kms_key)

    @staticmethod
    def _workflow_telemetry_statements() -> list:
        return [
            # Log delivery and X-Ray have no resource-level permissions: "*" is the only resource AWS accepts.
            statement(sid="DeliverWorkflowLogs", actions=list(LOG_DELIVERY_ACTIONS), resources=["*"]),
            statement(sid="SendWorkflowTraces", actions=list(WORKFLOW_XRAY_ACTIONS), resources=["*"]),
        ]

    def _state_machine(
        self, id: str, base_name: str, machine_type: str, definition: dict, role: ServiceRole, log_group: CloudwatchLogGroup
    ) -> SfnStateMachine:
        return SfnStateMachine(
            self,
            id,
            name=self.naming.name(base_name),
            type=machine_type,
            role_arn=role.role.arn,
            definition=render(definition),
            logging_configuration=SfnStateMachineLoggingConfiguration(
                log_destination=f"{log_group.arn}:*", include_execution_data=True, level="ALL"
            ),
            tracing_configuration=SfnStateMachineTracingConfiguration(enabled=True),
            encryption_configuration=SfnStateMachineEncryptionConfiguration(
                type="CUSTOMER_MANAGED_KMS_KEY", kms_key_id=self.data.kms_key.arn, kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS
            ),
            # Step Functions checks at creation that the role can deliver logs and invoke the tasks.
            depends_on=[role.policy],
        )
