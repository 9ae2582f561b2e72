"""Compute layer: the six Lambda functions, their layers, event sources and canary releases.

Creates:
- the code artifacts (code_artifacts.py): the artifact bucket, and where code is signed the Signer profile
  and the code signing config every function carries
- the layer `shared-dependencies-<s>` (pattern engine, shared code, third-party wheels for arm64), signed
- the layer `chart-dependencies-<s>` (the chart renderer with mplfinance, matplotlib, pandas), signed,
  attached only to the function that draws (AlertProcessor, for each alert's evidence chart)
- KinesisConsumer-<s>, PatternDetector-<s>, AlertProcessor-<s>, ThresholdChecker-<s>, ApprovalProcessor-<s>,
  ApprovalExpiry-<s>, each a MonitoredFunction (role, log group, alias `live`, alarms, deployment group) with
  the reserved concurrency of envs/<env>.json; ThresholdChecker, the one invoked asynchronously, with its
  dead-letter queue
- CodeDeploy application `patternwatch-functions-<s>` (every function's deployment group) and the role it
  deploys with
- event sources: the Kinesis enhanced fan-out consumer MarketDataFanOut -> KinesisConsumer:live,
  AlertQueue -> AlertProcessor:live, PendingApprovals -> ApprovalExpiry:live (the approvals' expiry timer);
  SQS drives at most as many instances of each as it has reserved
  (KinesisConsumer emits PatternDetected events to the default EventBridge bus; the orchestration layer's
  rule takes them to the analysis workflow, which queues alerts)

Packaging runs here, during synth (packaging.py): zips are deterministic and cached. The six functions'
code is released (tooling/release.py): Terraform deploys their first package and ignores later ones.
"""
from __future__ import annotations

from cdktf_cdktf_provider_aws.codedeploy_app import CodedeployApp
from cdktf_cdktf_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingDestinationConfig,
    LambdaEventSourceMappingDestinationConfigOnFailure,
    LambdaEventSourceMappingScalingConfig,
)
from cdktf_cdktf_provider_aws.lambda_layer_version import LambdaLayerVersion
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct
from patternwatch_shared.approvers import approvers_json
from patternwatch_shared.evidence import EVIDENCE_PREFIX
from patternwatch_shared.names.functions import (
    ALERT_PROCESSOR, APPROVAL_EXPIRY, APPROVAL_PROCESSOR, ENV_ALERT_CONFIDENCE_THRESHOLD, ENV_ALERT_QUEUE_URL,
    ENV_APPROVAL_EXPIRY_SECONDS, ENV_APPROVAL_REQUESTS_TOPIC_ARN, ENV_APPROVAL_TABLE, ENV_APPROVERS, ENV_DATA_BUCKET,
    ENV_PENDING_APPROVALS_QUEUE_URL, ENV_THRESHOLD_CHECK_MIN_BREACHES, ENV_THRESHOLD_CHECK_RULE_NAME,
    ENV_TRADING_ALERTS_TOPIC_ARN, ENV_TRADING_PATTERNS_TABLE, KINESIS_CONSUMER, PATTERN_DETECTOR, THRESHOLD_CHECKER, LambdaFunctionSpec,
)
from patternwatch_shared.names.messages import THRESHOLD_CHECK_RULE_BASE_NAME
from patternwatch_shared.names.table import RECENT_PATTERNS_INDEX

from .architecture_layer import ArchitectureLayer
from .blocks import AccessLogs
from .code_artifacts import ARTIFACT_BUCKET_ACCESS_LOG_PREFIX, CodeArtifacts
from .config import EnvironmentConfig
from .data import DataLayer
from .naming import Naming
from .function import (
    ARCHITECTURE,
    RUNTIME,
    FunctionPlatform,
    InvokedAsynchronously,
    InvokedSynchronously,
    MonitoredFunction,
    canary_deployment_role,
    grant_canary_deployments,
)
from .packaging import BuiltPackages, Package, build_all, check_lambda_limits
from .policies import statement
from .release_contract import LAYERS_PREFIX

# Kinesis: small batches at most 5 s old keep detection near real time.
STREAM_BATCH_SIZE = 100
STREAM_BATCHING_WINDOW_SECONDS = 5
# A poison record is retried this often (bisecting each time) and then sent to the failure queue.
STREAM_MAX_RETRY_ATTEMPTS = 3
STREAM_MAX_RECORD_AGE_SECONDS = 3600
ALERT_BATCH_SIZE = 10
# A failed threshold check is retried twice (Lambda's default); a check older than an hour is superseded by
# twelve newer ones, so it goes to the dead-letter queue instead of running late.
THRESHOLD_CHECK_MAX_EVENT_AGE_SECONDS = 3600
# Expiry is a trickle (one message per approval, twice).
EXPIRY_BATCH_SIZE = 10

# Key use needed to read from or write to KMS-encrypted SQS, SNS, Kinesis and DynamoDB.
USE_KEY = ["kms:Decrypt", "kms:GenerateDataKey"]
# What a function an SQS event source mapping drives needs on its queue (the mapping polls with the function's role).
CONSUME_QUEUE = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]


class ComputeLayer(ArchitectureLayer):
    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, naming: Naming, data: DataLayer,
        packages: BuiltPackages | None = None,
    ) -> None:
        super().__init__(scope, id, config=config, naming=naming)
        self.data = data
        naming = self.naming
        built = packages or build_all()

        self.artifacts = CodeArtifacts(
            self, "artifacts", config=config, naming=naming, kms_key=data.kms_key, lifecycle=self.stateful_lifecycle,
            access_logs=AccessLogs(data.access_log_bucket, ARTIFACT_BUCKET_ACCESS_LOG_PREFIX),
        )
        self.shared_layer = self._layer(
            "shared_layer", "layer_code", built.shared_layer, "shared-dependencies",
            "PatternWatch pattern engine, shared code and third-party packages (python3.12, arm64)",
        )
        # Only functions that draw carry the renderer's ~100 MiB: the others' cold starts stay as they were.
        self.chart_layer = self._layer(
            "chart_layer", "chart_layer_code", built.chart_layer, "chart-dependencies",
            "PatternWatch chart renderer with mplfinance, matplotlib and pandas (python3.12, arm64); on top of shared-dependencies",
        )
        # One application for every platform function; each function is a deployment group.
        self.deployment_app = CodedeployApp(self, "deployment_app", name=naming.name("patternwatch-functions"), compute_platform="Lambda")
        # Its policy names the functions, so it is granted once they exist (below).
        self.deployment_role = canary_deployment_role(self, "deployment_role", naming=naming, base_name="CodeDeploy")
        self.platform = platform = FunctionPlatform(
            config=config,
            naming=naming,
            account_id=data.caller.account_id,
            kms_key=data.kms_key,
            artifacts=self.artifacts,
            layer=self.shared_layer,
            alarm_topic=data.ops_topic.topic,
            deployment_app=self.deployment_app,
            deployment_role=self.deployment_role.role,
        )
        table = data.trading_patterns_table
        approvals = data.approval_table
        alert_queue = data.alert_queue.queue
        key = [data.kms_key.arn]
        # One setting decides every alert; the functions that compare against it get the same value.
        alert_threshold = str(config.alerts.confidence_threshold)
        # The account's default bus: PutEvents needs no bus of our own, and the rule listens there.
        self.default_event_bus_arn = f"arn:aws:events:{config.region}:{data.caller.account_id}:event-bus/default"

        reserved = config.lambda_.reserved_concurrency

        def function(
            spec: LambdaFunctionSpec, environment: dict[str, str], statements: list, invocation: InvokedSynchronously | InvokedAsynchronously,
            draws: bool = False,
        ) -> MonitoredFunction:
            code = built.functions[spec.package]
            check_lambda_limits(spec.base_name, code, [built.shared_layer, *([built.chart_layer] if draws else [])])
            return MonitoredFunction(
                self, spec=spec, code=code, platform=platform, environment=environment, statements=statements,
                extra_layers=[self.chart_layer] if draws else [], release_owns_code=True,
                invocation=invocation,
                reserved_concurrency=reserved[spec.package],
            )

        self.kinesis_consumer = function(
            KINESIS_CONSUMER,
            {ENV_TRADING_PATTERNS_TABLE: table.name, ENV_ALERT_CONFIDENCE_THRESHOLD: alert_threshold},
            [
                statement(
                    sid="StoreBarsAndPatterns",
                    actions=["dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
                    resources=[table.arn],
                ),
                statement(sid="EmitPatternDetectedEvents", actions=["events:PutEvents"], resources=[self.default_event_bus_arn]),
                # The event source mapping reads the stream through the enhanced fan-out consumer with this role.
                statement(
                    sid="ReadStream",
                    actions=["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"],
                    resources=[data.market_data_stream.arn],
                ),
                statement(
                    sid="ReadThroughMarketDataFanOut",
                    actions=["kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer"],
                    resources=[data.market_data_fan_out.arn],
                ),
                statement(
                    sid="SendFailedRecordsToTheFailureQueue",
                    actions=["sqs:SendMessage"],
                    resources=[data.stream_failure_queue.queue.arn],
                ),
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=key),
            ],
            InvokedSynchronously("by the Kinesis event source mapping, whose on-failure destination StreamConsumerFailures keeps failed records"),
        )
        self.kinesis_consumer.add_iterator_age_alarm(config.alarms.iterator_age_ms)

        self.pattern_detector = function(
            PATTERN_DETECTOR,
            {ENV_TRADING_PATTERNS_TABLE: table.name, ENV_ALERT_QUEUE_URL: alert_queue.url, ENV_ALERT_CONFIDENCE_THRESHOLD: alert_threshold},
            [
                statement(sid="ReadPatterns", actions=["dynamodb:Query"], resources=[table.arn]),
                statement(sid="SendAlerts", actions=["sqs:SendMessage"], resources=[alert_queue.arn]),
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=key),
            ],
            InvokedSynchronously("by API Gateway's proxy integration, which answers the error, and by PatternAnalysisWorkflow's tasks, which retry and catch it"),
        )

        pending_approvals = data.pending_approvals_queue.queue
        approvers = approvers_json(a.approver for a in config.approvers)
        self.alert_processor = function(
            ALERT_PROCESSOR,
            {
                ENV_APPROVAL_TABLE: approvals.name,
                ENV_PENDING_APPROVALS_QUEUE_URL: pending_approvals.url,
                ENV_TRADING_ALERTS_TOPIC_ARN: data.trading_alerts_topic.topic.arn,
                ENV_APPROVAL_REQUESTS_TOPIC_ARN: data.approval_requests_topic.topic.arn,
                ENV_APPROVAL_EXPIRY_SECONDS: str(config.approval_expiry_seconds),
                ENV_APPROVERS: approvers,
                ENV_TRADING_PATTERNS_TABLE: table.name,
                ENV_DATA_BUCKET: data.data_bucket.bucket.bucket,
            },
            [
                # The SQS event source mapping polls and deletes with the function's role.
                statement(sid="ConsumeAlertQueue", actions=CONSUME_QUEUE, resources=[alert_queue.arn]),
                # The delivery claim (Put, then Update to DELIVERED, or Delete to release it after a failure), the
                # approval and its links (Put, Update as each step is done, Get to resume a half-done one).
                statement(
                    sid="ClaimAlertsAndOpenApprovals",
                    actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    resources=[approvals.arn],
                ),
                statement(sid="QueuePendingApprovals", actions=["sqs:SendMessage"], resources=[pending_approvals.arn]),
                statement(
                    sid="PublishAlerts",
                    actions=["sns:Publish"],
                    resources=[data.trading_alerts_topic.topic.arn, data.approval_requests_topic.topic.arn],
                ),
                # Evidence: the bars window and the stored match, or a threshold alert's breaches (the index).
                statement(
                    sid="ReadEvidenceFromTradingPatterns",
                    actions=["dynamodb:Query"],
                    resources=[table.arn, f"{table.arn}/index/{RECENT_PATTERNS_INDEX}"],
                ),
                # Wildcard: evidence objects are named per alert (evidence/<sha256 of the alertId>/...), so the
                # prefix is the narrowest resource S3 can name; nothing outside evidence/ can be written.
                statement(sid="WriteEvidence", actions=["s3:PutObject"], resources=[f"{data.data_bucket.bucket.arn}/{EVIDENCE_PREFIX}*"]),
                # Also what SSE-KMS needs for the evidence objects (GenerateDataKey to write).
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=key),
            ],
            InvokedSynchronously("by the AlertQueue event source mapping; a message that fails three receives goes to AlertQueue-DLQ"),
            draws=True,
        )

        self.threshold_checker = function(
            THRESHOLD_CHECKER,
            {
                ENV_TRADING_PATTERNS_TABLE: table.name,
                ENV_ALERT_QUEUE_URL: alert_queue.url,
                ENV_ALERT_CONFIDENCE_THRESHOLD: alert_threshold,
                ENV_THRESHOLD_CHECK_MIN_BREACHES: str(config.alerts.threshold_check_min_breaches),
                # The orchestration layer's schedule has this name; the function accepts only its events.
                ENV_THRESHOLD_CHECK_RULE_NAME: naming.name(THRESHOLD_CHECK_RULE_BASE_NAME),
            },
            [
                statement(
                    sid="QueryRecentPatterns",
                    actions=["dynamodb:Query"],
                    resources=[f"{table.arn}/index/{RECENT_PATTERNS_INDEX}"],
                ),
                statement(sid="SendAlerts", actions=["sqs:SendMessage"], resources=[alert_queue.arn]),
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=key),
            ],
            # EventBridge invokes it asynchronously on its schedule: retries, then the dead-letter queue.
            InvokedAsynchronously(data.threshold_checker_dlq.queue, maximum_event_age_seconds=THRESHOLD_CHECK_MAX_EVENT_AGE_SECONDS),
        )

        self.approval_processor = function(
            APPROVAL_PROCESSOR,
            {
                ENV_APPROVAL_TABLE: approvals.name,
                ENV_TRADING_ALERTS_TOPIC_ARN: data.trading_alerts_topic.topic.arn,
                ENV_APPROVERS: approvers,
                ENV_DATA_BUCKET: data.data_bucket.bucket.bucket,
            },
            [
                statement(sid="DecideApprovals", actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[approvals.arn]),
                statement(sid="PublishDecisions", actions=["sns:Publish"], resources=[data.trading_alerts_topic.topic.arn]),
                # The page shows the alert's chart: objects under the evidence prefix only, nothing else in the bucket.
                statement(sid="ReadEvidence", actions=["s3:GetObject"], resources=[f"{data.data_bucket.bucket.arn}/{EVIDENCE_PREFIX}*"]),
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=key),
            ],
            InvokedSynchronously("by API Gateway's proxy integration, which answers the error to the person who clicked"),
        )

        self.approval_expiry = function(
            APPROVAL_EXPIRY,
            {
                ENV_APPROVAL_TABLE: approvals.name,
                ENV_TRADING_ALERTS_TOPIC_ARN: data.trading_alerts_topic.topic.arn,
                ENV_PENDING_APPROVALS_QUEUE_URL: pending_approvals.url,
            },
            [
                # The event source mapping polls and deletes; the handler re-arms a message to its deadline.
                statement(sid="ConsumePendingApprovals", actions=CONSUME_QUEUE, resources=[pending_approvals.arn]),
                statement(sid="ExpireApprovals", actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[approvals.arn]),
                statement(sid="PublishAutoRejects", actions=["sns:Publish"], resources=[data.trading_alerts_topic.topic.arn]),
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=key),
            ],
            InvokedSynchronously("by the PendingApprovals event source mapping; a message that keeps failing goes to PendingApprovals-DLQ"),
        )

        self.functions = [
            self.kinesis_consumer,
            self.pattern_detector,
            self.alert_processor,
            self.threshold_checker,
            self.approval_processor,
            self.approval_expiry,
        ]
        grant_canary_deployments(self.deployment_role, self.functions)

        self.stream_mapping = LambdaEventSourceMapping(
            self,
            "stream_mapping",
            event_source_arn=data.market_data_fan_out.arn,
            function_name=self.kinesis_consumer.alias.arn,
            starting_position="LATEST",
            batch_size=STREAM_BATCH_SIZE,
            maximum_batching_window_in_seconds=STREAM_BATCHING_WINDOW_SECONDS,
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=STREAM_MAX_RETRY_ATTEMPTS,
            maximum_record_age_in_seconds=STREAM_MAX_RECORD_AGE_SECONDS,
            function_response_types=["ReportBatchItemFailures"],
            destination_config=LambdaEventSourceMappingDestinationConfig(
                on_failure=LambdaEventSourceMappingDestinationConfigOnFailure(destination_arn=data.stream_failure_queue.queue.arn)
            ),
            # The role must be able to read the stream before the mapping is created.
            depends_on=[self.kinesis_consumer.policy],
        )
        # SQS drives at most as many instances as the function has reserved, so the poller is never throttled
        # and SNS and DynamoDB see bursts no larger than that.
        self.alert_mapping = self._queue_mapping("alert_mapping", alert_queue, self.alert_processor, batch_size=ALERT_BATCH_SIZE)
        self.expiry_mapping = self._queue_mapping("expiry_mapping", pending_approvals, self.approval_expiry, batch_size=EXPIRY_BATCH_SIZE)

        for f in self.functions:
            key_name = f.spec.package
            self.output(f"{key_name}_function_name", f.function.function_name, description=f"{f.function_name} function name")
            self.output(f"{key_name}_alias_arn", f.alias.arn, description=f"{f.function_name}:live alias ARN")
            self.output(f"{key_name}_deployment_group", f.deployment_group.deployment_group_name, description=f"{f.function_name} CodeDeploy group")
        self.output("shared_layer_arn", self.shared_layer.arn, description="shared-dependencies layer version ARN")
        self.output("chart_layer_arn", self.chart_layer.arn, description="chart-dependencies layer version ARN")
        self.output("deployment_app_name", self.deployment_app.name, description="CodeDeploy application for canary releases")
        self.output("artifact_bucket_name", self.artifacts.bucket.bucket, description="S3 bucket releases upload function code to")
        if self.artifacts.signing_profile is not None:
            self.output("signing_profile_name", self.artifacts.signing_profile.name, description="Signer profile releases sign code with")

    def _queue_mapping(self, id: str, queue: SqsQueue, target: MonitoredFunction, *, batch_size: int) -> LambdaEventSourceMapping:
        """SQS -> the function's `live` alias, reporting item failures, driving at most the function's reserved
        concurrency (config.QUEUE_DRIVEN_PACKAGES keeps that at SQS's minimum of 2 or more)."""
        return LambdaEventSourceMapping(
            self,
            id,
            event_source_arn=queue.arn,
            function_name=target.alias.arn,
            batch_size=batch_size,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=LambdaEventSourceMappingScalingConfig(maximum_concurrency=target.reserved_concurrency),
            # The role must be able to read the queue before the mapping is created.
            depends_on=[target.policy],
        )

    def _layer(self, id: str, code_id: str, package: Package, base_name: str, description: str) -> LambdaLayerVersion:
        """A layer deployed from the artifact bucket, signed like the functions' code where code is signed."""
        layer_name = self.naming.name(base_name)
        code = self.artifacts.upload(self, code_id, package, kind=LAYERS_PREFIX, name=layer_name)
        return LambdaLayerVersion(
            self,
            id,
            layer_name=layer_name,
            description=description,
            s3_bucket=code.bucket,
            s3_key=code.key,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )
