"""The reusable building blocks in isolation, through synth_scope (our Testing.synth_scope)."""
from __future__ import annotations

from cdktf_cdktf_provider_aws.kms_key import KmsKey

from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from patternwatch_shared.names.functions import THRESHOLD_CHECKER

from patternwatch_infra.blocks import EncryptedQueue, SecureBucket
from patternwatch_infra.config import load_environment
from patternwatch_infra.function import FunctionPlatform, InvokedSynchronously, MonitoredFunction
from patternwatch_infra.naming import Naming
from patternwatch_infra.policies import service_principal, statement
import pytest

from patternwatch_infra.testing import find_resource, logical_id, policy_statements, resolve, resources, synth_scope


def test_synth_scope_returns_the_json_of_what_the_callable_built():
    document = synth_scope(lambda scope: KmsKey(scope, "key", description="probe"))
    (key,) = resources(document, "aws_kms_key").values()
    assert key["description"] == "probe"
    assert document["provider"]["aws"][0]["region"] == "us-east-1"


def test_a_queue_without_a_dead_letter_queue_has_no_redrive_and_one_policy():
    def build(scope):
        key = KmsKey(scope, "key")
        EncryptedQueue(scope, "failures", queue_name="failures-test", kms_key=key)

    document = synth_scope(build)
    queue = find_resource(document, "aws_sqs_queue", name="failures-test")
    assert "redrive_policy" not in queue
    assert len(resources(document, "aws_sqs_queue")) == 1
    (policy,) = resources(document, "aws_sqs_queue_policy").values()
    assert [s["sid"] for s in policy_statements(document, policy["policy"])] == ["DenyInsecureTransport"]


def test_a_bucket_keeps_extra_policy_statements_after_the_tls_rule():
    extra = statement(
        sid="LetLogsIn",
        actions=["s3:PutObject"],
        resources=["arn:aws:s3:::b-test/*"],
        principals=[service_principal("delivery.logs.amazonaws.com")],
    )

    def build(scope):
        key = KmsKey(scope, "key")
        SecureBucket(
            scope, "b", bucket_name="b-test", kms_key=key, force_destroy=True, lifecycle=None, access_logs=None, extra_policy_statements=[extra]
        )

    document = synth_scope(build)
    (policy,) = resources(document, "aws_s3_bucket_policy").values()
    assert [s["sid"] for s in policy_statements(document, policy["policy"])] == ["DenyInsecureTransport", "LetLogsIn"]
    (dependency,) = policy["depends_on"]
    assert dependency.startswith("aws_s3_bucket_public_access_block.")
    assert resolve(document, policy["bucket"])["bucket"] == "b-test"


def test_a_bucket_without_the_platform_key_must_say_why_and_only_then():
    def build(kms, because):
        def inside(scope):
            key = KmsKey(scope, "key") if kms else None
            SecureBucket(scope, "b", bucket_name="b-test", kms_key=key, force_destroy=True, lifecycle=None, access_logs=None, sse_s3_because=because)

        return inside

    for kms, because in ((False, None), (True, "a reason")):
        with pytest.raises(ValueError, match="a bucket without the platform key must say why"):
            synth_scope(build(kms, because))
    document = synth_scope(build(False, "S3 log delivery needs SSE-S3"))
    (encryption,) = resources(document, "aws_s3_bucket_server_side_encryption_configuration").values()
    assert encryption["rule"] == [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}]


def test_lookup_helpers_fail_loudly_instead_of_guessing():
    document = synth_scope(lambda scope: [KmsKey(scope, "a", description="same"), KmsKey(scope, "b", description="same")])
    with pytest.raises(AssertionError, match="expected one aws_kms_key"):
        find_resource(document, "aws_kms_key", description="same")
    with pytest.raises(AssertionError, match="expected one aws_kms_key"):
        logical_id(document, "aws_kms_key", description="missing")
    with pytest.raises(AssertionError, match="is not a plain reference"):
        resolve(document, "arn:aws:kms:us-east-1:111111111111:key/abc")


def test_an_alarm_watches_one_metric_or_metric_math_never_both_or_neither():
    from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarmMetricQuery

    from patternwatch_infra.alarms import THREE_OF_FIVE_MINUTES, Evaluation, Metric, alarm

    errors = Metric("AWS/Lambda", "Errors", "Sum", {"FunctionName": "F-test"})
    expression = CloudwatchMetricAlarmMetricQuery(id="e", expression="errors * 2", return_data=True)

    def build(stack):
        alarm(stack, "by_metric", name="F-Errors", description="d", actions=["arn:topic"], evaluation=THREE_OF_FIVE_MINUTES, metric=errors, threshold=1)
        alarm(stack, "p99", name="F-Duration", description="d", actions=["arn:topic"], evaluation=THREE_OF_FIVE_MINUTES,
              metric=Metric("AWS/Lambda", "Duration", "p99"), threshold=1000, notify_ok=False)
        for bad in ({"metric": errors, "queries": [expression]}, {}):
            with pytest.raises(ValueError, match="either one metric or metric-math queries"):
                alarm(stack, "bad", name="Bad", description="d", actions=[], evaluation=Evaluation(periods=1), **bad)

    document = synth_scope(build)
    by_metric = find_resource(document, "aws_cloudwatch_metric_alarm", alarm_name="F-Errors")
    assert (by_metric["statistic"], by_metric["period"], by_metric["evaluation_periods"], by_metric["datapoints_to_alarm"]) == ("Sum", 60, 5, 3)
    assert by_metric["treat_missing_data"] == "notBreaching" and by_metric["ok_actions"] == ["arn:topic"]
    p99 = find_resource(document, "aws_cloudwatch_metric_alarm", alarm_name="F-Duration")
    assert p99["extended_statistic"] == "p99" and "statistic" not in p99 and "ok_actions" not in p99
    assert len(resources(document, "aws_cloudwatch_metric_alarm")) == 2


def test_an_encrypted_log_group_keeps_the_retention_it_is_given(dev):
    from patternwatch_infra.blocks import encrypted_log_group

    def build(stack):
        encrypted_log_group(stack, "logs", "/aws/lambda/F-test", retention_days=7, kms_key=KmsKey(stack, "key"))

    (group,) = resources(synth_scope(build), "aws_cloudwatch_log_group").values()
    assert (group["name"], group["retention_in_days"]) == ("/aws/lambda/F-test", 7)
    assert group["kms_key_id"].startswith("${aws_kms_key.")
    # Every log group of a stack comes from it, so each carries the reason for its short retention.
    groups = resources(dev, "aws_cloudwatch_log_group")
    assert len(groups) == 14
    assert all("CKV_AWS_338" in dev["//"]["checkov_skip"][group_id] for group_id in groups)


def test_a_function_without_reserved_concurrency_must_say_why():
    def build(scope):
        platform = FunctionPlatform(
            config=load_environment("dev"), naming=Naming(), account_id="111111111111", kms_key=KmsKey(scope, "key"),
            alarm_topic=SnsTopic(scope, "topic", name="ops-test"), artifacts=None,  # refused before it uploads anything
        )
        MonitoredFunction(
            scope, spec=THRESHOLD_CHECKER, code=None, platform=platform, environment={}, statements=[],
            invocation=InvokedSynchronously("a test"), reserved_concurrency=None,
        )

    with pytest.raises(ValueError, match="ThresholdChecker: give it reserved concurrency, or say why it draws from the unreserved pool"):
        synth_scope(build)
