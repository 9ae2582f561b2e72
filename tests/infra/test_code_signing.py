"""Code signing and where code comes from: the artifact bucket, the Signer profile, signing jobs, the code
signing config on every function, what Terraform leaves to the release, and the release's own permissions."""
from __future__ import annotations

import pytest
from cdktf_cdktf_provider_aws.codedeploy_app import CodedeployApp
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.lambda_layer_version import LambdaLayerVersion
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from patternwatch_shared.names.functions import PATTERN_DETECTOR, PLATFORM_FUNCTIONS, POWER_TUNING_ANALYZER

from patternwatch_infra.code_artifacts import CodeArtifacts
from patternwatch_infra.config import load_environment
from patternwatch_infra.function import FunctionPlatform, InvokedSynchronously, MonitoredFunction
from patternwatch_infra.naming import declare_naming
from patternwatch_infra.packaging import build_function
from patternwatch_infra.release_contract import artifact_key, deployment_description, signed_prefix, snapshotted_definition
from patternwatch_infra.testing import find_resource, logical_id, policy_statements, reference_to, resolve, resolve_name, resources, synth_scope

REAL_ENVIRONMENTS = ("dev", "staging", "prod")
PLATFORM_NAMES = [spec.base_name for spec in PLATFORM_FUNCTIONS]


def only(doc: dict, resource_type: str) -> tuple[str, dict]:
    (item,) = resources(doc, resource_type).items()
    return item


def upload_of(doc: dict, reference: str) -> tuple[str, dict]:
    """The aws_s3_object a `${aws_s3_object.<id>.<attr>}` or signing-job reference leads back to."""
    if reference.startswith("${aws_signer_signing_job."):
        job_id = reference.split(".")[1]
        reference = resources(doc, "aws_signer_signing_job")[job_id]["source"]["s3"]["key"]
    upload_id = reference.split(".")[1]
    return upload_id, resources(doc, "aws_s3_object")[upload_id]


@pytest.mark.parametrize("env", REAL_ENVIRONMENTS)
def test_each_real_environment_signs_with_a_profile_of_its_own(stacks, env):
    doc = stacks[env]
    _, profile = only(doc, "aws_signer_signing_profile")
    assert profile["platform_id"] == "AWSLambda-SHA384-ECDSA"
    # A prefix AWS completes: a cancelled profile keeps its name two years, and a workspace must come back after a destroy.
    assert resolve_name(doc, profile["name_prefix"]) == f"PatternWatch_{env}_"
    assert resolve_name(doc, profile["name_prefix"], workspace="pr-12") == f"PatternWatch_{env}_pr_12_"


@pytest.mark.parametrize(("env", "action"), [("dev", "Warn"), ("staging", "Warn"), ("prod", "Enforce")])
def test_the_code_signing_config_trusts_only_that_profile_and_enforces_in_prod(stacks, env, action):
    doc = stacks[env]
    profile_id, _ = only(doc, "aws_signer_signing_profile")
    _, config = only(doc, "aws_lambda_code_signing_config")
    assert config["allowed_publishers"] == {"signing_profile_version_arns": [reference_to("aws_signer_signing_profile", profile_id, "version_arn")]}
    assert config["policies"] == {"untrusted_artifact_on_deployment": action}


@pytest.mark.parametrize("env", REAL_ENVIRONMENTS)
def test_every_function_checks_signatures_and_deploys_a_signed_copy_of_its_upload(stacks, env):
    doc = stacks[env]
    config_id, _ = only(doc, "aws_lambda_code_signing_config")
    profile_id, _ = only(doc, "aws_signer_signing_profile")
    bucket_id = logical_id(doc, "aws_s3_bucket", bucket=f"patternwatch-artifacts-{load_environment(env).account_id}-{env}")
    functions = resources(doc, "aws_lambda_function")
    assert len(functions) >= len(PLATFORM_FUNCTIONS)
    for fn in functions.values():
        name = resolve_name(doc, fn["function_name"])
        assert fn["code_signing_config_arn"] == reference_to("aws_lambda_code_signing_config", config_id, "arn"), name
        job_id = fn["s3_key"].split(".")[1]
        job = resources(doc, "aws_signer_signing_job")[job_id]
        assert fn["s3_bucket"] == f"${{aws_signer_signing_job.{job_id}.signed_object[0].s3[0].bucket}}"
        assert job["profile_name"] == reference_to("aws_signer_signing_profile", profile_id, "name")
        upload_id, upload = upload_of(doc, fn["s3_key"])
        # Signer signs one version of the upload, and writes the signed copy under the function's own prefix.
        assert job["source"]["s3"] == {key: reference_to("aws_s3_object", upload_id, attribute) for key, attribute in
                                       (("bucket", "bucket"), ("key", "key"), ("version", "version_id"))}
        assert job["destination"]["s3"]["bucket"] == reference_to("aws_s3_bucket", bucket_id, "id")
        assert resolve_name(doc, job["destination"]["s3"]["prefix"]) == f"signed/functions/{name}/"
        assert upload["bucket"] == reference_to("aws_s3_bucket", bucket_id, "id")


def test_the_layer_is_signed_too_because_lambda_checks_layers_of_signed_functions(prod):
    layer = find_resource(prod, "aws_lambda_layer_version", layer_name="shared-dependencies-prod")
    _, upload = upload_of(prod, layer["s3_key"])
    assert resolve_name(prod, upload["key"]).startswith("layers/shared-dependencies-prod/")
    assert "lifecycle" not in upload  # the layer is Terraform's: a changed layer is a new upload and a new version


def test_the_artifact_bucket_is_versioned_encrypted_with_the_platform_key_and_tls_only(dev):
    bucket_id = logical_id(dev, "aws_s3_bucket", bucket="patternwatch-artifacts-111111111111-dev")
    bucket_ref = reference_to("aws_s3_bucket", bucket_id, "id")
    versioning = find_resource(dev, "aws_s3_bucket_versioning", bucket=bucket_ref)
    assert versioning["versioning_configuration"] == {"status": "Enabled"}  # Signer signs object versions
    (rule,) = find_resource(dev, "aws_s3_bucket_server_side_encryption_configuration", bucket=bucket_ref)["rule"]
    (key_id,) = resources(dev, "aws_kms_key")
    assert rule["apply_server_side_encryption_by_default"] == {"sse_algorithm": "aws:kms", "kms_master_key_id": reference_to("aws_kms_key", key_id, "arn")}
    policy = find_resource(dev, "aws_s3_bucket_policy", bucket=bucket_ref)
    (deny,) = policy_statements(dev, policy["policy"])
    assert deny["effect"] == "Deny" and deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    assert dev["output"]["artifact_bucket_name"]["value"] == reference_to("aws_s3_bucket", bucket_id, "bucket")


@pytest.mark.parametrize("env", ["local", "dev"])
def test_terraform_uploads_a_released_functions_first_package_and_then_leaves_its_code_to_the_release(stacks, tuner_stacks, env):
    doc = stacks[env]
    for base in PLATFORM_NAMES:
        fn = find_resource(doc, "aws_lambda_function", function_name=f"{base}-{env}")
        assert fn["lifecycle"] == {"ignore_changes": ["s3_key", "s3_object_version", "source_code_hash"]}
        _, upload = upload_of(doc, fn["s3_key"])
        assert upload["lifecycle"] == {"ignore_changes": ["key", "source", "source_hash"]}
        key = resolve_name(doc, upload["key"])
        assert key.startswith(f"functions/{base}-{env}/") and len(key.rsplit("/", 1)[1]) == len("0" * 64 + ".zip")
    # The power tuner is tooling without a canary: `make deploy-tuner` ships its code, so Terraform keeps following it.
    tuner_doc = tuner_stacks[env]
    tuner = find_resource(tuner_doc, "aws_lambda_function", function_name=f"{POWER_TUNING_ANALYZER.base_name}-{env}")
    assert "lifecycle" not in tuner and "lifecycle" not in upload_of(tuner_doc, tuner["s3_key"])[1]


def test_local_ships_the_same_uploads_unsigned(local):
    """The emulator has no Signer jobs and no code signing configs (patternwatch_infra/emulator.py)."""
    for fn in resources(local, "aws_lambda_function").values():
        assert "code_signing_config_arn" not in fn
        upload_id, _ = upload_of(local, fn["s3_key"])
        assert fn["s3_key"] == reference_to("aws_s3_object", upload_id, "key")
        assert fn["s3_bucket"] == reference_to("aws_s3_object", upload_id, "bucket")
    assert "signing_profile_name" not in local["output"]
    skips = local["//"]["checkov_skip"]
    assert all("CKV_AWS_272" in skips[logical] for logical in resources(local, "aws_lambda_function"))


@pytest.mark.parametrize("env", REAL_ENVIRONMENTS)
def test_real_environments_skip_no_code_signing_check(all_stacks, env):
    platform_and_tuner = [doc for name, doc in all_stacks.items() if name in (f"patternwatch-{env}", f"patternwatch-{env}-power-tuner")]
    assert len(platform_and_tuner) == (1 if env == "prod" else 2)  # prod has no tuner
    for doc in platform_and_tuner:
        skips = doc["//"]["checkov_skip"]
        assert not any("CKV_AWS_272" in checks for checks in skips.values())


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_the_tuner_signs_its_code_with_its_own_profile_into_the_platform_bucket(tuner_stacks, env):
    """Another stack cannot find the platform's profile (its name ends in a generated suffix), so the tuner has its own."""
    doc = tuner_stacks[env]
    (profile_id, profile), = resources(doc, "aws_signer_signing_profile").items()
    assert resolve_name(doc, profile["name_prefix"]) == f"PatternTuner_{env}_"
    (config,) = resources(doc, "aws_lambda_code_signing_config").values()
    assert config["allowed_publishers"]["signing_profile_version_arns"] == [reference_to("aws_signer_signing_profile", profile_id, "version_arn")]
    (bucket,) = doc["data"]["aws_s3_bucket"].values()
    assert resolve_name(doc, bucket["bucket"]) == f"patternwatch-artifacts-{load_environment(env).account_id}-{env}"
    assert "aws_s3_bucket" not in doc.get("resource", {})
    for fn in resources(doc, "aws_lambda_function").values():
        assert fn["code_signing_config_arn"].startswith("${aws_lambda_code_signing_config.")


def _function_document(package, *, release_owns_code: bool) -> dict:
    """One MonitoredFunction on a minimal platform, synthesized on its own."""
    config = load_environment("dev")

    def build(stack):
        naming = declare_naming(stack, config.resource_suffix, config.account_id)
        key = KmsKey(stack, "key")
        platform = FunctionPlatform(
            config=config, naming=naming, account_id=config.account_id, kms_key=key,
            artifacts=CodeArtifacts(stack, "artifacts", config=config, naming=naming, kms_key=key, lifecycle=None),
            layer=LambdaLayerVersion(stack, "layer", layer_name="layer", s3_bucket="bucket", s3_key="layer.zip"),
            alarm_topic=SnsTopic(stack, "topic", name="topic"),
            deployment_app=CodedeployApp(stack, "app", name="app", compute_platform="Lambda"),
            deployment_role=IamRole(stack, "role", name="role", assume_role_policy="{}"),
        )
        MonitoredFunction(
            stack, spec=PATTERN_DETECTOR, code=package, platform=platform, environment={}, statements=[], release_owns_code=release_owns_code,
            invocation=InvokedSynchronously("by the test"), reserved_concurrency=1,
        )

    return synth_scope(build)


def _differences(before: dict, after: dict) -> set[tuple[str, str]]:
    changed = set()
    for resource_type, blocks in after["resource"].items():
        for logical, block in blocks.items():
            old = before["resource"][resource_type][logical]
            changed |= {(resource_type, attribute) for attribute in set(block) | set(old) if block.get(attribute) != old.get(attribute)}
    return changed


def test_new_code_in_the_tree_changes_only_what_terraform_ignores_for_a_released_function(tmp_path):
    """What `make deploy` after `make release` synthesizes: a re-plan then has nothing to do for the function."""
    source = tmp_path / "src" / "pattern_detector"
    source.mkdir(parents=True)
    (source / "handler.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    first = build_function("pattern_detector", source_root=tmp_path / "src", out_dir=tmp_path / "first")
    (source / "handler.py").write_text("def lambda_handler(event, context):\n    return 2\n")
    second = build_function("pattern_detector", source_root=tmp_path / "src", out_dir=tmp_path / "second")

    released = [_function_document(p, release_owns_code=True) for p in (first, second)]
    assert _differences(*released) == {("aws_s3_object", "key"), ("aws_s3_object", "source"), ("aws_s3_object", "source_hash")}
    (upload,) = resources(released[1], "aws_s3_object").values()
    assert set(upload["lifecycle"]["ignore_changes"]) == {"key", "source", "source_hash"}

    # Code Terraform owns (the power tuner's) differs the same way, and nothing ignores it: the next apply ships it.
    owned = [_function_document(p, release_owns_code=False) for p in (first, second)]
    assert _differences(*owned) == _differences(*released)
    assert all("lifecycle" not in block for block in resources(owned[1], "aws_s3_object").values())


def test_the_release_and_the_stacks_agree_on_names():
    assert artifact_key("functions", "PatternDetector-dev", "ab" * 32) == f"functions/PatternDetector-dev/{'ab' * 32}.zip"
    assert signed_prefix("functions", "PatternDetector-dev") == "signed/functions/PatternDetector-dev/"
    assert snapshotted_definition(deployment_description("f00d")) == "f00d"
    assert snapshotted_definition(deployment_description("f00d", "tooling.release")) == "f00d"
    for other in (None, "", "Managed by Terraform", "definition "):
        assert snapshotted_definition(other) is None


# --- the release's permissions ------------------------------------------------------------------------

def release_statements(doc: dict) -> dict[str, dict]:
    _, policy = only(doc, "aws_iam_policy")
    return {s["sid"]: s for s in policy_statements(doc, policy["policy"])}


@pytest.mark.parametrize("env", ["local", "dev", "prod"])
def test_the_release_policy_names_this_environments_functions_groups_bucket_prefixes_and_api(stacks, env):
    doc = stacks[env]
    _, policy = only(doc, "aws_iam_policy")
    assert resolve_name(doc, policy["name"]) == f"PatternWatchRelease-{env}"
    statements = release_statements(doc)
    for statement in statements.values():
        assert statement["effect"] == "Allow" and all("*" not in action for action in statement["actions"])
    functions = [r for r in resolve_name(doc, statements["ReleaseFunctionCode"]["resources"]) if not r.endswith(":*")]
    assert sorted(r.rsplit(":function:", 1)[1] for r in functions) == sorted(f"{base}-{env}" for base in PLATFORM_NAMES)
    assert set(statements["ReleaseFunctionCode"]["actions"]) == {
        "lambda:GetAlias", "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode", "lambda:PublishVersion"}
    groups = resolve_name(doc, statements["StartCanaryDeployments"]["resources"])
    assert sorted(g.rsplit("/", 1)[1] for g in groups) == sorted(f"{base}-{env}" for base in PLATFORM_NAMES)
    assert statements["ReadCanaryDeploymentConfig"]["resources"][0].endswith(":deploymentconfig:CodeDeployDefault.LambdaCanary10Percent5Minutes")
    bucket_id = next(k for k, b in resources(doc, "aws_s3_bucket").items() if "patternwatch-artifacts" in b["bucket"])
    assert statements["UploadReleasePackages"]["resources"] == [f"{reference_to('aws_s3_bucket', bucket_id, 'arn')}/functions/*"]
    api_id = logical_id(doc, "aws_api_gateway_rest_api", name=f"pattern-detection-api-{env}")
    stage_path = f"arn:aws:apigateway:us-east-1::/restapis/{reference_to('aws_api_gateway_rest_api', api_id, 'id')}"
    stage_id = logical_id(doc, "aws_api_gateway_stage", stage_name="v1")
    assert statements["ReleaseApiDeployments"]["resources"] == [
        f"{stage_path}/stages/{reference_to('aws_api_gateway_stage', stage_id, 'stage_name')}", f"{stage_path}/deployments", f"{stage_path}/deployments/*"]
    alarm_id = logical_id(doc, "aws_cloudwatch_metric_alarm", alarm_name=f"PatternDetectionApi-5XXError-{env}")
    assert statements["WatchApiReleaseAlarms"]["resources"] == [reference_to("aws_cloudwatch_metric_alarm", alarm_id, "arn")]
    signing = {"SignReleasePackages", "FollowSigningJobs", "WriteAndReadSignedPackages"}
    if env == "local":
        assert not signing & set(statements)
    else:
        profile_id, _ = only(doc, "aws_signer_signing_profile")
        assert statements["SignReleasePackages"]["resources"] == [reference_to("aws_signer_signing_profile", profile_id, "arn")]
        assert statements["WriteAndReadSignedPackages"]["resources"] == [f"{reference_to('aws_s3_bucket', bucket_id, 'arn')}/signed/functions/*"]
        assert statements["FollowSigningJobs"]["resources"][0].endswith(":/signing-jobs/*")
    assert doc["output"]["release_policy_arn"]["value"] == reference_to("aws_iam_policy", only(doc, "aws_iam_policy")[0], "arn")
    assert resolve(doc, policy["policy"])["statement"]  # a data source, as every policy here
