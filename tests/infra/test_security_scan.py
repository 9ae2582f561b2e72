"""checkov over every synthesized stack, in one run: every failed check is fixed or skipped inline with a
reason, and no skip is left over from a check that passes now."""
from __future__ import annotations

import json

import pytest
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from patternwatch_shared.names.functions import PLATFORM_FUNCTIONS

from patternwatch_infra.config import ENVIRONMENT_NAMES, load_environment
from patternwatch_infra.scan_skips import SKIP_KEY, skip_check
from patternwatch_infra.testing import synth_scope
from tooling.security_scan import DOC_BEGIN, DOC_END, StackResult, render_doc, scan_stacks, skip_reason, write_doc

STACK_NAMES = [stack for env in ENVIRONMENT_NAMES for stack in load_environment(env).stack_names]


@pytest.fixture(scope="session")
def scans(all_stacks, synth_dir) -> dict[str, StackResult]:
    """One checkov run over every stack (platforms and tuners), by stack name."""
    results = scan_stacks([synth_dir / "stacks" / name for name in sorted(all_stacks)])
    return {r.stack: r for r in results}


def test_one_scan_covers_every_stack(scans):
    assert sorted(scans) == sorted(STACK_NAMES)


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_checkov_finds_nothing_unexplained_and_no_stale_skip(scans, stack):
    result = scans[stack]
    assert result.passed > (500 if stack.endswith(tuple(ENVIRONMENT_NAMES)) else 100)
    assert result.unexplained == [], "\n".join(f"{c} {r}: {n}" for c, r, n in result.unexplained)
    assert result.stale == [], f"skips whose check passes now: {result.stale}"
    assert all(reason.strip() for _, _, reason in result.skipped)


def test_the_threshold_checker_passes_the_dlq_check_it_used_to_skip(scans):
    """CKV_AWS_116 (a DLQ for asynchronously invoked functions) is fixed for the one function invoked asynchronously."""
    for env in ENVIRONMENT_NAMES:
        skipped_116 = [resource for check, resource, _ in scans[f"patternwatch-{env}"].skipped if check == "CKV_AWS_116"]
        # Every platform function but ThresholdChecker is invoked synchronously only, and says by whom.
        assert len(skipped_116) == len(PLATFORM_FUNCTIONS) - 1 and not any("threshold_checker" in r for r in skipped_116), skipped_116


def test_every_platform_function_has_reserved_concurrency_so_its_check_needs_no_skip(scans):
    for env in ENVIRONMENT_NAMES:
        assert not [r for check, r, _ in scans[f"patternwatch-{env}"].skipped if check == "CKV_AWS_115"]


def test_skips_are_recorded_in_the_stack_comment_block_under_the_logical_id(dev):
    skips = dev["//"][SKIP_KEY]
    function_skips = [checks for logical, checks in skips.items() if "kinesis_consumer_function" in logical]
    assert function_skips and "CKV_AWS_117" in function_skips[0]
    logical = next(iter(skips))
    check_id, reason = next(iter(skips[logical].items()))
    assert skip_reason(dev, f"resource.{logical}", check_id) == reason
    assert skip_reason(dev, f"resource.{logical}", "CKV_NOT_SKIPPED") is None


def test_a_skip_needs_a_reason():
    def build(scope):
        skip_check(SqsQueue(scope, "q"), "CKV_AWS_27", "  ")

    with pytest.raises(ValueError, match="skipping CKV_AWS_27 needs a reason"):
        synth_scope(build)


def test_findings_are_attributed_to_their_stack_and_a_skip_whose_check_passes_is_stale(tmp_path):
    """Two stacks in one (stand-in) checkov report: a skipped failure, an unexplained one, and a skip left over
    on a check that passes now, each counted for the stack whose file it is in."""
    skips = {"q": {"CKV_AWS_27": "an old reason", "CKV2_AWS_99": "skipped on purpose"}}
    for name in ("patternwatch-a", "patternwatch-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cdk.tf.json").write_text(json.dumps({"//": {SKIP_KEY: skips}, "locals": {"x": 1}, "resource": {}}))
    seen = {}

    def checkov(root):
        seen["files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*.json"))
        seen["locals"] = any("locals" in json.loads(p.read_text()) for p in root.rglob("*.json"))
        check = {"check_name": "a check", "resource": "aws_sqs_queue.q"}
        return {"results": {
            "passed_checks": [{**check, "check_id": "CKV_AWS_27", "file_path": "/patternwatch-a/main.tf.json"}],
            "failed_checks": [
                {**check, "check_id": "CKV2_AWS_99", "file_path": "/patternwatch-a/main.tf.json"},
                {**check, "check_id": "CKV_AWS_1", "file_path": "/patternwatch-b/main.tf.json"},
            ],
        }}

    a, b = scan_stacks([tmp_path / "patternwatch-a", tmp_path / "patternwatch-b"], checkov=checkov)
    assert seen == {"files": ["patternwatch-a/main.tf.json", "patternwatch-b/main.tf.json"], "locals": False}
    assert (a.passed, a.skipped, a.unexplained, a.stale) == (1, [("CKV2_AWS_99", "aws_sqs_queue.q", "skipped on purpose")], [], [("CKV_AWS_27", "q")])
    assert (b.passed, b.unexplained) == (0, [("CKV_AWS_1", "aws_sqs_queue.q", "a check")])
    assert b.stale == [("CKV2_AWS_99", "q"), ("CKV_AWS_27", "q")] and not a.clean and not b.clean


def test_the_report_lists_counts_per_stack_and_every_reason(scans):
    document = render_doc(list(scans.values()))
    assert "| patternwatch-dev |" in document and "| patternwatch-prod |" in document
    assert "| patternwatch-dev-power-tuner |" in document
    assert "CKV_AWS_117" in document


def test_writing_the_doc_replaces_only_the_generated_section(tmp_path, scans):
    path = tmp_path / "security.md"
    path.write_text(f"# Security\n\nhand-written\n\n{DOC_BEGIN}\nold counts\n{DOC_END}\n\n## Threat model\n\nmore\n")
    write_doc(path, list(scans.values()))
    text = path.read_text()
    assert text.startswith("# Security\n\nhand-written\n") and text.endswith("## Threat model\n\nmore\n")
    assert "old counts" not in text and "| patternwatch-dev |" in text
    fresh = tmp_path / "new.md"
    write_doc(fresh, list(scans.values()))
    assert fresh.read_text().startswith(DOC_BEGIN)
