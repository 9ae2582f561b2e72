"""Data layer: the platform KMS key and everything that holds data, all encrypted with that key.

Creates:
- KMS key `patternwatch-<s>` (rotation on) and its alias
- DynamoDB `TradingPatterns-<s>` (bars, patterns, RecentPatternsIndex) and `ApprovalTracking-<s>` (TTL)
- SQS `AlertQueue-<s>`, `PendingApprovals-<s>`, each with a DLQ, `StreamConsumerFailures-<s>` and
  `ThresholdChecker-DLQ-<s>` (the events the threshold checker failed on every retry)
- SNS `TradingAlerts-<s>`, `AlertApprovalRequests-<s>` (one e-mail subscription per approver, filtered on
  the `approver` attribute, so each person receives only their own link) and `PatternWatchOps-<s>` (alarms),
  each logging its delivery status to two encrypted log groups through `SnsDeliveryStatusRole-<s>`
- Kinesis `MarketDataStream-<s>` (on-demand, retention per environment) with the enhanced fan-out
  consumer `MarketDataFanOut-<s>` (KinesisConsumer reads through it)
- S3 data bucket and the `aws-waf-logs-` bucket (platform key), which deliver their server access logs to
  `patternwatch-access-logs-<s>` (SSE-S3: the one bucket S3's log delivery can write to)
"""
from __future__ import annotations

import json
import math

from cdktf import Token
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTableGlobalSecondaryIndex,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
    DynamodbTableTtl,
)
from cdktf_cdktf_provider_aws.kinesis_stream import KinesisStream, KinesisStreamStreamModeDetails
from cdktf_cdktf_provider_aws.kinesis_stream_consumer import KinesisStreamConsumer
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct
from patternwatch_shared.names.messages import APPROVER_MESSAGE_ATTRIBUTE
from patternwatch_shared.names.table import (
    APPROVAL_PARTITION_KEY, APPROVAL_TTL_ATTRIBUTE, RECENT_PATTERNS_INDEX, RECENT_PATTERNS_INDEX_PARTITION_KEY,
    RECENT_PATTERNS_INDEX_SORT_KEY, TABLE_PARTITION_KEY, TABLE_SORT_KEY,
)

from .architecture_layer import ArchitectureLayer
from .blocks import (
    AccessLogs, DeliveryStatusLogging, EncryptedQueue, EncryptedTopic, SecureBucket, ServiceRole, access_log_delivery_statement,
)
from .code_artifacts import ARTIFACT_BUCKET_ACCESS_LOG_PREFIX, ARTIFACT_BUCKET_BASE_NAME
from .config import EnvironmentConfig
from .naming import Naming
from .policies import account_principal, condition, policy_document, service_principal, statement
from .scan_skips import skip_check

# AWS asks for a queue visibility timeout of at least six times the timeout of the function reading it.
VISIBILITY_TIMEOUTS_PER_FUNCTION_TIMEOUT = 6
# SQS holds a received message invisible for at most 12 hours; approval-expiry re-arms longer waits.
SQS_MAX_VISIBILITY_SECONDS = 12 * 3600
# Receives a PendingApprovals message may fail for other reasons (throttling, a deployment) before it is
# dead-lettered, on top of the receives its timer needs.
PENDING_APPROVALS_SPARE_RECEIVES = 3
WAF_LOG_BUCKET_PREFIX = "aws-waf-logs-"
# Where each bucket's server access logs go in the access-log bucket.
DATA_BUCKET_ACCESS_LOG_PREFIX = "data/"
WAF_LOG_BUCKET_ACCESS_LOG_PREFIX = "waf-logs/"
# S3 delivers server access logs only to a bucket whose default encryption is SSE-S3 (SSE-KMS is not supported
# for the destination), so this one bucket deviates from "everything with the platform key".
ACCESS_LOGS_NEED_SSE_S3 = (
    "S3 server access log delivery supports only SSE-S3 (AES256) default encryption on the destination bucket; this bucket "
    "holds access logs only and is private, TLS-only and versioned like the others"
)
# A workspace is a throwaway copy (`make destroy WORKSPACE=...` must remove it); the environment itself is protected.
DELETION_PROTECTED_IN_DEFAULT_WORKSPACE = '${terraform.workspace == "default"}'


def pending_approvals_max_receives(approval_expiry_seconds: int) -> int:
    """maxReceiveCount of PendingApprovals: enough receives that no approval is dead-lettered while it waits.

    A timer message is received once when it is queued (approval-expiry sets its visibility to the time
    left, at most 12 hours), once more for every further 12 hours, and once at the deadline (the
    auto-reject), plus spare receives for failures.
    """
    arms = math.ceil(approval_expiry_seconds / SQS_MAX_VISIBILITY_SECONDS)
    return arms + 1 + PENDING_APPROVALS_SPARE_RECEIVES


class DataLayer(ArchitectureLayer):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, naming: Naming) -> None:
        super().__init__(scope, id, config=config, naming=naming)
        naming = self.naming
        protected = self.stateful_lifecycle
        self.caller = DataAwsCallerIdentity(self, "caller")
        account = self.caller.account_id

        self.kms_key = KmsKey(
            self,
            "platform_key",
            description=f"PatternWatch platform key ({naming.suffix}): encrypts all data at rest",
            enable_key_rotation=True,
            deletion_window_in_days=30 if config.prevent_destroy else 7,
            policy=self._key_policy(account).json,
            lifecycle=protected,
        )
        self.kms_alias = KmsAlias(
            self, "platform_key_alias", name=naming.name("alias/patternwatch"), target_key_id=self.kms_key.key_id
        )

        string_keys = (TABLE_PARTITION_KEY, TABLE_SORT_KEY, RECENT_PATTERNS_INDEX_PARTITION_KEY, RECENT_PATTERNS_INDEX_SORT_KEY)
        self.trading_patterns_table = self._table(
            "trading_patterns",
            "TradingPatterns",
            hash_key=TABLE_PARTITION_KEY,
            range_key=TABLE_SORT_KEY,
            attribute=[DynamodbTableAttribute(name=key, type="S") for key in string_keys],
            global_secondary_index=[
                DynamodbTableGlobalSecondaryIndex(
                    name=RECENT_PATTERNS_INDEX,
                    hash_key=RECENT_PATTERNS_INDEX_PARTITION_KEY,
                    range_key=RECENT_PATTERNS_INDEX_SORT_KEY,
                    # The threshold checker reads whole pattern items from the index, so project them all.
                    projection_type="ALL",
                )
            ],
        )
        self.approval_table = self._table(
            "approval_tracking",
            "ApprovalTracking",
            hash_key=APPROVAL_PARTITION_KEY,
            attribute=[DynamodbTableAttribute(name=APPROVAL_PARTITION_KEY, type="S")],
            ttl=DynamodbTableTtl(enabled=True, attribute_name=APPROVAL_TTL_ATTRIBUTE),
        )

        def function_queue(id: str, base_name: str, **settings) -> EncryptedQueue:
            """A queue a function reads: `<base>` with its dead-letter queue `<base>-DLQ`."""
            return EncryptedQueue(
                self, id, queue_name=naming.name(base_name), dead_letter_queue_name=naming.name(f"{base_name}-DLQ"), kms_key=self.kms_key,
                visibility_timeout_seconds=VISIBILITY_TIMEOUTS_PER_FUNCTION_TIMEOUT * config.lambda_.timeout_seconds, **settings,
            )

        self.alert_queue = function_queue("alert_queue", "AlertQueue")
        # The approvals' expiry timer (approval-expiry reads it): each message is re-armed to its approval's
        # deadline, so the queue's own visibility only paces retries after a failure.
        self.pending_approvals_queue = function_queue(
            "pending_approvals_queue", "PendingApprovals", max_receive_count=pending_approvals_max_receives(config.approval_expiry_seconds)
        )
        # Kinesis records the consumer gives up on land here (the mapping's on-failure destination).
        self.stream_failure_queue = EncryptedQueue.for_failures(
            self, "stream_failure_queue", queue_name=naming.name("StreamConsumerFailures"), kms_key=self.kms_key
        )
        # The threshold checker is invoked asynchronously (its schedule): an event it failed on every retry lands here.
        self.threshold_checker_dlq = EncryptedQueue.for_failures(
            self, "threshold_checker_dlq", queue_name=naming.name("ThresholdChecker-DLQ"), kms_key=self.kms_key
        )

        # SNS logs every delivery's outcome (FSBP SNS.2) with this role, into log groups each topic makes.
        self.sns_delivery_status_role = ServiceRole.named(
            self, "sns_delivery_status_role", naming=naming, base_name="SnsDeliveryStatus", service="sns.amazonaws.com"
        )
        delivery_status = DeliveryStatusLogging(
            role=self.sns_delivery_status_role.role,
            region=config.region,
            # The log group names carry the account: the configured one where there is one (the provider allows no other).
            account=config.account_id or account,
            retention_days=config.lambda_.log_retention_days,
        )
        self.trading_alerts_topic = EncryptedTopic(
            self, "trading_alerts", topic_name=naming.name("TradingAlerts"), kms_key=self.kms_key, delivery_status=delivery_status
        )
        self.approval_requests_topic = EncryptedTopic(
            self, "approval_requests", topic_name=naming.name("AlertApprovalRequests"), kms_key=self.kms_key, delivery_status=delivery_status
        )
        # Each approver's own link reaches only them: the alert processor publishes one request per approver
        # with the `approver` attribute, and each subscription lets through only its approver's.
        self.approver_subscriptions = {
            approver.id: SnsTopicSubscription(
                self,
                f"approver_{approver.id.replace('-', '_')}",
                topic_arn=self.approval_requests_topic.topic.arn,
                protocol="email",
                endpoint=approver.email,
                filter_policy=json.dumps({APPROVER_MESSAGE_ATTRIBUTE: [approver.id]}),
                filter_policy_scope="MessageAttributes",
            )
            for approver in config.approvers
        }
        # Every alarm of the platform notifies operators here.
        self.ops_topic = EncryptedTopic(
            self,
            "ops",
            topic_name=naming.name("PatternWatchOps"),
            kms_key=self.kms_key,
            # CloudWatch alarms and AWS Budgets notifications publish here.
            publishing_services=["cloudwatch.amazonaws.com", "budgets.amazonaws.com"],
            delivery_status=delivery_status,
        )
        delivery_groups = [g for t in (self.trading_alerts_topic, self.approval_requests_topic, self.ops_topic) for g in t.delivery_log_groups]
        self.sns_delivery_status_role.grant(
            [
                # SNS names its log streams itself; the groups exist already, CreateLogGroup only lets SNS's check pass.
                statement(sid="CreateDeliveryStatusGroups", actions=["logs:CreateLogGroup"], resources=[g.arn for g in delivery_groups]),
                statement(
                    sid="WriteDeliveryStatusLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[f"{g.arn}:*" for g in delivery_groups],
                ),
            ]
        )

        self.market_data_stream = KinesisStream(
            self,
            "market_data_stream",
            name=naming.name("MarketDataStream"),
            stream_mode_details=KinesisStreamStreamModeDetails(stream_mode="ON_DEMAND"),
            retention_period=config.kinesis_retention_hours,
            encryption_type="KMS",
            kms_key_id=self.kms_key.arn,
            lifecycle=protected,
        )
        # Enhanced fan-out gives KinesisConsumer its own 2 MB/s per shard and push delivery.
        self.market_data_fan_out = KinesisStreamConsumer(
            self,
            "market_data_fan_out",
            name=naming.name("MarketDataFanOut"),
            stream_arn=self.market_data_stream.arn,
        )

        data_bucket_name = naming.bucket("patternwatch-data")
        waf_log_bucket_name = naming.bucket(f"{WAF_LOG_BUCKET_PREFIX}patternwatch")
        # Server access logs of every bucket (FSBP S3.9); S3's logging service may write each one's under its prefix only.
        access_log_bucket_name = naming.bucket("patternwatch-access-logs")
        access_log_bucket_arn = f"arn:aws:s3:::{access_log_bucket_name}"
        self.access_log_bucket = SecureBucket(
            self,
            "access_log_bucket",
            bucket_name=access_log_bucket_name,
            kms_key=None,
            sse_s3_because=ACCESS_LOGS_NEED_SSE_S3,
            # The access-log bucket logs nothing itself: that would log the logging.
            access_logs=None,
            force_destroy=not config.prevent_destroy,
            lifecycle=protected,
            # Access logs are kept as long as the environment keeps its other logs.
            expire_objects_after_days=config.lambda_.log_retention_days,
            extra_policy_statements=[
                access_log_delivery_statement("DataBucketAccessLogs", access_log_bucket_arn, DATA_BUCKET_ACCESS_LOG_PREFIX, data_bucket_name, account),
                access_log_delivery_statement(
                    "WafLogBucketAccessLogs", access_log_bucket_arn, WAF_LOG_BUCKET_ACCESS_LOG_PREFIX, waf_log_bucket_name, account
                ),
                # The compute layer's artifact bucket (code_artifacts.py) logs here too.
                access_log_delivery_statement(
                    "ArtifactBucketAccessLogs", access_log_bucket_arn, ARTIFACT_BUCKET_ACCESS_LOG_PREFIX,
                    naming.bucket(ARTIFACT_BUCKET_BASE_NAME), account,
                ),
            ],
        )

        def logged_bucket(id: str, bucket_name: str, access_log_prefix: str, **extra) -> SecureBucket:
            """A bucket under the platform key whose access logs go to its prefix of the access-log bucket."""
            return SecureBucket(
                self, id, bucket_name=bucket_name, kms_key=self.kms_key, force_destroy=not config.prevent_destroy, lifecycle=protected,
                access_logs=AccessLogs(self.access_log_bucket, access_log_prefix), **extra,
            )

        self.data_bucket = logged_bucket("data_bucket", data_bucket_name, DATA_BUCKET_ACCESS_LOG_PREFIX)
        self.waf_log_bucket = logged_bucket(
            "waf_log_bucket", waf_log_bucket_name, WAF_LOG_BUCKET_ACCESS_LOG_PREFIX,
            extra_policy_statements=self._log_delivery_statements(account, waf_log_bucket_name),
        )
        self._outputs()

    def _table(self, id: str, base_name: str, **keys_and_indexes) -> DynamodbTable:
        """A table billed per request, with point-in-time recovery, encrypted with the platform key, and with
        deletion protection in every real environment (FSBP DynamoDB.6; not on the emulator, not in a workspace copy)."""
        return DynamodbTable(
            self,
            id,
            name=self.naming.name(base_name),
            billing_mode="PAY_PER_REQUEST",
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=self.kms_key.arn),
            deletion_protection_enabled=Token.as_any(DELETION_PROTECTED_IN_DEFAULT_WORKSPACE) if self.config.emulator is None else False,
            lifecycle=self.stateful_lifecycle,
            **keys_and_indexes,
        )

    def _key_policy(self, account: str):
        account_root = f"arn:aws:iam::{account}:root"
        region = self.config.region
        # In a key policy "*" means "this key": the policy is attached to exactly one key.
        this_key = ["*"]
        use_key = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]
        same_account = condition("StringEquals", "aws:SourceAccount", account)
        document = policy_document(
            self,
            "platform_key_policy",
            [
                # AWS's default key statement: it lets IAM policies in this account grant key use. Without it
                # the key could become unmanageable, so this is the one place a kms:* grant is kept.
                statement(
                    sid="EnableIamPolicies",
                    actions=["kms:*"],
                    resources=this_key,
                    principals=[account_principal(account_root)],
                ),
                statement(
                    sid="AllowCloudWatchLogs",
                    actions=use_key,
                    resources=this_key,
                    principals=[service_principal(f"logs.{region}.amazonaws.com")],
                    conditions=[
                        condition("ArnLike", "kms:EncryptionContext:aws:logs:arn", f"arn:aws:logs:{region}:{account}:log-group:*")
                    ],
                ),
                # Services that write into the encrypted topics, queues and buckets on the platform's behalf:
                # alarms and budgets publish to SNS, SNS delivers to SQS, EventBridge targets, WAF log delivery to S3.
                statement(
                    sid="AllowAwsServicesToUseKeyForThisAccount",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=this_key,
                    principals=[
                        service_principal(
                            "cloudwatch.amazonaws.com",
                            "sns.amazonaws.com",
                            "events.amazonaws.com",
                            "delivery.logs.amazonaws.com",
                            "budgets.amazonaws.com",
                        )
                    ],
                    conditions=[same_account],
                ),
            ],
        )
        for check in ("CKV_AWS_109", "CKV_AWS_111", "CKV_AWS_356"):
            skip_check(document, check, "a key policy's \"*\" is this key; kms:* for the account root is AWS's default statement that lets IAM policies grant key use")
        return document

    @staticmethod
    def _log_delivery_statements(account: str, bucket_name: str) -> list:
        """What WAF's log delivery service needs on its bucket; AWS adds these itself if we do not."""
        bucket_arn = f"arn:aws:s3:::{bucket_name}"
        same_account = condition("StringEquals", "aws:SourceAccount", account)
        delivery = [service_principal("delivery.logs.amazonaws.com")]
        return [
            statement(
                sid="AWSLogDeliveryWrite",
                actions=["s3:PutObject"],
                resources=[f"{bucket_arn}/AWSLogs/{account}/*"],
                principals=delivery,
                conditions=[
                    same_account,
                    condition("StringEquals", "s3:x-amz-acl", "bucket-owner-full-control"),
                ],
            ),
            statement(
                sid="AWSLogDeliveryAclCheck",
                actions=["s3:GetBucketAcl"],
                resources=[bucket_arn],
                principals=delivery,
                conditions=[same_account],
            ),
        ]

    def _outputs(self) -> None:
        for name, value in {
            "kms_key_arn": self.kms_key.arn,
            "kms_key_alias": self.kms_alias.name,
            "trading_patterns_table_name": self.trading_patterns_table.name,
            "trading_patterns_table_arn": self.trading_patterns_table.arn,
            "approval_tracking_table_name": self.approval_table.name,
            "approval_tracking_table_arn": self.approval_table.arn,
            "alert_queue_url": self.alert_queue.queue.url,
            "alert_queue_arn": self.alert_queue.queue.arn,
            "alert_dlq_url": self.alert_queue.dead_letter_queue.url,
            "pending_approvals_queue_url": self.pending_approvals_queue.queue.url,
            "pending_approvals_queue_arn": self.pending_approvals_queue.queue.arn,
            "pending_approvals_dlq_url": self.pending_approvals_queue.dead_letter_queue.url,
            "stream_failure_queue_url": self.stream_failure_queue.queue.url,
            "stream_failure_queue_arn": self.stream_failure_queue.queue.arn,
            "threshold_checker_dlq_url": self.threshold_checker_dlq.queue.url,
            "trading_alerts_topic_arn": self.trading_alerts_topic.topic.arn,
            "approval_requests_topic_arn": self.approval_requests_topic.topic.arn,
            "ops_topic_arn": self.ops_topic.topic.arn,
            "market_data_stream_name": self.market_data_stream.name,
            "market_data_stream_arn": self.market_data_stream.arn,
            "market_data_fan_out_arn": self.market_data_fan_out.arn,
            "data_bucket_name": self.data_bucket.bucket.bucket,
            "waf_log_bucket_name": self.waf_log_bucket.bucket.bucket,
            "waf_log_bucket_arn": self.waf_log_bucket.bucket.arn,
            "access_log_bucket_name": self.access_log_bucket.bucket.bucket,
        }.items():
            self.output(name, value, description=name.replace("_", " "))
