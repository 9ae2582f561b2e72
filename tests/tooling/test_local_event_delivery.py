"""Failures of asynchronous deliveries on the emulator go somewhere: EventBridge retries a target that refuses an
event and then dead-letters it, and Lambda dead-letters an event its function failed on every retry."""
from __future__ import annotations

import json
import uuid

from local_aws_helpers import log_messages, zip_of
from tooling.local_aws import admin

FAILING = "def handler(event, context):\n    raise ValueError('cannot check')\n"


def queue(aws, prefix: str) -> tuple[str, str]:
    url = aws.sqs.create_queue(QueueName=f"{prefix}-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    return url, aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def messages(aws, url: str) -> list[dict]:
    return aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages", [])


def rule_to_a_missing_function(aws, retry_policy: dict, dead_letter_arn: str | None) -> tuple[str, str, str]:
    """A rule whose one target is a function that does not exist, so every delivery is refused."""
    name = f"refused-{uuid.uuid4().hex[:6]}"
    source = f"test.{name}"
    rule_arn = aws.events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))["RuleArn"]
    target_arn = f"arn:aws:lambda:us-east-1:123456789012:function:NoSuchFunction-{name}"
    target = {"Id": "missing", "Arn": target_arn, "RetryPolicy": retry_policy}
    if dead_letter_arn:
        target["DeadLetterConfig"] = {"Arn": dead_letter_arn}
    aws.events.put_targets(Rule=name, Targets=[target])
    return name, source, rule_arn


def rule_metric(aws, rule: str, metric: str) -> float:
    admin.flush_metrics(aws.endpoint)
    points = aws.cloudwatch.get_metric_statistics(
        Namespace="AWS/Events", MetricName=metric, Dimensions=[{"Name": "RuleName", "Value": rule}],
        StartTime=0, EndTime=4_000_000_000, Period=86_400, Statistics=["Sum"],
    )["Datapoints"]
    return sum(p["Sum"] for p in points)


def test_a_refused_event_is_retried_as_the_policy_says_then_sent_to_the_rule_s_dead_letter_queue(aws):
    url, arn = queue(aws, "rule-dlq")
    rule, source, rule_arn = rule_to_a_missing_function(aws, {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}, arn)
    aws.events.put_events(Entries=[{"Source": source, "DetailType": "Check", "Detail": json.dumps({"n": 1})}])
    assert admin.wait_for_async(aws.endpoint)
    (message,) = messages(aws, url)
    event = json.loads(message["Body"])
    assert (event["source"], event["detail"]) == (source, {"n": 1})
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {
        "RULE_ARN": rule_arn,
        "TARGET_ARN": f"arn:aws:lambda:us-east-1:123456789012:function:NoSuchFunction-{rule}",
        "ERROR_CODE": "ResourceNotFoundException",
        "ERROR_MESSAGE": attributes["ERROR_MESSAGE"],
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttemptsExhausted",
        "RETRY_ATTEMPTS": "2",
    }
    assert "NoSuchFunction" in attributes["ERROR_MESSAGE"]
    assert rule_metric(aws, rule, "RetryInvocationAttempts") == 2
    assert rule_metric(aws, rule, "FailedInvocations") == rule_metric(aws, rule, "InvocationsSentToDlq") == 1


def test_an_event_older_than_the_policy_allows_is_dead_lettered_without_more_retries(aws):
    url, arn = queue(aws, "rule-dlq-age")
    rule, source, _ = rule_to_a_missing_function(aws, {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 60}, arn)
    try:
        aws.events.put_events(Entries=[{"Source": source, "DetailType": "Check", "Detail": "{}"}])
        admin.advance_clock(aws.endpoint, 120)  # on the platform clock the event is now two minutes old
        assert admin.wait_for_async(aws.endpoint)
    finally:
        admin.reset_clock(aws.endpoint)
    (message,) = messages(aws, url)
    assert message["MessageAttributes"]["EXHAUSTED_RETRY_CONDITION"]["StringValue"] == "MaximumEventAgeExhausted"
    assert int(message["MessageAttributes"]["RETRY_ATTEMPTS"]["StringValue"]) < 185


def test_without_a_dead_letter_queue_the_event_is_kept_and_reported_not_dropped(aws):
    rule, source, _ = rule_to_a_missing_function(aws, {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}, None)
    aws.events.put_events(Entries=[{"Source": source, "DetailType": "Check", "Detail": json.dumps({"keep": "me"})}])
    assert admin.wait_for_async(aws.endpoint)
    (kept,) = [e for e in admin.events_stats(aws.endpoint)["undeliverable"] if e["rule"] == rule]
    assert kept["event"]["detail"] == {"keep": "me"} and kept["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttemptsExhausted"
    assert rule_metric(aws, rule, "FailedInvocations") == 1 and rule_metric(aws, rule, "InvocationsSentToDlq") == 0


def test_a_function_s_dead_letter_queue_gets_the_event_after_the_retries_its_live_alias_allows(aws):
    """Lambda's own half: the function's DeadLetterConfig, with the retry limit set on the `live` alias
    (GetFunction returns the DLQ, so Terraform's plan of it stays clean)."""
    url, arn = queue(aws, "function-dlq")
    name = f"checker-{uuid.uuid4().hex[:6]}"
    aws.lambda_.create_function(
        FunctionName=name, Runtime="python3.12", Role=aws.role_arn, Handler="app.handler", Code={"ZipFile": zip_of({"app.py": FAILING})},
        Timeout=5, MemorySize=128, Publish=True, DeadLetterConfig={"TargetArn": arn},
    )
    version = aws.lambda_.list_versions_by_function(FunctionName=name)["Versions"][-1]["Version"]
    aws.lambda_.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    aws.lambda_.put_function_event_invoke_config(FunctionName=name, Qualifier="live", MaximumRetryAttempts=0, MaximumEventAgeInSeconds=3600)
    assert aws.lambda_.get_function(FunctionName=name)["Configuration"]["DeadLetterConfig"] == {"TargetArn": arn}
    assert aws.lambda_.invoke(FunctionName=f"{name}:live", InvocationType="Event", Payload=b'{"scheduled": true}')["StatusCode"] == 202
    assert admin.wait_for_async(aws.endpoint)
    (message,) = messages(aws, url)
    assert json.loads(message["Body"]) == {"scheduled": True}
    assert message["MessageAttributes"]["ErrorMessage"]["StringValue"] == "cannot check"
    assert sum(m.startswith("START RequestId:") for m in log_messages(aws, name)) == 1  # no retry: the alias allows none
