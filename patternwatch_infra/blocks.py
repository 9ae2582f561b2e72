"""Reusable building blocks: each one is a resource plus the hardening it always needs."""
from __future__ import annotations

import json
from collections.abc import Sequence

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import DataAwsIamPolicyDocumentStatement
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleTransition,
)
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from constructs import Construct

from .naming import Naming
from .policies import deny_insecure_transport, policy_document, service_principal, statement
from .scan_skips import RETENTION_SET_PER_ENVIRONMENT, skip_check

# SQS keeps messages at most 14 days; failed messages get all of it so nobody loses one over a holiday.
MAX_SQS_RETENTION_SECONDS = 14 * 24 * 3600
# KMS data keys are reused for this long, which cuts KMS calls (and cost) for busy queues.
KMS_DATA_KEY_REUSE_SECONDS = 300
NONCURRENT_VERSION_EXPIRY_DAYS = 90
ABORT_INCOMPLETE_UPLOAD_DAYS = 7


def encrypted_log_group(scope: Construct, id: str, name: str, *, retention_days: int, kms_key: KmsKey) -> CloudwatchLogGroup:
    """A log group encrypted with the platform key that keeps logs for the environment's retention.

    The retention is a per-environment cost choice (envs/*.json), so checkov's one-year minimum is
    skipped with that reason. A function rather than a construct: the group keeps the construct path,
    and so the Terraform address, of the construct that asks for it.
    """
    group = CloudwatchLogGroup(scope, id, name=name, retention_in_days=retention_days, kms_key_id=kms_key.arn)
    skip_check(group, "CKV_AWS_338", RETENTION_SET_PER_ENVIRONMENT)
    return group


class SecureBucket(Construct):
    """An S3 bucket: versioned, SSE-KMS with a bucket key, private, TLS-only, Intelligent-Tiering from day 0."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_name: str,
        kms_key: KmsKey,
        force_destroy: bool,
        lifecycle: TerraformResourceLifecycle | None,
        extra_policy_statements: Sequence = (),
    ) -> None:
        super().__init__(scope, id)
        self.bucket = S3Bucket(self, "bucket", bucket=bucket_name, force_destroy=force_destroy, lifecycle=lifecycle)
        skip_check(self.bucket, "CKV_AWS_18", "S3 cannot deliver server access logs to an SSE-KMS bucket; CloudTrail data events are the audit trail")
        skip_check(self.bucket, "CKV_AWS_144", "single-region platform: the data is re-creatable from the market feed, replication would double storage cost")
        skip_check(self.bucket, "CKV2_AWS_62", "nothing consumes object events from this bucket")
        bucket_id = self.bucket.id
        self.versioning = S3BucketVersioningA(
            self, "versioning", bucket=bucket_id, versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled")
        )
        self.encryption = S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=bucket_id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=kms_key.arn
                    ),
                    # A bucket key lets S3 reuse data keys instead of calling KMS per object: far fewer KMS requests.
                    bucket_key_enabled=True,
                )
            ],
        )
        self.public_access_block = S3BucketPublicAccessBlock(
            self,
            "public_access_block",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        self.ownership = S3BucketOwnershipControls(
            self, "ownership", bucket=bucket_id, rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced")
        )
        self.lifecycle_configuration = S3BucketLifecycleConfiguration(
            self,
            "lifecycle",
            bucket=bucket_id,
            rule=[
                S3BucketLifecycleConfigurationRule(
                    id="intelligent-tiering-and-version-expiry",
                    status="Enabled",
                    # An empty filter applies the rule to every object.
                    filter=[S3BucketLifecycleConfigurationRuleFilter()],
                    transition=[S3BucketLifecycleConfigurationRuleTransition(days=0, storage_class="INTELLIGENT_TIERING")],
                    noncurrent_version_expiration=[
                        S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=NONCURRENT_VERSION_EXPIRY_DAYS)
                    ],
                    abort_incomplete_multipart_upload=[
                        S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=ABORT_INCOMPLETE_UPLOAD_DAYS)
                    ],
                )
            ],
            # Lifecycle rules on unversioned objects would race the versioning switch on first apply.
            depends_on=[self.versioning],
        )
        skip_check(
            self.lifecycle_configuration,
            "CKV_AWS_300",
            "the rule aborts incomplete uploads after 7 days for every object (empty filter); checkov's JSON parser adds line markers to the empty filter and misreads it as a prefix filter",
        )
        document = policy_document(
            self,
            "policy_document",
            [
                deny_insecure_transport(["s3:*"], [self.bucket.arn, f"{self.bucket.arn}/*"]),
                *extra_policy_statements,
            ],
        )
        self.policy = S3BucketPolicy(
            self,
            "policy",
            bucket=bucket_id,
            policy=document.json,
            # S3 rejects a policy while the public access block is still being applied.
            depends_on=[self.public_access_block],
        )


class EncryptedQueue(Construct):
    """An SQS queue encrypted with the platform key, TLS-only, optionally with its own dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        queue_name: str,
        kms_key: KmsKey,
        visibility_timeout_seconds: int = 30,
        message_retention_seconds: int = 4 * 24 * 3600,
        dead_letter_queue_name: str | None = None,
        max_receive_count: int = 3,
    ) -> None:
        super().__init__(scope, id)
        self.dead_letter_queue: SqsQueue | None = None
        redrive_policy = None
        if dead_letter_queue_name is not None:
            self.dead_letter_queue = SqsQueue(
                self,
                "dead_letter_queue",
                name=dead_letter_queue_name,
                kms_master_key_id=kms_key.arn,
                kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
                message_retention_seconds=MAX_SQS_RETENTION_SECONDS,
            )
            redrive_policy = json.dumps(
                {"deadLetterTargetArn": self.dead_letter_queue.arn, "maxReceiveCount": max_receive_count},
                separators=(",", ":"),
            )
        self.queue = SqsQueue(
            self,
            "queue",
            name=queue_name,
            kms_master_key_id=kms_key.arn,
            kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
            visibility_timeout_seconds=visibility_timeout_seconds,
            message_retention_seconds=message_retention_seconds,
            redrive_policy=redrive_policy,
        )
        named_queues = [("queue", self.queue)]
        if self.dead_letter_queue is not None:
            named_queues.append(("dead_letter_queue", self.dead_letter_queue))
        self.policies = [
            SqsQueuePolicy(
                self,
                f"{name}_policy",
                queue_url=queue.url,
                policy=policy_document(
                    self, f"{name}_policy_document", [deny_insecure_transport(["sqs:*"], [queue.arn])]
                ).json,
            )
            for name, queue in named_queues
        ]

class EncryptedTopic(Construct):
    """An SNS topic encrypted with the platform key whose policy refuses publishing without TLS."""

    def __init__(
        self, scope: Construct, id: str, *, topic_name: str, kms_key: KmsKey, publishing_services: Sequence[str] = ()
    ) -> None:
        super().__init__(scope, id)
        self.topic = SnsTopic(self, "topic", name=topic_name, kms_master_key_id=kms_key.arn)
        statements = [deny_insecure_transport(["sns:Publish"], [self.topic.arn])]
        if publishing_services:
            # AWS services (e.g. CloudWatch alarms) publish under their own principal, not an IAM role of ours.
            statements.append(
                statement(
                    sid="AllowServicesToPublish",
                    actions=["sns:Publish"],
                    resources=[self.topic.arn],
                    principals=[service_principal(*publishing_services)],
                )
            )
        document = policy_document(self, "policy_document", statements)
        self.policy = SnsTopicPolicy(self, "policy", arn=self.topic.arn, policy=document.json)


def assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        },
        separators=(",", ":"),
    )


class ServiceRole(Construct):
    """An IAM role one AWS service assumes, with exactly one inline least-privilege policy."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role_name: str,
        policy_name: str,
        service: str,
        statements: Sequence[DataAwsIamPolicyDocumentStatement] | None = None,
        wildcard_resource_reason: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.policy_name = policy_name
        self.role = IamRole(self, "role", name=role_name, assume_role_policy=assume_role_policy(service))
        self.policy: IamRolePolicy | None = None
        if statements is not None:
            self.grant(statements, wildcard_resource_reason=wildcard_resource_reason)

    @classmethod
    def named(
        cls,
        scope: Construct,
        id: str,
        *,
        naming: Naming,
        base_name: str,
        service: str,
        statements: Sequence[DataAwsIamPolicyDocumentStatement] | None = None,
        wildcard_resource_reason: str | None = None,
    ) -> ServiceRole:
        """The project's convention: `<base>Role-<s>` with one inline `<base>Policy-<s>`."""
        return cls(
            scope,
            id,
            role_name=naming.name(f"{base_name}Role"),
            policy_name=naming.name(f"{base_name}Policy"),
            service=service,
            statements=statements,
            wildcard_resource_reason=wildcard_resource_reason,
        )

    def grant(
        self, statements: Sequence[DataAwsIamPolicyDocumentStatement], *, wildcard_resource_reason: str | None = None
    ) -> IamRolePolicy:
        """Attach the role's policy; for roles whose resources exist only after the role is needed.

        A statement on the bare "*" resource needs `wildcard_resource_reason`: why AWS forces it.
        """
        if self.policy is not None:
            raise ValueError(f"{self.policy_name} is already attached: one policy per role keeps it reviewable")
        self.document = policy_document(self, "policy_document", statements)
        if wildcard_resource_reason:
            skip_check(self.document, "CKV_AWS_356", wildcard_resource_reason)
        self.policy = IamRolePolicy(self, "policy", name=self.policy_name, role=self.role.id, policy=self.document.json)
        return self.policy
