"""The stacks of one environment: the platform (`patternwatch-<env>`) and, where enabled, the power tuner.

`EnvironmentStack` is what every stack of an environment shares: its own state (S3 key or local file per
stack), the AWS provider (or the emulator's), the `name_suffix` local and cost tags. `PatternWatchStack`
is the platform: the five layers and the release policy. The tuner's stack is in power_tuner.py.
"""
from __future__ import annotations

from pathlib import PurePosixPath

from cdktf import Aspects, LocalBackend, S3Backend, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from .api import ApiLayer
from .compute import ComputeLayer
from .config import STATE_FILE_NAME, EnvironmentConfig
from .data import DataLayer
from .emulator import EmulatorWorkarounds, emulator_provider_settings
from .monitoring import MonitoringLayer
from .naming import declare_naming
from .orchestration import OrchestrationLayer
from .release_access import ReleaseAccess
from .tagging import CostTags

# S3 state locking with a lockfile (no DynamoDB table) needs Terraform 1.10 or newer.
REQUIRED_TERRAFORM_VERSION = ">= 1.10"
BILLING_REGION = "us-east-1"


class EnvironmentStack(TerraformStack):
    """A stack of one environment with a state of its own: `state_file` under the environment's S3 key
    prefix, or `terraform.<stack name>.tfstate` beside the project for the emulator."""

    def __init__(self, scope: Construct, stack_name: str, config: EnvironmentConfig, *, state_file: str) -> None:
        super().__init__(scope, stack_name)
        self.config = config
        self.stack_name = stack_name
        self.add_override("terraform.required_version", REQUIRED_TERRAFORM_VERSION)
        # The prebuilt bindings write the short source "aws"; spell out the registry address users expect.
        self.add_override("terraform.required_providers.aws.source", "hashicorp/aws")
        self._state_backend(state_file)
        self.provider = self.aws_provider("aws")
        # One `name_suffix` local (environment suffix, plus the workspace outside `default`) ends every name.
        self.naming = declare_naming(self, config.resource_suffix, config.account_id)
        Aspects.of(self).add(CostTags(config.tags))
        if config.emulator is not None:
            Aspects.of(self).add(EmulatorWorkarounds())

    def _state_backend(self, state_file: str) -> None:
        backend = self.config.state_backend
        if backend.kind == "local":
            # cdktf runs Terraform in cdktf.out/stacks/<stack>; keep the state beside the project, not in
            # the build output that every synth rewrites, and other workspaces' states next to it.
            state = PurePosixPath("../../..") / f"terraform.{self.stack_name}.tfstate"
            LocalBackend(self, path=str(state), workspace_dir=f"{state}.d")
            return
        s3 = S3Backend(
            self,
            bucket=backend.bucket,
            key=self.config.state_key_for(state_file),
            region=backend.region,
            encrypt=True,
            kms_key_id=backend.kms_key_id,
            workspace_key_prefix=f"{backend.key_prefix}/workspaces",
        )
        # S3BackendConfig in cdktf 0.21 predates the S3 lockfile, so the setting goes in as an override.
        s3.add_override("use_lockfile", backend.use_lockfile)

    def aws_provider(self, id: str, *, alias: str | None = None, region: str | None = None) -> AwsProvider:
        settings: dict = {}
        if self.config.emulator is not None:
            settings = emulator_provider_settings(self.config)
        elif self.config.account_id:
            # A real environment refuses to touch any account but its own.
            settings = {"allowed_account_ids": [self.config.account_id]}
        return AwsProvider(self, id, alias=alias, region=region or self.config.region, **settings)


class PatternWatchStack(EnvironmentStack):
    def __init__(self, scope: Construct, config: EnvironmentConfig) -> None:
        super().__init__(scope, config.stack_name, config, state_file=STATE_FILE_NAME)
        self.billing_provider = self.aws_provider("aws_billing", alias="billing", region=BILLING_REGION)
        naming = self.naming

        self.data = DataLayer(self, "data", config=config, naming=naming)
        self.compute = ComputeLayer(self, "compute", config=config, naming=naming, data=self.data)
        self.api = ApiLayer(self, "api", config=config, naming=naming, data=self.data, compute=self.compute)
        self.orchestration = OrchestrationLayer(
            self, "orchestration", config=config, naming=naming, data=self.data, compute=self.compute
        )
        self.monitoring = MonitoringLayer(
            self,
            "monitoring",
            config=config,
            naming=naming,
            data=self.data,
            compute=self.compute,
            api=self.api,
            orchestration=self.orchestration,
            billing_provider=self.billing_provider,
        )
        self.release_access = ReleaseAccess(
            self, "release", config=config, naming=naming, compute=self.compute, api=self.api, monitoring=self.monitoring
        )
