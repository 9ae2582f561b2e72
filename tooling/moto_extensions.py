"""Small additions to moto server so the `local` stack applies, plans clean and destroys, and runs.

moto 5.2.1 lacks a few calls the AWS provider makes, or answers them in a shape the provider rejects.
`install()` adds or adjusts exactly those, in this process, before the server starts; nothing in
site-packages is modified. One function per gap, each saying which call and why. It then installs the
local platform's runtime (tooling/local_aws: the local Lambda service, Step Functions executions,
EventBridge delivery, the REST API, logs and metrics, the clock), and serves everything through
tooling/local_aws/server.py.

Usage: python -m tooling.moto_extensions -H 127.0.0.1 -p 5055   (tooling/emulator.py starts it this way)
"""
from __future__ import annotations

import json
import sys
import time

from . import moto_cloudwatch

INSTALLED: list[str] = []


def _register(name: str) -> None:
    INSTALLED.append(name)


def codedeploy_create_time_as_epoch() -> None:
    """GetApplication: moto returns createTime as an ISO string; the API (and the Go SDK) use epoch seconds."""
    from moto.codedeploy import models

    original_init = models.Application.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.create_time = time.time()

    models.Application.__init__ = init
    _register("codedeploy:GetApplication createTime")


def codedeploy_deletes() -> None:
    """DeleteDeploymentGroup and DeleteApplication are missing; `terraform destroy` calls both."""
    from moto.codedeploy.responses import CodeDeployResponse

    def delete_deployment_group(self) -> str:
        groups = self.codedeploy_backend.deployment_groups.get(self._get_param("applicationName"), {})
        groups.pop(self._get_param("deploymentGroupName"), None)
        return json.dumps({"hooksNotCleanedUp": []})

    def delete_application(self) -> str:
        name = self._get_param("applicationName")
        self.codedeploy_backend.applications.pop(name, None)
        self.codedeploy_backend.deployment_groups.pop(name, None)
        return "{}"

    CodeDeployResponse.delete_deployment_group = delete_deployment_group
    CodeDeployResponse.delete_application = delete_application
    _register("codedeploy:DeleteDeploymentGroup, DeleteApplication")


def lambda_event_sources_without_docker() -> None:
    """CreateEventSourceMapping, three fixes:

    - accept a Kinesis enhanced fan-out consumer ARN as the event source (moto knows only stream ARNs);
    - keep the FunctionArn the caller gave (our `live` alias), instead of the resolved version, so a
      re-plan shows no drift;
    - never attach the mapping to the queue or stream: moto would then invoke the function inside
      SendMessage/PutRecord, synchronously and without Lambda's batching and retry semantics. The
      project's trigger runner (tooling/local_runner.py) polls instead and invokes through the local
      Lambda service.
    """
    from moto.awslambda.models import EventSourceMapping, LambdaBackend
    from moto.core.exceptions import JsonRESTError as RESTError
    from moto.kinesis.models import kinesis_backends
    from moto.sqs.models import sqs_backends

    def create_event_source_mapping(self, spec):
        for param in ("EventSourceArn", "FunctionName"):
            if not spec.get(param):
                raise RESTError("InvalidParameterValueException", f"Missing {param}")
        spec["RegionName"], spec["AccountId"] = self.region_name, self.account_id
        function = self._lambdas.get_function_by_name_or_arn_with_qualifier(spec["FunctionName"])
        source = spec["EventSourceArn"]
        queues = {q.queue_arn for q in sqs_backends[self.account_id][self.region_name].queues.values()}
        kinesis = kinesis_backends[self.account_id][self.region_name]
        streams = {s.arn for s in kinesis.streams.values()}
        consumers = {c.consumer_arn for s in kinesis.streams.values() for c in s.consumers}
        if source not in queues | streams | consumers:
            raise RESTError("ResourceNotFoundException", "Invalid EventSourceArn")
        spec["FunctionArn"] = spec["FunctionName"] if spec["FunctionName"].startswith("arn:") else function.function_arn
        mapping = EventSourceMapping(spec)
        self._event_source_mappings[mapping.uuid] = mapping
        return mapping

    LambdaBackend.create_event_source_mapping = create_event_source_mapping

    original_update = LambdaBackend.update_event_source_mapping

    def update_event_source_mapping(self, uuid, spec):
        mapping = original_update(self, uuid, spec)
        if mapping is not None and str(spec.get("FunctionName", "")).startswith("arn:"):
            mapping.function_arn = spec["FunctionName"]
        return mapping

    LambdaBackend.update_event_source_mapping = update_event_source_mapping
    _register("lambda:CreateEventSourceMapping (EFO consumers, alias ARNs, no Docker)")


def sqs_compact_redrive_policy() -> None:
    """GetQueueAttributes: moto re-serialises RedrivePolicy with spaces; AWS returns the compact JSON it was
    given, and the provider reports the whitespace as a change on every plan."""
    from moto.sqs.models import Queue

    original = Queue.attributes

    def attributes(self):
        result = original.fget(self)
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    Queue.attributes = property(attributes)
    _register("sqs:GetQueueAttributes RedrivePolicy")


def lambda_function_kms_key() -> None:
    """GetFunction: moto accepts KMSKeyArn (environment encryption) but never returns it, so every plan
    would re-set it."""
    from moto.awslambda.models import LambdaFunction

    original_init = LambdaFunction.__init__
    original_configuration = LambdaFunction.get_configuration
    original_update = LambdaFunction.update_configuration

    def init(self, account_id, spec, *args, **kwargs):
        original_init(self, account_id, spec, *args, **kwargs)
        self.kms_key_arn = spec.get("KMSKeyArn")

    def get_configuration(self, *args, **kwargs):
        config = original_configuration(self, *args, **kwargs)
        if getattr(self, "kms_key_arn", None):
            config["KMSKeyArn"] = self.kms_key_arn
        return config

    def update_configuration(self, config_updates):
        if "KMSKeyArn" in config_updates:
            self.kms_key_arn = config_updates["KMSKeyArn"] or None
        return original_update(self, config_updates)

    LambdaFunction.__init__ = init
    LambdaFunction.get_configuration = get_configuration
    LambdaFunction.update_configuration = update_configuration
    _register("lambda:GetFunction KMSKeyArn")


def stepfunctions_validation_versions_and_type() -> None:
    """Step Functions, three gaps that fail plan or drift:

    - ValidateStateMachineDefinition (the provider validates every definition before create) is missing;
      answer OK: the project's own tests validate the ASL (tests/infra) before it gets here;
    - ListStateMachineVersions is missing; a machine we never publish has no versions;
    - moto ignores `type`, so an EXPRESS machine reads back as STANDARD and would be replaced every plan;
      the interpreter reads `sm_type`, so both are set.
    """
    from moto.stepfunctions.responses import StepFunctionResponse

    def validate_state_machine_definition(self) -> str:
        json.loads(self._get_param("definition"))  # malformed JSON still fails loudly
        return json.dumps({"result": "OK", "diagnostics": [], "truncated": False})

    def list_state_machine_versions(self) -> str:
        machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
        versions = [
            {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date.timestamp()} for v in machine.versions.values()
        ]
        return json.dumps({"stateMachineVersions": versions})

    original_create = StepFunctionResponse.create_state_machine

    def create_state_machine(self):
        result = original_create(self)
        machine_type, name = self._get_param("type"), self._get_param("name")
        for machine in self.stepfunction_backend.state_machines:
            if machine_type and machine.name == name:
                machine.type = machine.sm_type = machine_type
        return result

    StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition
    StepFunctionResponse.list_state_machine_versions = list_state_machine_versions
    StepFunctionResponse.create_state_machine = create_state_machine
    _register("states:ValidateStateMachineDefinition, ListStateMachineVersions, type")


def budgets_subscribers_and_tags() -> None:
    """Budgets: DescribeSubscribersForNotification and the tag calls the provider makes on every read
    are missing (moto keeps the subscribers, it just cannot list them), and CreateBudget drops
    ResourceTags."""
    from moto.budgets.responses import BudgetsResponse

    def describe_subscribers_for_notification(self) -> str:
        budget = self.backend.budgets[self._get_param("AccountId")][self._get_param("BudgetName")]
        wanted = self._get_param("Notification")
        for notification in budget.notifications:
            if notification.details == wanted:
                return json.dumps({"Subscribers": notification.subscribers, "NextToken": None})
        return json.dumps({"Subscribers": [], "NextToken": None})

    tags: dict[str, list[dict]] = {}

    def list_tags_for_resource(self) -> str:
        return json.dumps({"ResourceTags": tags.get(self._get_param("ResourceARN"), [])})

    def tag_resource(self) -> str:
        current = {t["Key"]: t for t in tags.get(self._get_param("ResourceARN"), [])}
        current.update({t["Key"]: t for t in self._get_param("ResourceTags", [])})
        tags[self._get_param("ResourceARN")] = list(current.values())
        return "{}"

    def untag_resource(self) -> str:
        drop = set(self._get_param("ResourceTagKeys", []))
        arn = self._get_param("ResourceARN")
        tags[arn] = [t for t in tags.get(arn, []) if t["Key"] not in drop]
        return "{}"

    original_create = BudgetsResponse.create_budget

    def create_budget(self) -> str:
        result = original_create(self)
        if self._get_param("ResourceTags"):
            arn = f"arn:aws:budgets::{self._get_param('AccountId')}:budget/{self._get_param('Budget')['BudgetName']}"
            tags[arn] = list(self._get_param("ResourceTags"))
        return result

    BudgetsResponse.create_budget = create_budget
    BudgetsResponse.describe_subscribers_for_notification = describe_subscribers_for_notification
    BudgetsResponse.list_tags_for_resource = list_tags_for_resource
    BudgetsResponse.tag_resource = tag_resource
    BudgetsResponse.untag_resource = untag_resource
    _register("budgets:DescribeSubscribersForNotification, tags")


def kinesis_create_stream_tags() -> None:
    """CreateStream: moto ignores its Tags parameter (the provider tags at creation), so every plan
    would add the cost tags again."""
    from moto.kinesis.responses import KinesisResponse

    original = KinesisResponse.create_stream

    def create_stream(self):
        result = original(self)
        tags = self._get_param("Tags")
        if tags:
            self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), tags)
        return result

    KinesisResponse.create_stream = create_stream
    _register("kinesis:CreateStream Tags")


def lambda_create_function_retry_safe() -> None:
    """CreateFunction, repeated after its answer was lost, answers like the first call did.

    When a connection drops after moto created the function, the SDK sends CreateFunction again. moto's
    response layer (LambdaResponse.create_function) refuses any name that exists with 409 "Function
    already exist", and the AWS provider retries ResourceConflictException for five minutes before the
    apply fails: the 1-in-4 loop on PowerTuningOptimizer-local (docs/reliability.md). So the check sits in
    that layer, before moto's: a create whose name, code (SHA-256 of the zip), role, handler and runtime
    match the function that exists is the same request, and gets the 201 and configuration the first
    call sent (the published version when it asked to publish). The code may be inline or in S3 (the
    functions' packages go through the artifact bucket). Any other create of an existing name still gets the 409."""
    from moto.awslambda.models import _s3_content, _validate_s3_bucket_and_key, _zipfile_content
    from moto.awslambda.responses import LambdaResponse

    original = LambdaResponse.create_function

    def code_sha256(response, code: dict) -> str | None:
        """The SHA-256 (base64) of the zip a create names, inline or in S3; None when it cannot be read."""
        if code.get("ZipFile"):
            return _zipfile_content(code["ZipFile"])[2]
        try:
            key = _validate_s3_bucket_and_key(response.current_account, response.partition, code) if code.get("S3Key") else None
        except Exception:  # moto's own create reports a missing bucket or key
            return None
        return _s3_content(key)[2] if key is not None else None

    def create_function(self):
        spec = self.json_body
        name = str(spec.get("FunctionName", "")).rsplit(":", 1)[-1]
        functions = self.backend._lambdas._functions
        existing = functions.get(name, {}).get("latest")
        if existing is None or code_sha256(self, spec.get("Code") or {}) != existing.code_sha_256:
            return original(self)
        if (spec.get("Role"), spec.get("Handler"), spec.get("Runtime")) != (existing.role, existing.handler, existing.run_time):
            return original(self)
        config = existing.get_configuration(on_create=True)
        versions = functions[name]["versions"]
        if spec.get("Publish") and versions:
            config["Version"] = str(versions[-1].version)
        return 201, {"status": 201}, json.dumps(config)

    LambdaResponse.create_function = create_function
    _register("lambda:CreateFunction repeated after a dropped connection answers like the first call")


def sns_delivery_status_attributes() -> None:
    """GetTopicAttributes: moto stores a topic's delivery-status logging settings (<protocol>SuccessFeedbackRoleArn,
    ...SuccessFeedbackSampleRate, ...FailureFeedbackRoleArn) but never returns them, so every plan would re-set them."""
    from moto.core.utils import camelcase_to_underscores
    from moto.sns.responses import SNSResponse

    names = [f"{protocol}{setting}" for protocol in ("Application", "Firehose", "HTTP", "Lambda", "SQS")
             for setting in ("SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn")]
    original = SNSResponse.get_topic_attributes

    def get_topic_attributes(self):
        result = original(self)
        topic = self.backend.get_topic(self._get_param("TopicArn"))
        for name in names:
            value = getattr(topic, camelcase_to_underscores(name), None)
            if value is not None:
                result.result["Attributes"][name] = str(value)
        return result

    SNSResponse.get_topic_attributes = get_topic_attributes
    _register("sns:GetTopicAttributes delivery-status logging")


def s3_logging_target_policy_with_any_principal() -> None:
    """PutBucketLogging: moto reads the target bucket's policy to find the logging service's grant, and fails
    with a 500 on a statement whose Principal is "*" (our TLS-only deny). Such statements grant the logging
    service nothing, so they are passed over."""
    from moto.s3.models import FakeBucket

    original = FakeBucket._log_permissions_enabled_policy

    def log_permissions_enabled_policy(target_bucket, target_prefix):
        if not target_bucket.policy:
            return False
        policy = json.loads(target_bucket.policy.decode())
        statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
        with_service_principals = [s for s in statements if isinstance(s.get("Principal"), dict)]
        if len(with_service_principals) == len(statements):
            return original(target_bucket, target_prefix)
        saved = target_bucket.policy
        try:
            target_bucket.policy = json.dumps({**policy, "Statement": with_service_principals}).encode()
            return original(target_bucket, target_prefix)
        finally:
            target_bucket.policy = saved

    FakeBucket._log_permissions_enabled_policy = staticmethod(log_permissions_enabled_policy)
    _register("s3:PutBucketLogging with a target bucket policy that has a \"*\" principal")


def s3_bucket_policy_over_tls() -> None:
    """PutObject/GetObject/HeadObject on a bucket with our TLS-only policy (SecureBucket): moto evaluates
    bucket policies without their conditions, so the Deny that applies only when aws:SecureTransport is
    false denies every object request (403). SDKs reach S3 over TLS, and the emulator stands in for that
    HTTPS endpoint: statements whose one condition is aws:SecureTransport=false are left out of moto's
    evaluation. Every other statement is evaluated as before."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def only_insecure_transport(condition) -> bool:
        if not isinstance(condition, dict) or list(condition) != ["Bool"] or list(condition["Bool"]) != ["aws:SecureTransport"]:
            return False
        value = condition["Bool"]["aws:SecureTransport"]
        return [str(v).lower() for v in (value if isinstance(value, list) else [value])] == ["false"]

    def get_permission(self, action, resource):
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode())
        statements = document.get("Statement", [])
        kept = [s for s in (statements if isinstance(statements, list) else [statements]) if not only_insecure_transport(s.get("Condition"))]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission
    _register("s3:object requests under a TLS-only bucket policy")


def s3_object_listing_thread_safe() -> None:
    """ListObjectVersions while another request deletes a key of the same bucket: moto's threaded server
    copies the bucket's version lists without a lock, and a list emptied mid-copy raises TypeError (HTTP 500).
    Terraform destroys a stack's S3 objects in parallel, so `make down` and the tests' teardown met it now and
    then. One lock serializes moto's listing and changing of S3 keys; S3 itself is consistent per request."""
    import functools
    import threading

    from moto.s3.models import S3Backend

    lock = threading.RLock()

    def serialized(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            with lock:
                return method(self, *args, **kwargs)
        return wrapper

    for name in ("list_object_versions", "delete_object", "delete_objects", "put_object"):
        setattr(S3Backend, name, serialized(getattr(S3Backend, name)))
    _register("s3:ListObjectVersions safe beside concurrent deletes")


def install() -> list[str]:
    """Apply every addition once; returns what was installed."""
    if not INSTALLED:
        codedeploy_create_time_as_epoch()
        codedeploy_deletes()
        lambda_event_sources_without_docker()
        sqs_compact_redrive_policy()
        lambda_function_kms_key()
        stepfunctions_validation_versions_and_type()
        budgets_subscribers_and_tags()
        kinesis_create_stream_tags()
        lambda_create_function_retry_safe()
        sns_delivery_status_attributes()
        s3_logging_target_policy_with_any_principal()
        s3_bucket_policy_over_tls()
        s3_object_listing_thread_safe()
        INSTALLED.extend(moto_cloudwatch.install())  # metric reads: percentiles, dimension order, ListMetrics
        from . import local_aws

        INSTALLED.extend(local_aws.install())
    return list(INSTALLED)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="moto server with the PatternWatch extensions and local runtime")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    installed = install()
    print(f"moto extensions: {'; '.join(installed)}", flush=True)
    from .local_aws.server import serve

    serve(args.host, args.port)


if __name__ == "__main__":
    main()
