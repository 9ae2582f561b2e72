"""Everything that exists only because `local` runs on an AWS emulator, kept in one place.

dev, staging and prod never reach this module's adjustments; a unit test proves it.
"""
from __future__ import annotations

import jsii
from cdktf import IAspect, TerraformResource
from cdktf_cdktf_provider_aws.provider import AwsProviderEndpoints
from constructs import IConstruct

from .config import EnvironmentConfig

# One endpoint per AWS service the stacks use; the provider sends every call for these to the emulator.
# These are the provider's endpoint names (`lambda_` is Python's spelling of `lambda`).
EMULATED_SERVICES = (
    "apigateway", "budgets", "cloudwatch", "codedeploy", "dynamodb", "events", "iam", "kinesis", "kms",
    "lambda_", "logs", "s3", "scheduler", "sfn", "sns", "sqs", "ssm", "sts", "wafv2", "xray",
)
# Emulator credentials: moto accepts any, and these can never be mistaken for real ones.
EMULATOR_ACCESS_KEY = "test"
EMULATOR_SECRET_KEY = "test"


def emulator_provider_settings(config: EnvironmentConfig) -> dict:
    """AwsProvider keyword arguments that point every service at the emulator."""
    assert config.emulator is not None, "only the emulator environment has emulator settings"
    endpoint = config.emulator.endpoint
    return {
        "access_key": EMULATOR_ACCESS_KEY,
        "secret_key": EMULATOR_SECRET_KEY,
        "endpoints": [AwsProviderEndpoints(**{service: endpoint for service in EMULATED_SERVICES})],
        "skip_credentials_validation": True,
        "skip_metadata_api_check": "true",
        "skip_region_validation": True,
        # ARNs need the account id; the emulator answers sts:GetCallerIdentity, so keep asking for it.
        "skip_requesting_account_id": False,
        "s3_use_path_style": True,
        # Calls the emulator lacks answer HTTP 500, which the provider would otherwise retry for minutes;
        # a few retries still ride out the dropped keep-alive connections moto's server sometimes causes.
        "max_retries": 3,
    }


def emulator_invoke_url(config: EnvironmentConfig, rest_api_id: str, stage: str) -> str:
    """moto serves a REST API stage under its own path instead of an execute-api host name."""
    return f"{config.emulator.endpoint}/restapis/{rest_api_id}/{stage}/_user_request_"


# Resources the emulator cannot create at all; `local` leaves them out and the README lists them.
EMULATOR_UNSUPPORTED_RESOURCES = {
    "aws_cloudwatch_composite_alarm": "moto 5.2.1 has no PutCompositeAlarm",
    "aws_signer_signing_job": "moto 5.2.1's Signer keeps signing profiles only: it has no StartSigningJob",
    "aws_lambda_code_signing_config": "moto 5.2.1's Lambda has no CreateCodeSigningConfig",
}


def deployable(config: EnvironmentConfig, resource_type: str) -> bool:
    """False only for a resource type the emulator cannot create, in the emulator environment."""
    return config.emulator is None or resource_type not in EMULATOR_UNSUPPORTED_RESOURCES


def signs_code(config: EnvironmentConfig) -> bool:
    """Code signing needs Signer jobs and a Lambda code signing config. Where either is missing (`local`), code
    ships unsigned through the same artifact bucket, and the signing profile is left out as nothing would use it."""
    return deployable(config, "aws_signer_signing_job") and deployable(config, "aws_lambda_code_signing_config")


# Attributes the emulator does not store, so Terraform would "fix" them on every plan. Ignored locally only.
EMULATOR_IGNORED_CHANGES = {
    # moto drops a deployment group's alarm configuration and answers with an empty load balancer block.
    "aws_codedeploy_deployment_group": ["alarm_configuration", "load_balancer_info"],
}


@jsii.implements(IAspect)
class EmulatorWorkarounds:
    """Adds the `local`-only `ignore_changes` above; stack.py applies it only to the emulator environment."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, TerraformResource) and node.terraform_resource_type in EMULATOR_IGNORED_CHANGES:
            node.add_override("lifecycle.ignore_changes", EMULATOR_IGNORED_CHANGES[node.terraform_resource_type])
