"""ArchitectureLayer: what the five architecture layers (data, compute, api, orchestration, monitoring) share.

The environment, the stack's naming (naming.py: every name carries the environment suffix and the
Terraform workspace), and stack outputs with stable names. "Layer" here is a layer of the
architecture; the Lambda layer (shared-dependencies-<s>) is a LambdaLayerVersion in compute.py.
"""
from __future__ import annotations

from collections.abc import Sequence

from cdktf import TerraformOutput, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import DataAwsIamPolicyDocumentStatement
from constructs import Construct

from .blocks import ServiceRole
from .config import EnvironmentConfig
from .naming import Naming


class ArchitectureLayer(Construct):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, naming: Naming) -> None:
        super().__init__(scope, id)
        self.config = config
        self.naming = naming

    def output(self, name: str, value: str, description: str, *, sensitive: bool = False) -> TerraformOutput:
        """A stack output whose name does not depend on where in the construct tree it was declared."""
        out = TerraformOutput(self, name, value=value, description=description, sensitive=sensitive or None)
        out.override_logical_id(name)
        return out

    def service_role(
        self, id: str, base_name: str, service: str, statements: Sequence[DataAwsIamPolicyDocumentStatement]
    ) -> ServiceRole:
        """`<base>Role-<s>`, assumed by `service`, with one inline least-privilege `<base>Policy-<s>`."""
        return ServiceRole.named(self, id, naming=self.naming, base_name=base_name, service=service, statements=statements)

    @property
    def stateful_lifecycle(self) -> TerraformResourceLifecycle | None:
        """Terraform refuses to destroy stateful resources in environments that ask for protection."""
        if self.config.prevent_destroy:
            return TerraformResourceLifecycle(prevent_destroy=True)
        return None
