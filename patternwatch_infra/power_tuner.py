"""The power tuner: tooling with a stack of its own, `patternwatch-<env>-power-tuner`, deployed where
envs/<env>.json enables it (dev, staging and local; never prod by default).

Creates:
- four functions `PowerTuning{Initializer,Executor,Cleaner,Analyzer}-<s>` (one code package, one
  least-privilege role each, no CodeDeploy: their alias `live` follows each version Terraform publishes)
- `PowerTuningWorkflow-<s>` (STANDARD: runs can outlast Express's 5 minutes), its role, a KMS-encrypted
  log group (level ALL) and X-Ray tracing
- its code in the platform's artifact bucket (found by name) and, where code is signed, a Signer profile
  `PatternTuner_<s>_...` and a code signing config of its own (Enforce or Warn as envs/<env>.json
  `code_signing` says), so the tuner's functions are signed like the platform's (code_artifacts.py)

It finds what it needs by name, through data sources (never through the platform stack's construct ids or
state): the platform's six functions, the platform key (`alias/patternwatch-<s>`), the ops topic and the
artifact bucket. So
the platform is deployed first, and the two stacks keep separate states (`<env>/power-tuner.tfstate`).

What its roles may do to the platform's functions, and nothing more (docs/orchestration.md lists every action):
- the initializer resizes `$LATEST` and publishes one version per memory value (then restores the size):
  memory is not a condition key, so it holds UpdateFunctionConfiguration on the function, with explicit
  denies on changing layers or network; it creates and updates only aliases named RAM<value>;
- the executor invokes only the RAM<value> aliases: never `live`, never `$LATEST`;
- the cleaner reads and deletes only RAM<value> aliases, lists the function's aliases, and deletes only
  versions (qualified ARNs whose qualifier starts with a digit): never the function, never `live`;
- the analyzer calls no AWS API. There is no optimizer: the tuner recommends, and memory changes through
  envs/<env>.json and a deploy, so Terraform stays the only writer of a function's configuration.
"""
from __future__ import annotations

from collections.abc import Sequence

from cdktf import TerraformOutput
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_kms_key import DataAwsKmsKey
from cdktf_cdktf_provider_aws.data_aws_lambda_function import DataAwsLambdaFunction
from cdktf_cdktf_provider_aws.data_aws_sns_topic import DataAwsSnsTopic
from constructs import Construct
from patternwatch_shared.names.functions import (
    POWER_TUNING_ANALYZER, POWER_TUNING_CLEANER, POWER_TUNING_EXECUTOR, POWER_TUNING_INITIALIZER, POWER_TUNING_PACKAGE,
    LambdaFunctionSpec,
)
from power_tuning.analysis import TUNING_ALIAS_PREFIX

from .blocks import ServiceRole
from .code_artifacts import CodeArtifacts
from .compute import USE_KEY
from .config import POWER_TUNER_STATE_FILE_NAME, ConfigError, EnvironmentConfig
from .function import FunctionPlatform, InvokedSynchronously, MonitoredFunction
from .packaging import Package, build_function
from .policies import condition, statement
from .stack import EnvironmentStack, PatternWatchStack
from .state_machines import encrypted_state_machine, workflow_log_group, workflow_telemetry_statements
from .workflows import power_tuning

# The executor invokes the function under test `num` times in a row; Lambda's maximum leaves the most room.
EXECUTOR_TIMEOUT_SECONDS = 900
# Publishing five versions waits for five configuration updates; two minutes each is generous.
TUNER_STEP_TIMEOUT_SECONDS = 300
# Every alias the tuner makes is RAM<memory> (power_tuning.analysis.alias_name).
TUNING_ALIAS_PATTERN = f"{TUNING_ALIAS_PREFIX}*"
# Version numbers start at 1 and never with a 0 or a letter, so these patterns match every version and no alias.
VERSION_QUALIFIER_PATTERNS = tuple(f"{digit}*" for digit in "123456789")
UNRESERVED = (
    "tooling that is idle except while someone tunes a function: a reservation would take executions out of the "
    "platform's budget in the shared account for nothing; it draws from the unreserved pool instead"
)


def tuning_alias_arns(function_arn: str) -> str:
    return f"{function_arn}:{TUNING_ALIAS_PATTERN}"


def version_arns(function_arn: str) -> list[str]:
    return [f"{function_arn}:{pattern}" for pattern in VERSION_QUALIFIER_PATTERNS]


def tuner_statements(targets: Sequence[str]) -> dict[str, list]:
    """Each step's statements, given the unqualified ARNs of the functions it may tune."""
    targets = list(targets)
    aliases = [tuning_alias_arns(t) for t in targets]
    versions = [v for t in targets for v in version_arns(t)]
    return {
        POWER_TUNING_INITIALIZER.base_name: [
            statement(sid="ReadTargetConfiguration", actions=["lambda:GetFunctionConfiguration"], resources=targets),
            # Memory is a function setting with no condition key: resizing $LATEST is the only way to publish a
            # version with another memory size. Nothing routes traffic to $LATEST (every trigger uses `live`).
            statement(sid="ResizeTargetsToPublish", actions=["lambda:UpdateFunctionConfiguration", "lambda:PublishVersion"], resources=targets),
            # What IAM can take back from UpdateFunctionConfiguration: no new layers (code), no VPC (network).
            *(
                statement(
                    sid=sid, effect="Deny", actions=["lambda:UpdateFunctionConfiguration"], resources=targets,
                    conditions=[condition("Null", key, "false")],
                )
                for sid, key in (("NeverChangeTargetLayers", "lambda:Layer"), ("NeverChangeTargetNetwork", "lambda:VpcIds"))
            ),
            statement(sid="CreateTuningAliases", actions=["lambda:CreateAlias", "lambda:UpdateAlias"], resources=aliases),
        ],
        # Only the RAM<value> aliases: the executor can never send test traffic to `live` or $LATEST.
        POWER_TUNING_EXECUTOR.base_name: [statement(sid="InvokeTuningAliases", actions=["lambda:InvokeFunction"], resources=aliases)],
        POWER_TUNING_CLEANER.base_name: [
            statement(sid="RemoveTuningAliases", actions=["lambda:GetAlias", "lambda:DeleteAlias"], resources=aliases),
            # Which versions another alias still uses: a function-level read.
            statement(sid="ListTargetAliases", actions=["lambda:ListAliases"], resources=targets),
            # Versions only: the cleaner can delete a version, never the function itself.
            statement(sid="RemoveTuningVersions", actions=["lambda:GetFunctionConfiguration", "lambda:DeleteFunction"], resources=versions),
        ],
        # Pure arithmetic on the executors' numbers: no AWS permission beyond its own logs and traces.
        POWER_TUNING_ANALYZER.base_name: [],
    }


class PowerTuner(Construct):
    """The four step functions and the workflow that runs them, for the functions `targets` names."""

    def __init__(
        self, scope: Construct, id: str, *, platform: FunctionPlatform, targets: Sequence[str], package: Package | None = None
    ) -> None:
        super().__init__(scope, id)
        config, naming = platform.config, platform.naming
        self.package = package or build_function(POWER_TUNING_PACKAGE)
        statements = tuner_statements(targets)

        def tuner(spec: LambdaFunctionSpec, timeout: int | None) -> MonitoredFunction:
            return MonitoredFunction(
                self,
                spec=spec,
                code=self.package,
                platform=platform,
                environment={},
                statements=statements[spec.base_name],
                invocation=InvokedSynchronously("by PowerTuningWorkflow's tasks, which retry Lambda's own errors and clean up on failure"),
                reserved_concurrency=None,
                unreserved_because=UNRESERVED,
                timeout_seconds=timeout,
            )

        self.initializer = tuner(POWER_TUNING_INITIALIZER, TUNER_STEP_TIMEOUT_SECONDS)
        self.executor = tuner(POWER_TUNING_EXECUTOR, EXECUTOR_TIMEOUT_SECONDS)
        self.cleaner = tuner(POWER_TUNING_CLEANER, TUNER_STEP_TIMEOUT_SECONDS)
        self.analyzer = tuner(POWER_TUNING_ANALYZER, None)
        self.functions = [self.initializer, self.executor, self.cleaner, self.analyzer]

        self.log_group = workflow_log_group(
            self, "tuning_log_group", naming=naming, machine_name="PowerTuningWorkflow",
            retention_days=config.lambda_.log_retention_days, kms_key=platform.kms_key,
        )
        self.workflow_role = ServiceRole.named(
            self,
            "tuning_role",
            naming=naming,
            base_name="PowerTuningWorkflow",
            service="states.amazonaws.com",
            statements=[
                statement(sid="InvokeTunerSteps", actions=["lambda:InvokeFunction"], resources=[f.alias.arn for f in self.functions]),
                # The workflow is encrypted with the platform key.
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=[platform.kms_key.arn]),
                *workflow_telemetry_statements(),
            ],
        )
        self.definition = power_tuning.definition(
            initializer_arn=self.initializer.alias.arn,
            executor_arn=self.executor.alias.arn,
            cleaner_arn=self.cleaner.alias.arn,
            analyzer_arn=self.analyzer.alias.arn,
        )
        self.state_machine = encrypted_state_machine(
            self, "power_tuning_workflow", naming=naming, base_name="PowerTuningWorkflow", machine_type="STANDARD",
            definition=self.definition, role=self.workflow_role, log_group=self.log_group, kms_key=platform.kms_key,
        )


class PowerTunerStack(EnvironmentStack):
    """`patternwatch-<env>-power-tuner`: the tuner for the functions of `platform`, found by name."""

    def __init__(self, scope: Construct, config: EnvironmentConfig, *, platform: PatternWatchStack | None, package: Package | None = None) -> None:
        if platform is None or platform.config.name != config.name:
            raise ConfigError(
                f"{config.source}: power_tuner.enabled: the tuner tunes the functions of {config.stack_name}; "
                f"synthesize that stack with it (main.py builds both for each selected environment)"
            )
        super().__init__(scope, config.power_tuner_stack_name, config, state_file=POWER_TUNER_STATE_FILE_NAME)
        naming = self.naming
        # The platform's functions, key and ops topic, by the names the platform gives them in this workspace.
        self.targets = [
            DataAwsLambdaFunction(self, f"target_{f.spec.construct_id}", function_name=naming.name(f.spec.base_name))
            for f in platform.compute.functions
        ]
        self.platform_key = DataAwsKmsKey(self, "platform_key", key_id=naming.name("alias/patternwatch"))
        self.ops_topic = DataAwsSnsTopic(self, "ops_topic", name=naming.name("PatternWatchOps"))
        self.caller = DataAwsCallerIdentity(self, "caller")
        self.tuner = PowerTuner(
            self,
            "power_tuner",
            platform=FunctionPlatform(
                config=config, naming=naming, account_id=self.caller.account_id, kms_key=self.platform_key, alarm_topic=self.ops_topic,
                # `PatternTuner`, as long as `PatternWatch`: a Signer name prefix fits 38 characters with the longest workspace.
                artifacts=CodeArtifacts(self, "artifacts", config=config, naming=naming, kms_key=None, signer_base_name="PatternTuner"),
            ),
            targets=[t.arn for t in self.targets],
            package=package,
        )
        for name, value, description in (
            ("power_tuning_state_machine_arn", self.tuner.state_machine.arn, "PowerTuningWorkflow ARN"),
            *((f"{f.spec.construct_id}_function_name", f.function.function_name, f"{f.function_name} function name") for f in self.tuner.functions),
        ):
            output = TerraformOutput(self, name, value=value, description=description)
            output.override_logical_id(name)


def power_tuner_stack(scope: Construct, platform: PatternWatchStack) -> PowerTunerStack | None:
    """The tuner's stack beside its environment's platform stack, where envs/<env>.json enables it."""
    if not platform.config.power_tuner.enabled:
        return None
    return PowerTunerStack(scope, platform.config, platform=platform)
