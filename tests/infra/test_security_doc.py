"""docs/security.md's threat model names the test that proves each control: every one of them must exist."""
from __future__ import annotations

import ast
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECURITY_DOC = PROJECT_ROOT / "docs" / "security.md"
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def threat_model_rows() -> list[list[str]]:
    text = SECURITY_DOC.read_text()
    table = text.partition("## Threat model")[2].partition("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| asset") and not line.startswith("|---")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_every_threat_has_an_asset_a_control_and_a_test_that_exists():
    rows = threat_model_rows()
    assert len(rows) >= 20
    for asset, threat, control, test in rows:
        assert asset and threat and control, test
        match = TEST_REFERENCE.fullmatch(test)
        assert match, f"{asset}: {test!r} is not `tests/<file>.py::test_<name>`"
        path = PROJECT_ROOT / match.group(1)
        assert path.is_file(), f"{asset}: {path} does not exist"
        functions = {node.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)}
        assert match.group(2) in functions, f"{asset}: {match.group(2)} is not a test in {match.group(1)}"
