"""A Step Functions state machine as this project makes one: its encrypted log group (level ALL), X-Ray
tracing, encryption with the platform key, and the telemetry statements its role needs.

Used by the orchestration layer (PatternAnalysisWorkflow) and the power tuner's stack (PowerTuningWorkflow).
"""
from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_kms_key import DataAwsKmsKey
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.sfn_state_machine import (
    SfnStateMachine,
    SfnStateMachineEncryptionConfiguration,
    SfnStateMachineLoggingConfiguration,
    SfnStateMachineTracingConfiguration,
)
from constructs import Construct

from .blocks import ServiceRole, encrypted_log_group
from .naming import Naming
from .policies import statement
from .workflows import render

# Step Functions asks KMS for a new data key at most this often (its allowed range is 60-900 s).
KMS_DATA_KEY_REUSE_SECONDS = 300
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


def workflow_log_group(
    scope: Construct, id: str, *, naming: Naming, machine_name: str, retention_days: int, kms_key: KmsKey | DataAwsKmsKey
) -> CloudwatchLogGroup:
    # /aws/vendedlogs/ keeps Step Functions from growing the account's 5 KB log resource policy.
    return encrypted_log_group(scope, id, f"/aws/vendedlogs/states/{naming.name(machine_name)}", retention_days=retention_days, kms_key=kms_key)


def workflow_telemetry_statements() -> list:
    return [
        # Log delivery and X-Ray have no resource-level permissions: "*" is the only resource AWS accepts.
        statement(sid="DeliverWorkflowLogs", actions=list(LOG_DELIVERY_ACTIONS), resources=["*"]),
        statement(sid="SendWorkflowTraces", actions=list(WORKFLOW_XRAY_ACTIONS), resources=["*"]),
    ]


def encrypted_state_machine(
    scope: Construct,
    id: str,
    *,
    naming: Naming,
    base_name: str,
    machine_type: str,
    definition: dict,
    role: ServiceRole,
    log_group: CloudwatchLogGroup,
    kms_key: KmsKey | DataAwsKmsKey,
) -> SfnStateMachine:
    return SfnStateMachine(
        scope,
        id,
        name=naming.name(base_name),
        type=machine_type,
        role_arn=role.role.arn,
        definition=render(definition),
        logging_configuration=SfnStateMachineLoggingConfiguration(log_destination=f"{log_group.arn}:*", include_execution_data=True, level="ALL"),
        tracing_configuration=SfnStateMachineTracingConfiguration(enabled=True),
        encryption_configuration=SfnStateMachineEncryptionConfiguration(
            type="CUSTOMER_MANAGED_KMS_KEY", kms_key_id=kms_key.arn, kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS
        ),
        # Step Functions checks at creation that the role can deliver logs and invoke the tasks.
        depends_on=[role.policy],
    )
