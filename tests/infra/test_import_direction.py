"""Imports point one way: tooling, benchmarks and tests may use the product; the product never uses them.

The product is what ships: patternwatch_infra (synth) and lambda_src (the Lambda code). Every import
form counts: `import x`, `from x import y`, relative imports (resolved against the importing module),
imports inside functions, and importlib.import_module / __import__ with a literal name.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Source root -> the packages under it that ship.
PRODUCT_ROOTS = {PROJECT_ROOT: ("patternwatch_infra",), PROJECT_ROOT / "lambda_src": None}
FORBIDDEN = frozenset({"tooling", "benchmarks", "tests"})


def module_name(path: Path, source_root: Path) -> str:
    parts = list(path.relative_to(source_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in `source`, the module being `module`."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # `from .. import x` climbs level - 1 packages up; beyond the top it names a sibling top level.
                base = package.split(".") if package else []
                base = base[: max(0, len(base) - (node.level - 1))]
                target = ".".join([*base, node.module] if node.module else base)
                if not target:  # `from .. import tooling` at the top: each name is a top-level module
                    yield from ((node.lineno, alias.name) for alias in node.names)
                    continue
            else:
                target = node.module or ""
            yield node.lineno, target
            yield from ((node.lineno, f"{target}.{alias.name}") for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and _call_name(node.func) in ("import_module", "importlib.import_module", "__import__")
        ):
            yield node.lineno, node.args[0].value


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    return sorted(
        {
            f"line {line}: {name}"
            for line, name in imported_modules(source, module, is_package=is_package)
            if name.split(".")[0] in FORBIDDEN
        }
    )


def product_files() -> Iterator[tuple[Path, Path]]:
    for root, packages in PRODUCT_ROOTS.items():
        tops = [root / p for p in packages] if packages else [p for p in root.iterdir() if (p / "__init__.py").is_file()]
        for top in tops:
            for path in sorted(top.rglob("*.py")):
                yield path, root


def test_the_product_covers_infra_and_every_lambda_package():
    tops = {module_name(path, root).split(".")[0] for path, root in product_files()}
    assert {"patternwatch_infra", "pattern_engine", "patternwatch_shared", "kinesis_consumer", "power_tuning"} <= tops


@pytest.mark.parametrize(
    ("path", "root"), [pytest.param(path, root, id=str(path.relative_to(PROJECT_ROOT))) for path, root in product_files()]
)
def test_product_code_never_imports_tooling_benchmarks_or_tests(path, root):
    found = violations(path.read_text(), module_name(path, root), is_package=path.name == "__init__.py")
    assert not found, f"{path.relative_to(PROJECT_ROOT)} imports {', '.join(found)}"


@pytest.mark.parametrize(
    "source",
    [
        "import tooling",
        "import tooling.packaging as p",
        "from tooling import release",
        "from tooling.toolchain import terraform_env",
        "from benchmarks.bench_lambda_consumer import run_once",
        "import tests.infra.conftest",
        "def build():\n    from tooling import local_runner\n    return local_runner",
        "import importlib\nharness = importlib.import_module('tooling.lambda_harness')",
        "from importlib import import_module\nimport_module('tests')",
        "__import__('benchmarks')",
        "from ..tooling import packaging",
        "from .. import tooling",
    ],
)
def test_every_import_form_is_caught(source):
    assert violations(source, "patternwatch_infra.compute")


@pytest.mark.parametrize(
    "source",
    [
        "from .packaging import build_all",
        "from . import dashboard",
        "from patternwatch_shared.names.functions import PLATFORM_FUNCTIONS",
        "import testing_utils",
        "from .tooling_notes import x",
        "importlib.import_module(name)",
    ],
)
def test_allowed_imports_pass(source):
    assert not violations(source, "patternwatch_infra.compute")
