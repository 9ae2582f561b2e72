"""Security scan: checkov over every synthesized stack, once; fails on any unexplained finding or stale skip.

Every stack's cdk.tf.json is copied, without `terraform.required_version` and the `locals` block (checkov's
JSON parser crashes on both; names keep their `${local.name_suffix}` reference, which no check reads), into
a directory of its own under one temporary root, and checkov runs once over that root
(`--framework terraform_json --skip-download`); each finding is attributed to its stack by the file it is in.
A failed check counts as skipped only when the failing block has that check id with a reason, written next to
the resource in the construct code with `patternwatch_infra.scan_skips.skip_check` (checkov's JSON scanner
reads no skip comments of its own). A skip whose check no longer fails is stale: its reason describes
nothing, so it is reported too.

Usage: python -m tooling.security_scan [--stacks-dir cdktf.out/stacks] [--write-doc docs/security.md]
Exit code 1 when any failed check has no inline skip, or any inline skip is stale.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from patternwatch_infra.scan_skips import SKIP_KEY

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHECKOV = Path(sys.executable).with_name("checkov")
SCANNED_FILE = "main.tf.json"
# --write-doc replaces only what lies between these markers; the rest of the document is written by hand.
DOC_BEGIN = "<!-- security-scan:begin (python -m tooling.security_scan --write-doc docs/security.md) -->"
DOC_END = "<!-- security-scan:end -->"


@dataclass
class StackResult:
    stack: str
    passed: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (check, resource, reason)
    unexplained: list[tuple[str, str, str]] = field(default_factory=list)  # (check, resource, name)
    stale: list[tuple[str, str]] = field(default_factory=list)  # (check, logical id): skipped, but passes

    @property
    def clean(self) -> bool:
        return not self.unexplained and not self.stale


def skip_reason(document: dict, resource: str, check_id: str) -> str | None:
    """The inline skip for `check_id` on the block checkov names `aws_x.logical`, `resource.logical` or
    `data.logical` (it is not consistent about keeping the type; logical ids are unique in a stack)."""
    logical = resource.partition(".")[2]
    return _skips(document).get(logical, {}).get(check_id)


def _skips(document: dict) -> dict[str, dict[str, str]]:
    return document.get("//", {}).get(SKIP_KEY, {})


def scannable(document: dict) -> dict:
    """The stack as checkov can parse it."""
    scanned = json.loads(json.dumps(document))
    scanned.get("terraform", {}).pop("required_version", None)
    scanned.pop("locals", None)
    return scanned


def run_checkov(root: Path) -> dict:
    checkov = str(CHECKOV if CHECKOV.exists() else shutil.which("checkov"))
    result = subprocess.run(
        [checkov, "-d", str(root), "--framework", "terraform_json", "--skip-download", "--compact", "-o", "json"],
        capture_output=True, text=True,
    )
    if not result.stdout.strip():
        raise SystemExit(f"checkov produced no report:\n{result.stderr[-3000:]}")
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    if "results" not in report:  # nothing scanned is a failure of the scan, not a pass
        raise SystemExit(f"checkov scanned no resources: {report}")
    return report


def scan_stacks(stack_dirs: Sequence[Path], *, checkov: callable = run_checkov) -> list[StackResult]:
    """One checkov run over every stack; the results per stack, in the order given."""
    documents = {d.name: json.loads((d / "cdk.tf.json").read_text()) for d in stack_dirs}
    with tempfile.TemporaryDirectory() as workdir:
        for name, document in documents.items():
            (Path(workdir) / name).mkdir()
            (Path(workdir) / name / SCANNED_FILE).write_text(json.dumps(scannable(document)))
        report = checkov(Path(workdir))
    results = {name: StackResult(name) for name in documents}

    def stack_of(check: dict) -> str:
        # checkov names the file relative to the scanned root: /<stack>/main.tf.json
        match = re.fullmatch(rf"/?([^/]+)/{re.escape(SCANNED_FILE)}", check["file_path"])
        if not match or match.group(1) not in results:
            raise SystemExit(f"checkov reported a file outside the scanned stacks: {check['file_path']}")
        return match.group(1)

    for check in report["results"]["passed_checks"]:
        outcome = results[stack_of(check)]
        outcome.passed += 1
    failed: dict[str, set[tuple[str, str]]] = {name: set() for name in documents}
    for check in report["results"]["failed_checks"]:
        name = stack_of(check)
        reason = skip_reason(documents[name], check["resource"], check["check_id"])
        entry = (check["check_id"], check["resource"], reason or check["check_name"])
        (results[name].skipped if reason else results[name].unexplained).append(entry)
        failed[name].add((check["resource"].partition(".")[2], check["check_id"]))
    for name, document in documents.items():
        results[name].stale = sorted(
            (check_id, logical) for logical, checks in _skips(document).items() for check_id in checks if (logical, check_id) not in failed[name]
        )
    return [results[d.name] for d in stack_dirs]


def render_doc(results: list[StackResult]) -> str:
    """The generated section of docs/security.md: counts per stack and every skip with its reason."""
    lines = [
        DOC_BEGIN,
        "",
        "| stack | passed | failed (unexplained) | skipped inline | stale skips |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.stack} | {r.passed} | {len(r.unexplained)} | {len(r.skipped)} | {len(r.stale)} |")
    lines += ["", "### Skips and their reasons", "", "| check | resources (all stacks) | reason |", "|---|---:|---|"]
    reasons: dict[tuple[str, str], int] = {}
    for r in results:
        for check_id, _resource, reason in r.skipped:
            reasons[(check_id, reason)] = reasons.get((check_id, reason), 0) + 1
    for (check_id, reason), count in sorted(reasons.items()):
        lines.append(f"| {check_id} | {count} | {reason} |")
    return "\n".join([*lines, "", DOC_END]) + "\n"


def write_doc(path: Path, results: list[StackResult]) -> None:
    """Replace the generated section of `path` (between the markers), keeping everything around it."""
    text = path.read_text() if path.exists() else ""
    section = render_doc(results)
    if DOC_BEGIN in text and DOC_END in text:
        before, _, rest = text.partition(DOC_BEGIN)
        _, _, after = rest.partition(DOC_END)
        text = before + section.rstrip("\n") + after
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks-dir", type=Path, default=PROJECT_ROOT / "cdktf.out" / "stacks")
    parser.add_argument("--write-doc", type=Path, help="replace the generated counts and skip reasons in this markdown file")
    args = parser.parse_args(argv)
    stacks = sorted(p for p in args.stacks_dir.iterdir() if (p / "cdk.tf.json").exists()) if args.stacks_dir.is_dir() else []
    if not stacks:
        print(f"error: no synthesized stacks in {args.stacks_dir}; run `make synth` first", file=sys.stderr)
        return 1
    results = scan_stacks(stacks)
    for r in results:
        print(f"checkov {r.stack}: {r.passed} passed, {len(r.unexplained)} failed, {len(r.skipped)} skipped inline, {len(r.stale)} stale skips")
        for check_id, resource, name in r.unexplained:
            print(f"  FAILED {check_id} {resource}: {name}")
        for check_id, logical in r.stale:
            print(f"  STALE SKIP {check_id} on {logical}: the check passes; remove the skip")
    if args.write_doc:
        write_doc(args.write_doc, results)
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
