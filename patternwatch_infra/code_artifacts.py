"""Code artifacts: where function and layer code comes from, and the signature Lambda checks on it.

Creates:
- the artifact bucket `patternwatch-artifacts-<account>-<s>` (SecureBucket: versioned, which Signer needs,
  SSE-KMS with the platform key, TLS-only, server access logs under `artifacts/` in the access-log bucket)
- where the environment signs code (everywhere but the emulator, see emulator.signs_code): the Signer
  profile `PatternWatch_<s>_<unique>` (AWSLambda-SHA384-ECDSA) and the Lambda code signing config that
  trusts only that profile, refusing untrusted code in environments that enforce it (envs/*.json
  `code_signing`) and deploying it with a warning elsewhere
- per package (`upload`): the zip as `<kind>/<name>/<sha256 hex>.zip`, and where code is signed, a
  signing job that writes the signed copy under `signed/<kind>/<name>/`; the function or layer deploys
  that signed copy

The power tuner's stack (power_tuner.py) uploads to the same bucket, found by name, and signs with a
profile and a code signing config of its own (`PatternTuner_<s>_...`): the platform's profile name
ends in a generated suffix, so another stack cannot find it by name.

Who ships later code is the caller's choice. The layer and the power tuner's functions are Terraform's:
a changed package is a new key, a new signing job and a code update on the next apply. The platform's
functions are released (tooling/release.py uploads, signs and rolls them out through their canary), so
Terraform uploads their first package only and ignores later ones (`release_owns_code`), as
terraform-aws-modules/lambda does with `ignore_source_code_hash`.
"""
from __future__ import annotations

from dataclasses import dataclass

from cdktf import AssetType, TerraformAsset, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.data_aws_s3_bucket import DataAwsS3Bucket
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.lambda_code_signing_config import (
    LambdaCodeSigningConfig,
    LambdaCodeSigningConfigAllowedPublishers,
    LambdaCodeSigningConfigPolicies,
)
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_object import S3Object
from cdktf_cdktf_provider_aws.signer_signing_job import (
    SignerSigningJob,
    SignerSigningJobDestination,
    SignerSigningJobDestinationS3,
    SignerSigningJobSource,
    SignerSigningJobSourceS3,
)
from cdktf_cdktf_provider_aws.signer_signing_profile import SignerSigningProfile
from constructs import Construct

from .blocks import AccessLogs, SecureBucket
from .config import EnvironmentConfig
from .emulator import signs_code
from .naming import Naming
from .packaging import Package
from .release_contract import artifact_key, signed_prefix

SIGNING_PLATFORM = "AWSLambda-SHA384-ECDSA"
ARTIFACT_BUCKET_BASE_NAME = "patternwatch-artifacts"
# Where the artifact bucket's server access logs go in the access-log bucket (data.py).
ARTIFACT_BUCKET_ACCESS_LOG_PREFIX = "artifacts/"
# What an upload's key and source say about its content; Terraform leaves them alone once the release owns the code.
CONTENT_ATTRIBUTES = ["key", "source", "source_hash"]


@dataclass(frozen=True)
class CodeLocation:
    """The S3 object a function or layer deploys."""

    bucket: str
    key: str


class CodeArtifacts(Construct):
    """The artifact bucket, the Signer profile and the code signing config.

    With `kms_key`, the platform's: it creates the bucket (encrypted with that key, `lifecycle`, server access
    logs to `access_logs`). Without, another stack's of the same environment (the power tuner's): its code
    goes to the platform's bucket, found by name (so the platform is deployed first), and is signed by a
    profile named from `signer_base_name`, checked by a code signing config of its own.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        naming: Naming,
        kms_key: KmsKey | None,
        lifecycle: TerraformResourceLifecycle | None = None,
        access_logs: AccessLogs | None = None,
        signer_base_name: str = "PatternWatch",
    ) -> None:
        super().__init__(scope, id)
        bucket_name = naming.bucket(ARTIFACT_BUCKET_BASE_NAME)
        self.artifact_bucket: SecureBucket | None = None
        self.bucket: S3Bucket | DataAwsS3Bucket
        # What an upload waits for: versioning (Signer signs an object version) and encryption.
        self.upload_after: list = []
        if kms_key is None:
            self.bucket = DataAwsS3Bucket(self, "bucket", bucket=bucket_name)
        else:
            self.artifact_bucket = SecureBucket(
                self,
                "bucket",
                bucket_name=bucket_name,
                kms_key=kms_key,
                force_destroy=not config.prevent_destroy,
                lifecycle=lifecycle,
                access_logs=access_logs,
            )
            self.bucket = self.artifact_bucket.bucket
            self.upload_after = [self.artifact_bucket.versioning, self.artifact_bucket.encryption]
        self._sign_code(config, naming, signer_base_name)

    def _sign_code(self, config: EnvironmentConfig, naming: Naming, signer_base_name: str) -> None:
        self.signing_profile: SignerSigningProfile | None = None
        self.code_signing_config: LambdaCodeSigningConfig | None = None
        if signs_code(config):
            # A name prefix, not a name: a cancelled profile keeps its name for two years, and a workspace
            # copy must be able to come back after a destroy. AWS completes the prefix with a unique suffix.
            self.signing_profile = SignerSigningProfile(
                self, "signing_profile", platform_id=SIGNING_PLATFORM, name_prefix=naming.underscored_prefix(signer_base_name)
            )
            action = config.code_signing.untrusted_artifact_on_deployment
            self.code_signing_config = LambdaCodeSigningConfig(
                self,
                "code_signing_config",
                description=f"PatternWatch {config.name}: code signed by this environment's profile ({action} otherwise)",
                allowed_publishers=LambdaCodeSigningConfigAllowedPublishers(
                    signing_profile_version_arns=[self.signing_profile.version_arn]
                ),
                policies=LambdaCodeSigningConfigPolicies(untrusted_artifact_on_deployment=action),
            )

    def upload(
        self, scope: Construct, id: str, package: Package, *, kind: str, name: str, release_owns_code: bool = False
    ) -> CodeLocation:
        """Upload `package` (and sign it where code is signed) in `scope`, so the objects keep the construct
        path, and the Terraform address, of the function or layer they belong to."""
        asset = TerraformAsset(scope, f"{id}_asset", path=str(package.path), type=AssetType.FILE)
        upload = S3Object(
            scope,
            f"{id}_upload",
            bucket=self.bucket.id,
            key=artifact_key(kind, name, package.sha256_hex),
            source=asset.path,
            source_hash=package.source_code_hash,
            lifecycle=TerraformResourceLifecycle(ignore_changes=CONTENT_ATTRIBUTES) if release_owns_code else None,
            depends_on=self.upload_after or None,
        )
        if self.signing_profile is None:
            return CodeLocation(upload.bucket, upload.key)
        job = SignerSigningJob(
            scope,
            f"{id}_signing_job",
            profile_name=self.signing_profile.name,
            source=SignerSigningJobSource(s3=SignerSigningJobSourceS3(bucket=upload.bucket, key=upload.key, version=upload.version_id)),
            destination=SignerSigningJobDestination(s3=SignerSigningJobDestinationS3(bucket=self.bucket.id, prefix=signed_prefix(kind, name))),
        )
        signed = job.signed_object.get(0).s3.get(0)
        return CodeLocation(signed.bucket, signed.key)
