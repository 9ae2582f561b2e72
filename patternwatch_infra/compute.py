"""Compute layer: the five Lambda functions, their shared layer, event sources and canary releases.

Creates:
- the layer `shared-dependencies-<s>` (pattern engine, shared code, third-party wheels for arm64)
- KinesisConsumer-<s>, PatternDetector-<s>, AlertProcessor-<s>, ThresholdChecker-<s>, ApprovalProcessor-<s>,
  each a MonitoredFunction (role, log group, alias `live`, alarms, deployment group)
- CodeDeploy application `patternwatch-functions-<s>` (every function's deployment group) and the role it
  deploys with
- event sources: the Kinesis enhanced fan-out consumer MarketDataFanOut -> KinesisConsumer:live,
  AlertQueue -> AlertProcessor:live (KinesisConsumer emits PatternDetected events to the default
  EventBridge bus; the orchestration layer's rule takes them to the analysis workflow, which queues alerts)

Packaging runs here, during synth (packaging.py): zips are deterministic and cached.
"""
from __future__ import annotations

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_aws.codedeploy_app import CodedeployApp
from cdktf_cdktf_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingDestinationConfig,
    LambdaEventSourceMappingDestinationConfigOnFailure,
    LambdaEventSourceMappingScalingConfig,
)
from cdktf_cdktf_provider_aws.lambda_layer_version import LambdaLayerVersion
from constructs import Construct
from patternwatch_shared.names.functions import (
    ALERT_PROCESSOR, APPROVAL_PROCESSOR, ENV_ALERT_CONFIDENCE_THRESHOLD, ENV_ALERT_QUEUE_URL,
    ENV_APPROVAL_EXPIRY_SECONDS, ENV_APPROVAL_REQUESTS_TOPIC_ARN, ENV_APPROVAL_TABLE, ENV_PENDING_APPROVALS_QUEUE_URL,
    ENV_THRESHOLD_CHECK_MIN_BREACHES, ENV_THRESHOLD_CHECK_RULE_NAME, ENV_TRADING_ALERTS_TOPIC_ARN,
    ENV_TRADING_PATTERNS_TABLE, KINESIS_CONSUMER, PATTERN_DETECTOR, THRESHOLD_CHECKER, LambdaFunctionSpec,
)
from patternwatch_shared.names.messages import THRESHOLD_CHECK_RULE_BASE_NAME
from patternwatch_shared.names.table import RECENT_PATTERNS_INDEX

from .architecture_layer import ArchitectureLayer
from .config import EnvironmentConfig
from .data import DataLayer
from .naming import Naming
from .function import (
    ARCHITECTURE,
    RUNTIME,
    FunctionPlatform,
    MonitoredFunction,
    canary_deployment_role,
    grant_canary_deployments,
)
from .packaging import Package, build_all
from .policies import statement

# Kinesis: small batches at most 5 s old keep detection near real time.
STREAM_BATCH_SIZE = 100
STREAM_BATCHING_WINDOW_SECONDS = 5
# A poison record is retried this often (bisecting each time) and then sent to the failure queue.
STREAM_MAX_RETRY_ATTEMPTS = 3
STREAM_MAX_RECORD_AGE_SECONDS = 3600
ALERT_BATCH_SIZE = 10
# Caps how many AlertProcessor instances SQS may drive, protecting SNS and DynamoDB from bursts.
ALERT_MAX_CONCURRENCY = 5

# Key use needed to read from or write to KMS-encrypted SQS, SNS, Kinesis and DynamoDB.
USE_KEY = ["kms:Decrypt", "kms:GenerateDataKey"]


class ComputeLayer(ArchitectureLayer):
    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, naming: Naming, data: DataLayer,
        packages: tuple[Package, dict[str, Package]] | None = None,
    ) -> None:
        super().__init__(scope, id, config=config, naming=naming)
        self.data = data
        naming = self.naming
        layer_package, function_packages = packages or build_all()

        layer_asset = TerraformAsset(self, "layer_code", path=str(layer_package.path), type=AssetType.FILE)
        self.shared_layer = LambdaLayerVersion(
            self,
            "shared_layer",
            layer_name=naming.name("shared-dependencies"),
            description="PatternWatch pattern engine, shared code and third-party packages (python3.12, arm64)",
            filename=layer_asset.path,
            source_code_hash=layer_package.source_code_hash,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )
        # One application for every function (the power tuner's too); each function is a deployment group.
        self.deployment_app = CodedeployApp(self, "deployment_app", name=naming.name("patternwatch-functions"), compute_platform="Lambda")
        # Its policy names the functions, so it is granted once they exist (below).
        self.deployment_role = canary_deployment_role(self, "deployment_role", naming=naming, base_name="CodeDeploy")
        self.platform = platform = FunctionPlatform(
            config=config,
            naming=naming,
            kms_key=data.kms_key,
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

        def function(spec: LambdaFunctionSpec, environment: dict[str, str], statements: list) -> MonitoredFunction:
            return MonitoredFunction(
                self, spec=spec, code=function_packages[spec.package], platform=platform, environment=environment, statements=statements
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
        )

        self.alert_processor = function(
            ALERT_PROCESSOR,
            {
                ENV_APPROVAL_TABLE: approvals.name,
                ENV_PENDING_APPROVALS_QUEUE_URL: data.pending_approvals_queue.queue.url,
                ENV_TRADING_ALERTS_TOPIC_ARN: data.trading_alerts_topic.topic.arn,
                ENV_APPROVAL_REQUESTS_TOPIC_ARN: data.approval_requests_topic.topic.arn,
                ENV_APPROVAL_EXPIRY_SECONDS: str(config.approval_expiry_seconds),
            },
            [
                # The SQS event source mapping polls and deletes with the function's role.
                statement(
                    sid="ConsumeAlertQueue",
                    actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                    resources=[alert_queue.arn],
                ),
                # GetItem and the conditional PutItem also keep the delivery ledger, which stops a redelivered
                # or concurrently delivered alert from opening a second approval.
                statement(sid="RecordApprovals", actions=["dynamodb:GetItem", "dynamodb:PutItem"], resources=[approvals.arn]),
                statement(sid="QueuePendingApprovals", actions=["sqs:SendMessage"], resources=[data.pending_approvals_queue.queue.arn]),
                statement(
                    sid="PublishAlerts",
                    actions=["sns:Publish"],
                    resources=[data.trading_alerts_topic.topic.arn, data.approval_requests_topic.topic.arn],
                ),
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=key),
            ],
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
        )

        self.approval_processor = function(
            APPROVAL_PROCESSOR,
            {ENV_APPROVAL_TABLE: approvals.name, ENV_TRADING_ALERTS_TOPIC_ARN: data.trading_alerts_topic.topic.arn},
            [
                statement(sid="DecideApprovals", actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[approvals.arn]),
                statement(sid="PublishDecisions", actions=["sns:Publish"], resources=[data.trading_alerts_topic.topic.arn]),
                statement(sid="UsePlatformKey", actions=USE_KEY, resources=key),
            ],
        )

        self.functions = [
            self.kinesis_consumer,
            self.pattern_detector,
            self.alert_processor,
            self.threshold_checker,
            self.approval_processor,
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
        self.alert_mapping = LambdaEventSourceMapping(
            self,
            "alert_mapping",
            event_source_arn=alert_queue.arn,
            function_name=self.alert_processor.alias.arn,
            batch_size=ALERT_BATCH_SIZE,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=LambdaEventSourceMappingScalingConfig(maximum_concurrency=ALERT_MAX_CONCURRENCY),
            depends_on=[self.alert_processor.policy],
        )

        for f in self.functions:
            key_name = f.spec.package
            self.output(f"{key_name}_function_name", f.function.function_name, description=f"{f.function_name} function name")
            self.output(f"{key_name}_alias_arn", f.alias.arn, description=f"{f.function_name}:live alias ARN")
            self.output(f"{key_name}_deployment_group", f.deployment_group.deployment_group_name, description=f"{f.function_name} CodeDeploy group")
        self.output("shared_layer_arn", self.shared_layer.arn, description="shared-dependencies layer version ARN")
        self.output("deployment_app_name", self.deployment_app.name, description="CodeDeploy application for canary releases")
