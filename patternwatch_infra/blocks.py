"""Reusable building blocks: each one is a resource plus the hardening it always needs."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

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
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleTransition,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
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
from .policies import condition, deny_insecure_transport, policy_document, service_principal, statement
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


@dataclass(frozen=True)
class AccessLogs:
    """Where a bucket's S3 server access logs go: the environment's access-log bucket, under `prefix`."""

    target: SecureBucket
    prefix: str


class SecureBucket(Construct):
    """An S3 bucket: versioned, SSE-KMS with a bucket key, private, TLS-only, Intelligent-Tiering from day 0,
    and server access logs delivered to the environment's access-log bucket.

    `kms_key=None` is for the access-log bucket alone: S3 delivers server access logs only to buckets whose
    default encryption is SSE-S3, so that bucket says why (`sse_s3_because`). It is also the one bucket
    without access logs of its own (`access_logs=None`): logging it would log the logging.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_name: str,
        kms_key: KmsKey | None,
        force_destroy: bool,
        lifecycle: TerraformResourceLifecycle | None,
        access_logs: AccessLogs | None,
        extra_policy_statements: Sequence = (),
        expire_objects_after_days: int | None = None,
        sse_s3_because: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        if (kms_key is None) != bool(sse_s3_because):
            raise ValueError(f"{id}: a bucket without the platform key must say why (sse_s3_because), and only then")
        self.bucket = S3Bucket(self, "bucket", bucket=bucket_name, force_destroy=force_destroy, lifecycle=lifecycle)
        skip_check(
            self.bucket,
            "CKV_AWS_144",
            "one region per environment by design (envs/*.json); the data bucket's contents are re-creatable from the market "
            "feed and the log buckets hold time-limited logs, so a replica region's bucket and KMS key would double storage for nothing",
        )
        skip_check(self.bucket, "CKV2_AWS_62", "nothing consumes object events from this bucket")
        bucket_id = self.bucket.id
        self.versioning = S3BucketVersioningA(
            self, "versioning", bucket=bucket_id, versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled")
        )
        if kms_key is not None:
            by_default = S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                sse_algorithm="aws:kms", kms_master_key_id=kms_key.arn
            )
        else:
            by_default = S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(sse_algorithm="AES256")
            skip_check(self.bucket, "CKV_AWS_145", sse_s3_because)
        self.encryption = S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=bucket_id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=by_default,
                    # A bucket key lets S3 reuse data keys instead of calling KMS per object: far fewer KMS requests.
                    bucket_key_enabled=True if kms_key is not None else None,
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
                    expiration=(
                        [S3BucketLifecycleConfigurationRuleExpiration(days=expire_objects_after_days)] if expire_objects_after_days else None
                    ),
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
        self.logging: S3BucketLoggingA | None = None
        if access_logs is not None:
            self.logging = S3BucketLoggingA(
                self,
                "access_logs",
                bucket=bucket_id,
                target_bucket=access_logs.target.bucket.id,
                target_prefix=access_logs.prefix,
                # S3 checks that its logging service may write to the target when logging is switched on.
                depends_on=[access_logs.target.policy],
            )


def access_log_delivery_statement(sid: str, log_bucket_arn: str, prefix: str, source_bucket_name: str, account: str):
    """What S3's logging service needs to deliver one bucket's server access logs under `prefix`, and only those."""
    return statement(
        sid=sid,
        actions=["s3:PutObject"],
        resources=[f"{log_bucket_arn}/{prefix}*"],
        principals=[service_principal("logging.s3.amazonaws.com")],
        conditions=[
            condition("ArnLike", "aws:SourceArn", f"arn:aws:s3:::{source_bucket_name}"),
            condition("StringEquals", "aws:SourceAccount", account),
        ],
    )


@dataclass(frozen=True)
class ServiceSender:
    """An AWS service that may send to a queue, and only on behalf of these resources (aws:SourceArn)."""

    sid: str
    service: str
    source_arns: Sequence[str]

    def statement(self, queue_arn: str) -> DataAwsIamPolicyDocumentStatement:
        return statement(
            sid=self.sid,
            actions=["sqs:SendMessage"],
            resources=[queue_arn],
            principals=[service_principal(self.service)],
            conditions=[condition("ArnEquals", "aws:SourceArn", *self.source_arns)],
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
        service_senders: Sequence[ServiceSender] = (),
    ) -> None:
        super().__init__(scope, id)

        def encrypted(queue_id: str, name: str, **settings) -> SqsQueue:
            """The queue or its dead-letter queue: both under the platform key, reusing data keys alike."""
            return SqsQueue(
                self, queue_id, name=name, kms_master_key_id=kms_key.arn, kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
                **settings,
            )

        self.dead_letter_queue: SqsQueue | None = None
        redrive_policy = None
        if dead_letter_queue_name is not None:
            self.dead_letter_queue = encrypted("dead_letter_queue", dead_letter_queue_name, message_retention_seconds=MAX_SQS_RETENTION_SECONDS)
            redrive_policy = json.dumps(
                {"deadLetterTargetArn": self.dead_letter_queue.arn, "maxReceiveCount": max_receive_count},
                separators=(",", ":"),
            )
        self.queue = encrypted(
            "queue",
            queue_name,
            visibility_timeout_seconds=visibility_timeout_seconds,
            message_retention_seconds=message_retention_seconds,
            redrive_policy=redrive_policy,
        )
        named_queues = [("queue", self.queue, service_senders)]
        if self.dead_letter_queue is not None:
            named_queues.append(("dead_letter_queue", self.dead_letter_queue, ()))
        self.policies = [
            SqsQueuePolicy(
                self,
                f"{name}_policy",
                queue_url=queue.url,
                policy=policy_document(
                    self,
                    f"{name}_policy_document",
                    [deny_insecure_transport(["sqs:*"], [queue.arn]), *(sender.statement(queue.arn) for sender in senders)],
                ).json,
            )
            for name, queue, senders in named_queues
        ]

    @classmethod
    def for_failures(
        cls, scope: Construct, id: str, *, queue_name: str, kms_key: KmsKey, service_senders: Sequence[ServiceSender] = ()
    ) -> EncryptedQueue:
        """A queue that holds what failed (records, events): it keeps them as long as SQS can."""
        return cls(
            scope, id, queue_name=queue_name, kms_key=kms_key, message_retention_seconds=MAX_SQS_RETENTION_SECONDS,
            service_senders=service_senders,
        )


# The endpoint types SNS can log delivery status for (email and SMS have no such setting).
DELIVERY_STATUS_PROTOCOLS = ("application", "firehose", "http", "lambda", "sqs")
# SNS writes failed deliveries to the topic's log group name plus this.
DELIVERY_FAILURE_LOG_GROUP_SUFFIX = "/Failure"


@dataclass(frozen=True)
class DeliveryStatusLogging:
    """SNS writes the outcome of every delivery to CloudWatch Logs, assuming `role` (FSBP SNS.2).

    Each topic gets its two log groups (`sns/<region>/<account>/<topic>` and `.../Failure`, the names SNS
    writes to) made here, encrypted and with the environment's retention, so SNS never creates them itself.
    """

    role: IamRole
    region: str
    account: str
    retention_days: int
    # Alerts, approvals and alarms are a few thousand messages a day: log every successful delivery too.
    success_sample_percent: int = 100


class EncryptedTopic(Construct):
    """An SNS topic encrypted with the platform key whose policy refuses publishing without TLS, and
    (with `delivery_status`) whose deliveries are logged to two encrypted log groups of its own."""

    def __init__(
        self, scope: Construct, id: str, *, topic_name: str, kms_key: KmsKey, publishing_services: Sequence[str] = (),
        delivery_status: DeliveryStatusLogging | None = None,
    ) -> None:
        super().__init__(scope, id)
        feedback: dict = {}
        self.delivery_log_groups: list[CloudwatchLogGroup] = []
        if delivery_status is not None:
            base = f"sns/{delivery_status.region}/{delivery_status.account}/{topic_name}"
            self.delivery_log_groups = [
                encrypted_log_group(self, f"delivery_{outcome}_logs", f"{base}{suffix}", retention_days=delivery_status.retention_days, kms_key=kms_key)
                for outcome, suffix in (("success", ""), ("failure", DELIVERY_FAILURE_LOG_GROUP_SUFFIX))
            ]
            for protocol in DELIVERY_STATUS_PROTOCOLS:
                feedback[f"{protocol}_success_feedback_role_arn"] = delivery_status.role.arn
                feedback[f"{protocol}_success_feedback_sample_rate"] = delivery_status.success_sample_percent
                feedback[f"{protocol}_failure_feedback_role_arn"] = delivery_status.role.arn
        self.topic = SnsTopic(self, "topic", name=topic_name, kms_master_key_id=kms_key.arn, **feedback)
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
    ) -> None:
        super().__init__(scope, id)
        self.policy_name = policy_name
        self.role = IamRole(self, "role", name=role_name, assume_role_policy=assume_role_policy(service))
        self.policy: IamRolePolicy | None = None
        if statements is not None:
            self.grant(statements)

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
    ) -> ServiceRole:
        """The project's convention: `<base>Role-<s>` with one inline `<base>Policy-<s>`."""
        return cls(
            scope,
            id,
            role_name=naming.name(f"{base_name}Role"),
            policy_name=naming.name(f"{base_name}Policy"),
            service=service,
            statements=statements,
        )

    def grant(self, statements: Sequence[DataAwsIamPolicyDocumentStatement]) -> IamRolePolicy:
        """Attach the role's policy; for roles whose resources exist only after the role is needed (a statement
        on the bare "*" resource is for actions without resource-level permissions only: tests/infra/test_iam.py)."""
        if self.policy is not None:
            raise ValueError(f"{self.policy_name} is already attached: one policy per role keeps it reviewable")
        self.document = policy_document(self, "policy_document", statements)
        self.policy = IamRolePolicy(self, "policy", name=self.policy_name, role=self.role.id, policy=self.document.json)
        return self.policy
