"""MonitoredFunction: a Lambda function with everything it always needs.

Creates, per function:
- an IAM role with one inline least-privilege policy (its own statements + logs + X-Ray + the platform key)
- a KMS-encrypted log group with the configured retention
- the function: python3.12 on arm64, X-Ray Active, published versions, env vars encrypted with the platform key,
  its code from the artifact bucket (signed, and checked by the code signing config, where code is signed;
  code_artifacts.py); the code is the release's after the first apply when `release_owns_code`
- reserved concurrency (envs/<env>.json), so a flood on one path cannot starve another function
- for a function invoked asynchronously: a dead-letter queue and the retry limits of its `live` alias
- the alias `live` (CodeDeploy, not Terraform, moves it between versions)
- alarms on errors, throttles and p99 duration, and a canary error-rate alarm on the alias
- a CodeDeploy deployment group that shifts the alias 10% for 5 minutes, then all, and rolls back on alarm

Tooling functions (the power tuner) have no CodeDeploy: their alias follows each new version.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm, CloudwatchMetricAlarmMetricQuery
from cdktf_cdktf_provider_aws.codedeploy_app import CodedeployApp
from cdktf_cdktf_provider_aws.codedeploy_deployment_group import (
    CodedeployDeploymentGroup,
    CodedeployDeploymentGroupAlarmConfiguration,
    CodedeployDeploymentGroupAutoRollbackConfiguration,
    CodedeployDeploymentGroupDeploymentStyle,
)
from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import DataAwsIamPolicyDocumentStatement
from cdktf_cdktf_provider_aws.data_aws_kms_key import DataAwsKmsKey
from cdktf_cdktf_provider_aws.data_aws_sns_topic import DataAwsSnsTopic
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.lambda_alias import LambdaAlias
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionDeadLetterConfig,
    LambdaFunctionEnvironment,
    LambdaFunctionTracingConfig,
)
from cdktf_cdktf_provider_aws.lambda_function_event_invoke_config import LambdaFunctionEventInvokeConfig
from cdktf_cdktf_provider_aws.lambda_layer_version import LambdaLayerVersion
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct
from patternwatch_shared.names.functions import LambdaFunctionSpec

from .alarms import ABOVE, THREE_OF_FIVE_MINUTES, Evaluation, Metric, alarm
from .blocks import ServiceRole, encrypted_log_group
from .code_artifacts import CodeArtifacts
from .config import EnvironmentConfig
from .naming import Naming
from .packaging import Package
from .policies import statement
from .release_contract import FUNCTIONS_PREFIX
from .scan_skips import EMULATOR_HAS_NO_CODE_SIGNING, skip_check

RUNTIME = "python3.12"
ARCHITECTURE = "arm64"
LIVE_ALIAS = "live"
CANARY_DEPLOYMENT_CONFIG = "CodeDeployDefault.LambdaCanary10Percent5Minutes"
ALARM_PERIOD_SECONDS = 60
# Actions that have no resource-level permissions in IAM: "*" is the only resource AWS accepts for them.
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
# What tooling/release.py changes on a function it releases; Terraform leaves these alone after creating it.
RELEASED_CODE_ATTRIBUTES = ["s3_key", "s3_object_version", "source_code_hash"]


@dataclass(frozen=True)
class FunctionPlatform:
    """What every function of a stack shares: config, the key, the layer, alarms' topic, CodeDeploy.

    The power tuner's stack finds the key and the topic by name (data sources), needs no layer, and
    releases without CodeDeploy: `layer` and `deployment_app` are then None.
    """

    config: EnvironmentConfig
    naming: Naming
    account_id: str
    kms_key: KmsKey | DataAwsKmsKey
    alarm_topic: SnsTopic | DataAwsSnsTopic
    artifacts: CodeArtifacts
    layer: LambdaLayerVersion | None = None
    deployment_app: CodedeployApp | None = None
    deployment_role: IamRole | None = None


@dataclass(frozen=True)
class InvokedSynchronously:
    """A function that is only ever invoked synchronously: `by` says by whom and where its failures go.
    Lambda sends nothing to a dead-letter queue from a synchronous invocation, so it has none."""

    by: str


@dataclass(frozen=True)
class InvokedAsynchronously:
    """A function invoked asynchronously (an EventBridge target): Lambda retries a failed event
    `maximum_retry_attempts` times for at most `maximum_event_age_seconds`, then sends it to the queue.

    A dead-letter queue rather than an on-failure destination: the message body is the event itself, so
    replaying it is one `aws lambda invoke --payload`, and the function's configuration carries it into
    every version it publishes.
    """

    dead_letter_queue: SqsQueue
    maximum_retry_attempts: int = 2
    maximum_event_age_seconds: int = 3600


class MonitoredFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        *,
        spec: LambdaFunctionSpec,
        code: Package,
        platform: FunctionPlatform,
        environment: Mapping[str, str],
        statements: Sequence[DataAwsIamPolicyDocumentStatement],
        invocation: InvokedSynchronously | InvokedAsynchronously,
        reserved_concurrency: int | None,
        unreserved_because: str | None = None,
        timeout_seconds: int | None = None,
        extra_layers: Sequence[LambdaLayerVersion] = (),
        release_owns_code: bool = False,
    ) -> None:
        super().__init__(scope, spec.construct_id)
        config, naming = platform.config, platform.naming
        base_name = spec.base_name
        self.spec = spec
        self.function_name = naming.name(base_name)
        # Built from the name rather than read from the function: a policy document that referenced the
        # function resource would be re-read at apply, and its policy shown as changing, whenever the function
        # itself changes (a code or configuration update).
        self.arn = f"arn:aws:lambda:{config.region}:{platform.account_id}:function:{self.function_name}"
        # Tooling functions (the power tuner's executor) may need longer than the platform's handlers.
        self.timeout_seconds = timeout_seconds or config.lambda_.timeout_seconds
        self.alarm_actions = [platform.alarm_topic.arn]
        self.invocation = invocation
        self.reserved_concurrency = reserved_concurrency
        if reserved_concurrency is None and not unreserved_because:
            raise ValueError(f"{base_name}: give it reserved concurrency, or say why it draws from the unreserved pool")
        asynchronous = isinstance(invocation, InvokedAsynchronously)
        dead_letter_statements = (
            # Lambda sends an event that failed every retry to the queue with the function's own role.
            [statement(sid="SendFailedEventsToDeadLetterQueue", actions=["sqs:SendMessage"], resources=[invocation.dead_letter_queue.arn])]
            if asynchronous
            else []
        )

        log_retention = config.lambda_.log_retention_days
        self.log_group = encrypted_log_group(self, "log_group", f"/aws/lambda/{self.function_name}", retention_days=log_retention, kms_key=platform.kms_key)
        self.service_role = ServiceRole.named(
            self,
            "service_role",
            naming=naming,
            base_name=base_name,
            service="lambda.amazonaws.com",
            statements=[
                *statements,
                *dead_letter_statements,
                statement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[f"{self.log_group.arn}:*"],
                ),
                # X-Ray accepts only "*" as the resource of these actions (no resource-level permissions).
                statement(sid="SendTraces", actions=list(XRAY_ACTIONS), resources=["*"]),
                statement(
                    sid="DecryptEnvironment",
                    actions=["kms:Decrypt"],
                    resources=[platform.kms_key.arn],
                ),
            ],
        )
        self.role, self.policy = self.service_role.role, self.service_role.policy
        self.code = platform.artifacts.upload(
            self, "code", code, kind=FUNCTIONS_PREFIX, name=self.function_name, release_owns_code=release_owns_code
        )
        signing = platform.artifacts.code_signing_config
        self.environment = {**spec.powertools_environment(), **environment}
        self.function = LambdaFunction(
            self,
            "function",
            function_name=self.function_name,
            role=self.role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=spec.handler,
            s3_bucket=self.code.bucket,
            s3_key=self.code.key,
            code_signing_config_arn=signing.arn if signing is not None else None,
            # The shared layer first: a layer above it (the chart layer) relies on what it provides. Tooling has none.
            layers=[*([platform.layer.arn] if platform.layer is not None else []), *(layer.arn for layer in extra_layers)] or None,
            memory_size=config.lambda_.memory_mb,
            timeout=self.timeout_seconds,
            reserved_concurrent_executions=reserved_concurrency,
            publish=True,
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            environment=LambdaFunctionEnvironment(variables=self.environment),
            kms_key_arn=platform.kms_key.arn,
            dead_letter_config=LambdaFunctionDeadLetterConfig(target_arn=invocation.dead_letter_queue.arn) if asynchronous else None,
            # The log group and the permission to write to it must exist before the first invocation.
            depends_on=[self.log_group, self.policy],
            # A released function's code is the release's: Terraform deployed its first package only.
            lifecycle=TerraformResourceLifecycle(ignore_changes=RELEASED_CODE_ATTRIBUTES) if release_owns_code else None,
        )
        skip_check(self.function, "CKV_AWS_117", "no VPC: the functions only call AWS APIs, and a VPC would add NAT cost and cold-start time")
        if not asynchronous:
            skip_check(
                self.function, "CKV_AWS_116", f"invoked synchronously only ({invocation.by}); Lambda sends nothing to a DLQ from a synchronous invocation"
            )
        if reserved_concurrency is None:
            skip_check(self.function, "CKV_AWS_115", unreserved_because)
        if signing is None:
            skip_check(self.function, "CKV_AWS_272", EMULATOR_HAS_NO_CODE_SIGNING)
        released_by_codedeploy = platform.deployment_app is not None
        self.alias = LambdaAlias(
            self,
            "alias",
            name=LIVE_ALIAS,
            function_name=self.function.function_name,
            function_version=self.function.version,
            # CodeDeploy shifts traffic between versions; Terraform must not move the alias back. Without
            # CodeDeploy (tooling), the alias follows each version Terraform publishes.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["function_version", "routing_config"]) if released_by_codedeploy else None,
        )
        self.event_invoke_config: LambdaFunctionEventInvokeConfig | None = None
        if asynchronous:
            # Asynchronous callers invoke `live`, and these settings belong to the qualifier they invoke.
            self.event_invoke_config = LambdaFunctionEventInvokeConfig(
                self,
                "event_invoke_config",
                function_name=self.function.function_name,
                qualifier=self.alias.name,
                maximum_retry_attempts=invocation.maximum_retry_attempts,
                maximum_event_age_in_seconds=invocation.maximum_event_age_seconds,
            )

        self.errors_alarm = self._alarm("errors", "Errors", "Sum", config.alarms.lambda_errors_per_minute, "is raising errors")
        self.throttles_alarm = self._alarm("throttles", "Throttles", "Sum", 1, "is being throttled")
        p99_threshold_ms = int(config.alarms.duration_p99_ratio * self.timeout_seconds * 1000)
        self.duration_alarm = self._alarm("duration_p99", "Duration", "p99", p99_threshold_ms, "p99 duration is near its timeout")
        self.iterator_age_alarm: CloudwatchMetricAlarm | None = None
        self.canary_alarm: CloudwatchMetricAlarm | None = None
        self.deployment_group: CodedeployDeploymentGroup | None = None
        if released_by_codedeploy:
            self._canary_release(platform)

    def _canary_release(self, platform: FunctionPlatform) -> None:
        """A canary error-rate alarm on `live` and the deployment group that shifts it and rolls back on alarm."""
        self.canary_alarm = self._canary_error_rate_alarm(platform.config.alarms.canary_error_rate_percent)
        self.deployment_group = CodedeployDeploymentGroup(
            self,
            "deployment_group",
            app_name=platform.deployment_app.name,
            deployment_group_name=self.function_name,
            service_role_arn=platform.deployment_role.arn,
            deployment_config_name=CANARY_DEPLOYMENT_CONFIG,
            deployment_style=CodedeployDeploymentGroupDeploymentStyle(
                deployment_option="WITH_TRAFFIC_CONTROL", deployment_type="BLUE_GREEN"
            ),
            auto_rollback_configuration=CodedeployDeploymentGroupAutoRollbackConfiguration(
                enabled=True, events=["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
            ),
            alarm_configuration=CodedeployDeploymentGroupAlarmConfiguration(
                enabled=True, alarms=[self.canary_alarm.alarm_name, self.errors_alarm.alarm_name]
            ),
        )

    @property
    def health_alarms(self) -> list[CloudwatchMetricAlarm]:
        """The alarms that say the function itself is unhealthy (the canary alarm speaks only of a release)."""
        return [a for a in (self.errors_alarm, self.throttles_alarm, self.iterator_age_alarm) if a is not None]

    def add_environment(self, variables: Mapping[str, str]) -> None:
        """Add variables known only after later layers exist (e.g. the API's URL)."""
        self.environment = {**self.environment, **variables}
        self.function.put_environment(variables=self.environment)

    def _alarm(self, id: str, metric_name: str, stat: str, threshold: float, what: str) -> CloudwatchMetricAlarm:
        """`<function>-<metric>`, on the function's own AWS/Lambda metric."""
        return alarm(
            self,
            f"{id}_alarm",
            name=f"{self.function_name}-{metric_name}",
            description=f"{self.function_name} {what}",
            metric=Metric("AWS/Lambda", metric_name, stat, {"FunctionName": self.function_name}),
            threshold=threshold,
            actions=self.alarm_actions,
            evaluation=THREE_OF_FIVE_MINUTES,
        )

    def add_iterator_age_alarm(self, threshold_ms: int) -> CloudwatchMetricAlarm:
        """Stream consumers fall behind before they fail; iterator age says so first."""
        self.iterator_age_alarm = self._alarm("iterator_age", "IteratorAge", "Maximum", threshold_ms, "is falling behind the stream")
        return self.iterator_age_alarm

    def _canary_error_rate_alarm(self, percent: float) -> CloudwatchMetricAlarm:
        """The share of failing invocations of the alias while CodeDeploy shifts it: the rollback signal."""
        alias = {"FunctionName": self.function_name, "Resource": f"{self.function_name}:{LIVE_ALIAS}"}
        error_rate = CloudwatchMetricAlarmMetricQuery(
            id="error_rate", expression="100 * errors / MAX([invocations, 1])", label="Error rate (%)", return_data=True
        )
        return alarm(
            self,
            "canary_error_rate_alarm",
            name=f"{self.function_name}-CanaryErrorRate",
            description=f"More than {percent}% of {self.function_name}:{LIVE_ALIAS} invocations fail: roll the release back",
            queries=[
                Metric("AWS/Lambda", "Errors", "Sum", alias).query("errors", period=ALARM_PERIOD_SECONDS),
                Metric("AWS/Lambda", "Invocations", "Sum", alias).query("invocations", period=ALARM_PERIOD_SECONDS),
                error_rate,
            ],
            comparison=ABOVE,
            threshold=percent,
            actions=self.alarm_actions,
            evaluation=Evaluation(periods=1),
            # CodeDeploy reads the state; a recovery after a rollback needs nobody's attention.
            notify_ok=False,
        )


def canary_deployment_role(scope: Construct, id: str, *, naming: Naming, base_name: str) -> ServiceRole:
    """The role CodeDeploy shifts aliases with; `grant_canary_deployments` once its functions exist."""
    return ServiceRole.named(scope, id, naming=naming, base_name=base_name, service="codedeploy.amazonaws.com")


def grant_canary_deployments(role: ServiceRole, functions: Sequence[MonitoredFunction]) -> None:
    role.grant(
        deployment_role_statements(
            [f.arn for f in functions],
            [alarm.arn for f in functions for alarm in (f.canary_alarm, f.errors_alarm)],
        )
    )


def deployment_role_statements(function_arns: Sequence[str], alarm_arns: Sequence[str]) -> list[DataAwsIamPolicyDocumentStatement]:
    """What CodeDeploy needs to shift an alias: read the alarms its deployment groups watch and move the alias."""
    return [
        statement(
            sid="ShiftAliasTraffic",
            actions=["lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetFunction", "lambda:GetProvisionedConcurrencyConfig"],
            resources=[*function_arns, *[f"{arn}:*" for arn in function_arns]],
        ),
        # DescribeAlarms is authorized per alarm ARN: exactly the alarms the deployment groups roll back on.
        statement(sid="WatchRollbackAlarms", actions=["cloudwatch:DescribeAlarms"], resources=list(alarm_arns)),
    ]

