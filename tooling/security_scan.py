"""Security scan: checkov over every environment's synthesized stack; fails on any unexplained finding.

For each stack, a copy of cdk.tf.json without `terraform.required_version` and the `locals` block (checkov
3.1's JSON parser crashes on both; names keep their `${local.name_suffix}` reference, which no check reads)
is scanned with `--framework terraform_json --skip-download`. A failed check counts as skipped only when
the failing block has that check id with a reason, written next to the resource in the construct code
with `patternwatch_infra.scan_skips.skip_check` (checkov's JSON scanner reads no skip comments of its own).

Usage: python -m tooling.security_scan [--stacks-dir cdktf.out/stacks] [--write-doc docs/security.md]
Exit code 1 when any failed check has no inline skip.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from patternwatch_infra.scan_skips import SKIP_KEY

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHECKOV = Path(sys.executable).with_name("checkov")


@dataclass
class StackResult:
    stack: str
    passed: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (check, resource, reason)
    unexplained: list[tuple[str, str, str]] = field(default_factory=list)  # (check, resource, name)


def skip_reason(document: dict, resource: str, check_id: str) -> str | None:
    """The inline skip for `check_id` on the block checkov names `aws_x.logical`, `resource.logical` or
    `data.logical` (it is not consistent about keeping the type; logical ids are unique in a stack)."""
    logical = resource.partition(".")[2]
    return document.get("//", {}).get(SKIP_KEY, {}).get(logical, {}).get(check_id)


def scan_stack(stack_dir: Path) -> StackResult:
    document = json.loads((stack_dir / "cdk.tf.json").read_text())
    scanned = json.loads(json.dumps(document))
    scanned.get("terraform", {}).pop("required_version", None)
    scanned.pop("locals", None)
    with tempfile.TemporaryDirectory() as workdir:
        (Path(workdir) / "main.tf.json").write_text(json.dumps(scanned))
        result = subprocess.run(
            [str(CHECKOV if CHECKOV.exists() else shutil.which("checkov")), "-d", workdir, "--framework", "terraform_json",
             "--skip-download", "--quiet", "--compact", "-o", "json"],
            capture_output=True, text=True,
        )
    if not result.stdout.strip():
        raise SystemExit(f"checkov produced no report for {stack_dir.name}:\n{result.stderr[-3000:]}")
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    outcome = StackResult(stack_dir.name)
    if "results" not in report:  # nothing scanned is a failure of the scan, not a pass
        raise SystemExit(f"checkov scanned no resources in {stack_dir.name}: {report}")
    outcome.passed = report["summary"]["passed"]
    for check in report["results"]["failed_checks"]:
        reason = skip_reason(document, check["resource"], check["check_id"])
        entry = (check["check_id"], check["resource"], reason or check["check_name"])
        (outcome.skipped if reason else outcome.unexplained).append(entry)
    return outcome


def render_doc(results: list[StackResult]) -> str:
    lines = [
        "# Security scan (checkov)",
        "",
        "`make test` scans the synthesized stack of every environment (tests/infra/test_security_scan.py; on its own:",
        "`python -m tooling.security_scan --write-doc docs/security.md` after `make synth`)",
        "(checkov from the Pipfile, `--framework terraform_json --skip-download`, on a copy of `cdk.tf.json` without",
        "`terraform.required_version` and `locals`, which checkov 3.1 cannot parse). CI fails on any failed check that is not",
        "skipped inline: a skip is written next to its resource in the construct code",
        "(`patternwatch_infra.scan_skips.skip_check(resource, check_id, reason)`) and lands in the stack's `//`",
        "comment block under the resource's logical id, where the scan reads it.",
        "",
        "| stack | passed | failed (unexplained) | skipped inline |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.stack} | {r.passed} | {len(r.unexplained)} | {len(r.skipped)} |")
    lines += ["", "## Skips and their reasons", "", "| check | resources (all stacks) | reason |", "|---|---:|---|"]
    reasons: dict[tuple[str, str], int] = {}
    for r in results:
        for check_id, _resource, reason in r.skipped:
            reasons[(check_id, reason)] = reasons.get((check_id, reason), 0) + 1
    for (check_id, reason), count in sorted(reasons.items()):
        lines.append(f"| {check_id} | {count} | {reason} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks-dir", type=Path, default=PROJECT_ROOT / "cdktf.out" / "stacks")
    parser.add_argument("--write-doc", type=Path, help="write the counts and skip reasons as markdown")
    args = parser.parse_args(argv)
    stacks = sorted(p for p in args.stacks_dir.iterdir() if (p / "cdk.tf.json").exists())
    if not stacks:
        print(f"error: no synthesized stacks in {args.stacks_dir}; run `make synth` first", file=sys.stderr)
        return 1
    results = [scan_stack(stack) for stack in stacks]
    for r in results:
        print(f"checkov {r.stack}: {r.passed} passed, {len(r.unexplained)} failed, {len(r.skipped)} skipped inline")
        for check_id, resource, name in r.unexplained:
            print(f"  FAILED {check_id} {resource}: {name}")
    if args.write_doc:
        args.write_doc.write_text(render_doc(results))
    return 1 if any(r.unexplained for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
