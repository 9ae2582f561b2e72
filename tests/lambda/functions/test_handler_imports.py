"""What each handler module loads on a cold start: only what its path needs (issue 14 §5).

Each handler is imported in a fresh interpreter with the variables the Lambda runtime sets (tracing on,
as deployed) and lambda_src on the path, as benchmarks/bench_lambda_import.py measures it. The test
checks *which* modules are loaded, never how long they take.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from patternwatch_shared.names.functions import PLATFORM_FUNCTIONS

LAMBDA_SRC = Path(__file__).resolve().parents[3] / "lambda_src"
LAMBDA_ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_NAME": "import-test",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "AWS_REGION": "us-east-1",
}
# Loaded on first use (numpy and the engine with the first detection, boto3 with the first client) or
# never: the Tracer patches botocore only, and Powertools' parser models are not used.
NEVER_AT_IMPORT = (
    "numpy", "pattern_engine.engine", "boto3", "matplotlib", "pandas", "requests", "sqlite3",
    "aws_lambda_powertools.utilities.parser", "aws_lambda_powertools.utilities.parser.models",
)
PROBE = """
import json, sys
import {module}
from pydantic import BaseModel
from patternwatch_shared import models
built = sorted(
    name for name, value in vars(models).items()
    if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == models.__name__
    and value.__pydantic_complete__ and type(value.__pydantic_validator__).__name__ == "SchemaValidator"
)
print(json.dumps({{"modules": sorted(sys.modules), "built": built}}))
"""


def _probe_environment(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "LAMBDA_", "POWERTOOLS_"))}
    env.update(LAMBDA_ENVIRONMENT, LAMBDA_TASK_ROOT=str(tmp_path))
    # -S: no site-packages .pth hooks (the editable install), as in Lambda; the packages come from the venv.
    site_packages = [path for path in sys.path if path.endswith("site-packages")]
    env["PYTHONPATH"] = os.pathsep.join([str(LAMBDA_SRC), *site_packages])
    return env


@pytest.fixture(scope="module")
def cold_starts(tmp_path_factory) -> dict[str, dict]:
    """What importing each handler loads, by function: one fresh interpreter per handler, all started at once."""
    env = _probe_environment(tmp_path_factory.mktemp("task-root"))
    probes = {
        spec.base_name: subprocess.Popen(
            [sys.executable, "-S", "-c", PROBE.format(module=spec.handler.rsplit(".", 1)[0])],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for spec in PLATFORM_FUNCTIONS
    }
    loaded = {}
    for name, probe in probes.items():
        stdout, stderr = probe.communicate()
        assert probe.returncode == 0, f"importing {name}'s handler failed:\n{stderr}"
        loaded[name] = json.loads(stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("spec", PLATFORM_FUNCTIONS, ids=lambda spec: spec.base_name)
def test_a_handler_imports_nothing_its_path_does_not_need(spec, cold_starts):
    assert sorted(set(NEVER_AT_IMPORT) & set(cold_starts[spec.base_name]["modules"])) == []


def test_each_handler_builds_only_the_models_it_validates(cold_starts):
    built = {name: loaded["built"] for name, loaded in cold_starts.items()}
    assert "Bar" in built["KinesisConsumer"] and "PatternDetectedDetail" in built["KinesisConsumer"]
    for name in ("AlertProcessor", "ThresholdChecker", "ApprovalProcessor", "ApprovalExpiry"):
        assert "AlertMessage" in built[name], name
        assert "Bar" not in built[name] and "PatternsRequest" not in built[name], name
    assert "PatternsRequest" in built["PatternDetector"]
    assert "AlertMessage" not in built["KinesisConsumer"]
