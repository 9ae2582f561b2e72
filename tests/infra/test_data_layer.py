"""The data layer, asserted by property value on the synthesized dev stack (and prod where it differs)."""
from __future__ import annotations

import json
import math

import pytest
from patternwatch_shared.names.table import (
    APPROVAL_PARTITION_KEY, RECENT_PATTERNS_INDEX, RECENT_PATTERNS_INDEX_PARTITION_KEY,
    RECENT_PATTERNS_INDEX_SORT_KEY,
)

from patternwatch_infra.data import pending_approvals_max_receives
from patternwatch_infra.testing import (
    find_resource,
    logical_id,
    policy_statements,
    reference_to,
    resolve,
    resolve_name,
    resources,
)



ACCESS_LOG_BUCKET = "patternwatch-access-logs-111111111111-dev"
# The compute layer's (code_artifacts.py), logging to the data layer's access-log bucket like the others.
ARTIFACT_BUCKET = "patternwatch-artifacts-111111111111-dev"


def key_arn(doc: dict) -> str:
    (key_id,) = resources(doc, "aws_kms_key")
    return reference_to("aws_kms_key", key_id, "arn")


def tls_only(statements: list[dict], resource_refs: list[str]) -> bool:
    for s in statements:
        if (
            s["effect"] == "Deny"
            and s["principals"] == [{"type": "*", "identifiers": ["*"]}]
            and s["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
            and set(resource_refs) <= set(s["resources"])
        ):
            return True
    return False


# --- KMS -------------------------------------------------------------------------------------------

def test_platform_key_rotates_and_has_an_alias(dev):
    (key,) = resources(dev, "aws_kms_key").values()
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] == 7
    alias = find_resource(dev, "aws_kms_alias", name="alias/patternwatch-dev")
    assert alias["target_key_id"] == key_arn(dev).replace(".arn}", ".key_id}")


def test_platform_key_policy_delegates_to_iam_and_admits_only_the_services_that_write_encrypted_data(dev):
    (key,) = resources(dev, "aws_kms_key").values()
    statements = {s["sid"]: s for s in policy_statements(dev, key["policy"])}
    assert set(statements) == {"EnableIamPolicies", "AllowCloudWatchLogs", "AllowAwsServicesToUseKeyForThisAccount"}
    root = statements["EnableIamPolicies"]
    assert root["principals"][0]["type"] == "AWS"
    assert root["principals"][0]["identifiers"][0].endswith(":root")
    logs = statements["AllowCloudWatchLogs"]
    assert logs["principals"] == [{"type": "Service", "identifiers": ["logs.us-east-1.amazonaws.com"]}]
    assert not any(a.endswith("*") for a in logs["actions"])
    assert logs["condition"][0]["variable"] == "kms:EncryptionContext:aws:logs:arn"
    services = statements["AllowAwsServicesToUseKeyForThisAccount"]
    assert services["actions"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert services["condition"][0]["variable"] == "aws:SourceAccount"


def test_every_data_resource_is_encrypted_with_the_platform_key(dev):
    arn = key_arn(dev)
    for table in resources(dev, "aws_dynamodb_table").values():
        assert table["server_side_encryption"] == {"enabled": True, "kms_key_arn": arn}, table["name"]
    for queue in resources(dev, "aws_sqs_queue").values():
        assert queue["kms_master_key_id"] == arn, queue["name"]
    for topic in resources(dev, "aws_sns_topic").values():
        assert topic["kms_master_key_id"] == arn, topic["name"]
    for stream in resources(dev, "aws_kinesis_stream").values():
        assert (stream["encryption_type"], stream["kms_key_id"]) == ("KMS", arn)
    encryption = {resolve(dev, c["bucket"].replace(".id}", ".arn}"))["bucket"]: c
                  for c in resources(dev, "aws_s3_bucket_server_side_encryption_configuration").values()}
    # The data, WAF-log and access-log buckets, and the compute layer's artifact bucket (code_artifacts.py).
    assert len(encryption) == len(resources(dev, "aws_s3_bucket")) == 4
    for bucket, config in encryption.items():
        (rule,) = config["rule"]
        if resolve_name(dev, bucket) == ACCESS_LOG_BUCKET:
            # The one deviation, and only it: S3 delivers server access logs to SSE-S3 buckets only.
            assert rule == {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}
            continue
        assert rule["apply_server_side_encryption_by_default"] == {"sse_algorithm": "aws:kms", "kms_master_key_id": arn}
        assert rule["bucket_key_enabled"] is True


# --- DynamoDB ----------------------------------------------------------------------------------------

def test_trading_patterns_table_is_on_demand_with_pitr_and_the_documented_keys(dev):
    table = find_resource(dev, "aws_dynamodb_table", name="TradingPatterns-dev")
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert (table["hash_key"], table["range_key"]) == ("PK", "SK")
    assert {a["name"]: a["type"] for a in table["attribute"]} == {"PK": "S", "SK": "S", "GSI1PK": "S", "GSI1SK": "S"}


def test_trading_patterns_has_a_recent_patterns_index_so_the_threshold_checker_queries(dev):
    table = find_resource(dev, "aws_dynamodb_table", name="TradingPatterns-dev")
    (index,) = table["global_secondary_index"]
    assert index == {
        "name": RECENT_PATTERNS_INDEX,
        "hash_key": RECENT_PATTERNS_INDEX_PARTITION_KEY,
        "range_key": RECENT_PATTERNS_INDEX_SORT_KEY,
        "projection_type": "ALL",
    }


def test_approval_tracking_expires_items_by_ttl(dev):
    table = find_resource(dev, "aws_dynamodb_table", name="ApprovalTracking-dev")
    assert table["ttl"] == {"enabled": True, "attribute_name": "expiresAt"}
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["hash_key"] == APPROVAL_PARTITION_KEY


# --- SQS ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    # PendingApprovals: each message's visibility is set to its approval's deadline by approval-expiry; the
    # queue's own only paces retries. A 1-hour approval needs 2 receives (arm, expire), plus 3 spare.
    ("queue", "visibility", "receives"), [("AlertQueue-dev", 6 * 30, 3), ("PendingApprovals-dev", 6 * 30, 5)]
)
def test_work_queues_redrive_to_their_own_dead_letter_queue(dev, queue, visibility, receives):
    main = find_resource(dev, "aws_sqs_queue", name=queue)
    assert main["visibility_timeout_seconds"] == visibility
    dlq_name = queue.replace("-dev", "-DLQ-dev")
    dlq_id = logical_id(dev, "aws_sqs_queue", name=dlq_name)
    assert json.loads(main["redrive_policy"]) == {
        "deadLetterTargetArn": reference_to("aws_sqs_queue", dlq_id, "arn"),
        "maxReceiveCount": receives,
    }
    assert find_resource(dev, "aws_sqs_queue", name=dlq_name)["message_retention_seconds"] == 14 * 24 * 3600


@pytest.mark.parametrize("queue", ["StreamConsumerFailures-dev", "ThresholdChecker-DLQ-dev"])
def test_failure_queues_keep_what_they_hold_for_the_sqs_maximum(dev, queue):
    assert find_resource(dev, "aws_sqs_queue", name=queue)["message_retention_seconds"] == 14 * 24 * 3600


@pytest.mark.parametrize(
    ("expiry_seconds", "receives"), [(60, 5), (3600, 5), (12 * 3600, 5), (12 * 3600 + 1, 6), (36 * 3600, 7)]
)
def test_a_waiting_approval_is_never_dead_lettered(expiry_seconds, receives):
    """One receive per 12 hours of waiting (SQS's visibility maximum), one at the deadline, three spare."""
    assert pending_approvals_max_receives(expiry_seconds) == receives
    spare = receives - math.ceil(expiry_seconds / (12 * 3600)) - 1
    assert spare == 3


def test_each_approver_gets_an_email_subscription_that_passes_only_their_own_requests(stacks):
    from patternwatch_infra.config import load_environment

    for env in ("local", "dev", "staging", "prod"):
        doc, config = stacks[env], load_environment(env)
        topic = reference_to("aws_sns_topic", logical_id(doc, "aws_sns_topic", name=f"AlertApprovalRequests-{env}"), "arn")
        subscriptions = [s for s in resources(doc, "aws_sns_topic_subscription").values() if s["topic_arn"] == topic]
        assert len(subscriptions) == len(config.approvers) >= 1
        by_endpoint = {s["endpoint"]: s for s in subscriptions}
        for approver in config.approvers:
            subscription = by_endpoint[approver.email]
            assert subscription["protocol"] == "email"
            assert subscription["filter_policy_scope"] == "MessageAttributes"
            assert json.loads(subscription["filter_policy"]) == {"approver": [approver.id]}



def test_every_queue_is_tls_only(dev):
    policies = {p["queue_url"]: p for p in resources(dev, "aws_sqs_queue_policy").values()}
    # The work queues and their DLQs, the stream's failures, the checker's DLQ and one DLQ per EventBridge rule.
    assert len(policies) == len(resources(dev, "aws_sqs_queue")) == 8
    for queue_id in resources(dev, "aws_sqs_queue"):
        policy = policies[reference_to("aws_sqs_queue", queue_id, "url")]
        statements = policy_statements(dev, policy["policy"])
        assert tls_only(statements, [reference_to("aws_sqs_queue", queue_id, "arn")]), queue_id


# --- SNS ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("topic", ["TradingAlerts-dev", "AlertApprovalRequests-dev"])
def test_topics_are_encrypted_and_tls_only(dev, topic):
    topic_id = logical_id(dev, "aws_sns_topic", name=topic)
    policy = find_resource(dev, "aws_sns_topic_policy", arn=reference_to("aws_sns_topic", topic_id, "arn"))
    statements = policy_statements(dev, policy["policy"])
    assert tls_only(statements, [reference_to("aws_sns_topic", topic_id, "arn")])


@pytest.mark.parametrize("topic", ["TradingAlerts", "AlertApprovalRequests", "PatternWatchOps"])
def test_every_topic_logs_the_delivery_status_of_every_protocol_sns_can_log(dev, topic):
    """FSBP SNS.2: success (every delivery) and failure, to the two encrypted groups SNS writes to."""
    block = find_resource(dev, "aws_sns_topic", name=f"{topic}-dev")
    role = reference_to("aws_iam_role", logical_id(dev, "aws_iam_role", name="SnsDeliveryStatusRole-dev"), "arn")
    for protocol in ("application", "firehose", "http", "lambda", "sqs"):
        assert block[f"{protocol}_success_feedback_role_arn"] == block[f"{protocol}_failure_feedback_role_arn"] == role
        assert block[f"{protocol}_success_feedback_sample_rate"] == 100
    for suffix in ("", "/Failure"):
        group = find_resource(dev, "aws_cloudwatch_log_group", name=f"sns/us-east-1/111111111111/{topic}-dev{suffix}")
        assert group["kms_key_id"] == key_arn(dev) and group["retention_in_days"] == 14


# --- Kinesis -----------------------------------------------------------------------------------------

def test_market_data_stream_is_on_demand_for_24_hours(dev):
    stream = find_resource(dev, "aws_kinesis_stream", name="MarketDataStream-dev")
    assert stream["stream_mode_details"] == {"stream_mode": "ON_DEMAND"}
    assert stream["retention_period"] == 24
    assert "shard_count" not in stream


def test_prod_keeps_stream_records_seven_days(prod):
    """FSBP Kinesis.3 in production; envs/prod.json below 168 hours is a config error (test_config.py)."""
    assert find_resource(prod, "aws_kinesis_stream", name="MarketDataStream-prod")["retention_period"] == 168


def test_market_data_stream_has_one_enhanced_fan_out_consumer(dev):
    stream_id = logical_id(dev, "aws_kinesis_stream", name="MarketDataStream-dev")
    (consumer,) = resources(dev, "aws_kinesis_stream_consumer").values()
    assert resolve_name(dev, consumer["name"]) == "MarketDataFanOut-dev"
    assert consumer["stream_arn"] == reference_to("aws_kinesis_stream", stream_id, "arn")


# --- S3 ----------------------------------------------------------------------------------------------

def _bucket_parts(doc: dict, bucket_name: str) -> tuple[str, dict]:
    bucket_id = logical_id(doc, "aws_s3_bucket", bucket=bucket_name)
    ref = reference_to("aws_s3_bucket", bucket_id, "id")
    parts = {
        t: find_resource(doc, t, bucket=ref)
        for t in (
            "aws_s3_bucket_versioning",
            "aws_s3_bucket_public_access_block",
            "aws_s3_bucket_policy",
            "aws_s3_bucket_lifecycle_configuration",
            "aws_s3_bucket_ownership_controls",
        )
    }
    return bucket_id, parts


@pytest.mark.parametrize("bucket", ["patternwatch-data-111111111111-dev", "aws-waf-logs-patternwatch-111111111111-dev", ACCESS_LOG_BUCKET, ARTIFACT_BUCKET])
def test_buckets_are_versioned_private_tls_only_and_tier_from_day_zero(dev, bucket):
    bucket_id, parts = _bucket_parts(dev, bucket)
    assert parts["aws_s3_bucket_versioning"]["versioning_configuration"] == {"status": "Enabled"}
    assert {k: v for k, v in parts["aws_s3_bucket_public_access_block"].items() if k.startswith(("block", "ignore", "restrict"))} == {
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    }
    assert parts["aws_s3_bucket_ownership_controls"]["rule"] == {"object_ownership": "BucketOwnerEnforced"}
    arn = reference_to("aws_s3_bucket", bucket_id, "arn")
    assert tls_only(policy_statements(dev, parts["aws_s3_bucket_policy"]["policy"]), [arn, f"{arn}/*"])
    (rule,) = parts["aws_s3_bucket_lifecycle_configuration"]["rule"]
    assert rule["status"] == "Enabled"
    assert rule["transition"] == [{"days": 0, "storage_class": "INTELLIGENT_TIERING"}]
    assert rule["noncurrent_version_expiration"] == [{"noncurrent_days": 90}]
    assert rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 7}]


def test_waf_log_bucket_name_has_the_prefix_waf_requires_and_admits_log_delivery(dev):
    bucket_name = "aws-waf-logs-patternwatch-111111111111-dev"
    _, parts = _bucket_parts(dev, bucket_name)
    statements = {s["sid"]: s for s in policy_statements(dev, parts["aws_s3_bucket_policy"]["policy"])}
    write = statements["AWSLogDeliveryWrite"]
    assert write["principals"] == [{"type": "Service", "identifiers": ["delivery.logs.amazonaws.com"]}]
    assert write["actions"] == ["s3:PutObject"]
    assert resolve_name(dev, write["resources"][0]).startswith(f"arn:aws:s3:::{bucket_name}/AWSLogs/")
    assert resolve_name(dev, statements["AWSLogDeliveryAclCheck"]["resources"]) == [f"arn:aws:s3:::{bucket_name}"]


@pytest.mark.parametrize(
    ("bucket", "prefix"),
    [("patternwatch-data-111111111111-dev", "data/"), ("aws-waf-logs-patternwatch-111111111111-dev", "waf-logs/"), (ARTIFACT_BUCKET, "artifacts/")],
)
def test_buckets_deliver_server_access_logs_to_the_access_log_bucket(dev, bucket, prefix):
    """FSBP S3.9: each bucket logs under its own prefix; S3's logging service may write there for that bucket only."""
    bucket_id = logical_id(dev, "aws_s3_bucket", bucket=bucket)
    log_bucket_id = logical_id(dev, "aws_s3_bucket", bucket=ACCESS_LOG_BUCKET)
    logging = find_resource(dev, "aws_s3_bucket_logging", bucket=reference_to("aws_s3_bucket", bucket_id, "id"))
    assert (logging["target_bucket"], logging["target_prefix"]) == (reference_to("aws_s3_bucket", log_bucket_id, "id"), prefix)
    _, parts = _bucket_parts(dev, ACCESS_LOG_BUCKET)
    assert logging["depends_on"] == [f"aws_s3_bucket_policy.{logical_id(dev, 'aws_s3_bucket_policy', bucket=reference_to('aws_s3_bucket', log_bucket_id, 'id'))}"]
    (delivery,) = [s for s in policy_statements(dev, parts["aws_s3_bucket_policy"]["policy"]) if resolve_name(dev, s["resources"]) == [f"arn:aws:s3:::{ACCESS_LOG_BUCKET}/{prefix}*"]]
    assert delivery["principals"] == [{"type": "Service", "identifiers": ["logging.s3.amazonaws.com"]}]
    assert delivery["actions"] == ["s3:PutObject"]
    conditions = {c["variable"]: resolve_name(dev, c["values"]) for c in delivery["condition"]}
    assert conditions["aws:SourceArn"] == [f"arn:aws:s3:::{bucket}"]
    assert conditions["aws:SourceAccount"][0].startswith("${data.aws_caller_identity.")


def test_the_access_log_bucket_keeps_logs_as_long_as_the_environment_keeps_logs_and_logs_nothing_itself(dev):
    _, parts = _bucket_parts(dev, ACCESS_LOG_BUCKET)
    (rule,) = parts["aws_s3_bucket_lifecycle_configuration"]["rule"]
    assert rule["expiration"] == [{"days": 14}]
    log_bucket_id = logical_id(dev, "aws_s3_bucket", bucket=ACCESS_LOG_BUCKET)
    assert not [b for b in resources(dev, "aws_s3_bucket_logging").values() if b["bucket"] == reference_to("aws_s3_bucket", log_bucket_id, "id")]


def test_buckets_can_be_emptied_on_destroy_except_in_protected_environments(dev, prod):
    assert all(b["force_destroy"] is True for b in resources(dev, "aws_s3_bucket").values())
    assert all(b["force_destroy"] is False for b in resources(prod, "aws_s3_bucket").values())


# --- Protection ----------------------------------------------------------------------------------------

STATEFUL_TYPES = ("aws_kms_key", "aws_dynamodb_table", "aws_kinesis_stream", "aws_s3_bucket")


def test_prod_prevents_destroying_stateful_resources(prod):
    for resource_type in STATEFUL_TYPES:
        for logical, block in resources(prod, resource_type).items():
            assert block.get("lifecycle", {}).get("prevent_destroy") is True, logical
    (key,) = resources(prod, "aws_kms_key").values()
    assert key["deletion_window_in_days"] == 30


def test_dev_can_be_torn_down(dev):
    for resource_type in STATEFUL_TYPES:
        for block in resources(dev, resource_type).values():
            assert "prevent_destroy" not in block.get("lifecycle", {})


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_tables_have_deletion_protection_in_every_real_environment(stacks, env):
    """FSBP DynamoDB.6: the environment's own tables (default workspace); a workspace copy stays destroyable."""
    tables = resources(stacks[env], "aws_dynamodb_table").values()
    assert len(tables) == 2
    assert all(t["deletion_protection_enabled"] == '${terraform.workspace == "default"}' for t in tables)


def test_the_emulator_s_tables_have_no_deletion_protection(local):
    assert all(t["deletion_protection_enabled"] is False for t in resources(local, "aws_dynamodb_table").values())


# --- Outputs -------------------------------------------------------------------------------------------

def test_outputs_expose_every_name_and_arn_operators_and_tests_need(dev):
    outputs = dev["output"]
    expected = {
        "trading_patterns_table_name": ("aws_dynamodb_table", {"name": "TradingPatterns-dev"}, "name"),
        "approval_tracking_table_name": ("aws_dynamodb_table", {"name": "ApprovalTracking-dev"}, "name"),
        "alert_queue_url": ("aws_sqs_queue", {"name": "AlertQueue-dev"}, "url"),
        "alert_dlq_url": ("aws_sqs_queue", {"name": "AlertQueue-DLQ-dev"}, "url"),
        "pending_approvals_queue_url": ("aws_sqs_queue", {"name": "PendingApprovals-dev"}, "url"),
        "pending_approvals_dlq_url": ("aws_sqs_queue", {"name": "PendingApprovals-DLQ-dev"}, "url"),
        "stream_failure_queue_url": ("aws_sqs_queue", {"name": "StreamConsumerFailures-dev"}, "url"),
        "threshold_checker_dlq_url": ("aws_sqs_queue", {"name": "ThresholdChecker-DLQ-dev"}, "url"),
        "trading_alerts_topic_arn": ("aws_sns_topic", {"name": "TradingAlerts-dev"}, "arn"),
        "approval_requests_topic_arn": ("aws_sns_topic", {"name": "AlertApprovalRequests-dev"}, "arn"),
        "market_data_stream_name": ("aws_kinesis_stream", {"name": "MarketDataStream-dev"}, "name"),
        "market_data_stream_arn": ("aws_kinesis_stream", {"name": "MarketDataStream-dev"}, "arn"),
        "market_data_fan_out_arn": ("aws_kinesis_stream_consumer", {"name": "MarketDataFanOut-dev"}, "arn"),
        "data_bucket_name": ("aws_s3_bucket", {"bucket": "patternwatch-data-111111111111-dev"}, "bucket"),
        "waf_log_bucket_name": ("aws_s3_bucket", {"bucket": "aws-waf-logs-patternwatch-111111111111-dev"}, "bucket"),
    }
    for output, (resource_type, attributes, attribute) in expected.items():
        target = reference_to(resource_type, logical_id(dev, resource_type, **attributes), attribute)
        assert outputs[output]["value"] == target, output
    assert outputs["kms_key_arn"]["value"] == key_arn(dev)
    for arn_output in ("trading_patterns_table_arn", "approval_tracking_table_arn", "alert_queue_arn",
                       "pending_approvals_queue_arn", "stream_failure_queue_arn", "waf_log_bucket_arn"):
        assert outputs[arn_output]["value"].endswith(".arn}"), arn_output
    assert resolve_name(dev, outputs["kms_key_alias"]["value"]) == "alias/patternwatch-dev"
