"""Fixtures for the Lambda function tests: moto in process, fake credentials, real event shapes."""
from __future__ import annotations

import os

# Handler modules build their Tracer and Metrics at import (during collection). Only Powertools
# switches are set process-wide, and only if unset: they cannot change what other suites do.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "StockPatternDetection")

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from lambda_testkit import (  # noqa: E402
    API_BASE_URL,
    APPROVAL_TRACKING,
    APPROVERS,
    DATA_BUCKET,
    REGION,
    TRADING_PATTERNS,
    AwsResources,
    create_trading_patterns_table,
    subscribe_to_pattern_events,
)
from patternwatch_shared import aws  # noqa: E402
from patternwatch_shared.approvers import approvers_json  # noqa: E402
from patternwatch_shared.names.functions import (  # noqa: E402
    ENV_ALERT_CONFIDENCE_THRESHOLD, ENV_ALERT_QUEUE_URL, ENV_APPROVAL_API_BASE_URL, ENV_APPROVAL_EXPIRY_SECONDS,
    ENV_APPROVAL_REQUESTS_TOPIC_ARN, ENV_APPROVAL_TABLE, ENV_APPROVERS, ENV_DATA_BUCKET, ENV_PENDING_APPROVALS_QUEUE_URL,
    ENV_THRESHOLD_CHECK_MIN_BREACHES, ENV_TRADING_ALERTS_TOPIC_ARN, ENV_TRADING_PATTERNS_TABLE,
)
from patternwatch_shared.names.table import APPROVAL_PARTITION_KEY  # noqa: E402

from tooling.lambda_harness import LambdaContext  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_aws_environment(monkeypatch):
    """Fake credentials and region for every test here, and never a real endpoint or profile."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    aws.reset_clients()
    yield
    aws.reset_clients()


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext(function_name="patternwatch-test")


@pytest.fixture
def aws_resources(monkeypatch):
    aws.reset_clients()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=DATA_BUCKET)
        events = boto3.client("events", region_name=REGION)
        create_trading_patterns_table(dynamodb)
        dynamodb.create_table(
            TableName=APPROVAL_TRACKING,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": APPROVAL_PARTITION_KEY, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": APPROVAL_PARTITION_KEY, "KeyType": "HASH"}],
        )
        alert_queue = sqs.create_queue(QueueName="AlertQueue")["QueueUrl"]
        pending_queue = sqs.create_queue(QueueName="PendingApprovals")["QueueUrl"]
        trading_alerts = sns.create_topic(Name="TradingAlerts")["TopicArn"]
        approval_requests = sns.create_topic(Name="AlertApprovalRequests")["TopicArn"]
        inboxes = {}
        for topic, inbox in ((trading_alerts, "trading-alerts-inbox"), (approval_requests, "approval-requests-inbox")):
            url = sqs.create_queue(QueueName=inbox)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
            inboxes[topic] = url
        # What the consumer emits: a rule on the default bus like the deployed one, delivering to a queue.
        pattern_events = subscribe_to_pattern_events(events, sqs)

        for key, value in {
            ENV_TRADING_PATTERNS_TABLE: TRADING_PATTERNS,
            ENV_APPROVAL_TABLE: APPROVAL_TRACKING,
            ENV_ALERT_QUEUE_URL: alert_queue,
            ENV_PENDING_APPROVALS_QUEUE_URL: pending_queue,
            ENV_TRADING_ALERTS_TOPIC_ARN: trading_alerts,
            ENV_APPROVAL_REQUESTS_TOPIC_ARN: approval_requests,
            ENV_APPROVAL_EXPIRY_SECONDS: "3600",
            ENV_APPROVAL_API_BASE_URL: API_BASE_URL,
            ENV_APPROVERS: approvers_json(APPROVERS),
            ENV_DATA_BUCKET: DATA_BUCKET,
            ENV_ALERT_CONFIDENCE_THRESHOLD: "0.9",
            ENV_THRESHOLD_CHECK_MIN_BREACHES: "3",
        }.items():
            monkeypatch.setenv(key, value)
        yield AwsResources(
            dynamodb=dynamodb,
            sqs=sqs,
            sns=sns,
            s3=s3,
            events=events,
            alert_queue_url=alert_queue,
            pending_queue_url=pending_queue,
            trading_alerts_topic=trading_alerts,
            approval_requests_topic=approval_requests,
            trading_alerts_inbox=inboxes[trading_alerts],
            approval_requests_inbox=inboxes[approval_requests],
            pattern_events_inbox=pattern_events,
        )
    aws.reset_clients()


