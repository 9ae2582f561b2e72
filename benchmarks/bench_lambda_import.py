"""Import time of each Lambda handler module, measured with `python -X importtime`.

Each measurement is a fresh interpreter importing `<folder>.handler` with lambda_src on the path,
as the Lambda runtime does on a cold start, in two environments:

- "lambda": the variables the Lambda runtime sets (LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, ...),
  tracing on. This is the cold start that counts: the X-Ray SDK uses its local sampler there, and
  Powertools Tracer patches boto3/botocore at import.
- "local": outside Lambda with POWERTOOLS_TRACE_DISABLED=true, as in the tests. Here the X-Ray SDK
  builds a centralized sampler with two botocore clients at import, which costs ~100 ms more.

Reported per handler: the module's cumulative import time (the `-X importtime` "cumulative" column,
wall clock) and the process CPU time of the same import (less sensitive to other load on this
shared machine), medians of --repeats fresh interpreters; and whether numpy / pattern_engine.engine /
boto3 were loaded (they load lazily, on first use).

    .venv/bin/python benchmarks/bench_lambda_import.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from patternwatch_shared.names.functions import PLATFORM_FUNCTIONS

# The child interpreters find the handlers on sys.path, as the Lambda runtime does (/var/task, /opt/python),
# rather than through the project's editable install.
LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"

# pattern_engine.engine, not the package: the request models import the numpy-free pattern_engine.limits.
LAZY = ("numpy", "pattern_engine.engine", "boto3")
TARGET_MS = 300.0
ENVIRONMENTS = {
    "lambda": {
        "LAMBDA_TASK_ROOT": tempfile.gettempdir(),
        "AWS_LAMBDA_FUNCTION_NAME": "import-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": "us-east-1",
    },
    "local": {"POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"},
}


def measure(module: str, environment: str) -> tuple[float, float, set[str]]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "LAMBDA_", "POWERTOOLS_"))
    }
    env.update(ENVIRONMENTS[environment])
    env["PYTHONPATH"] = str(LAMBDA_SRC)
    completed = subprocess.run(
        [
            sys.executable, "-X", "importtime", "-c",
            f"import time; started = time.process_time(); import {module}; print(time.process_time() - started)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cumulative_us = None
    imported = set()
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [part.strip() for part in line[len("import time:") :].split("|")]
        if not parts[1].isdigit():
            continue  # header line
        name = parts[2]
        imported.update({name, name.split(".")[0]})
        if name == module:
            cumulative_us = int(parts[1])
    if cumulative_us is None:
        raise RuntimeError(f"{module} not found in -X importtime output")
    cpu_ms = float(completed.stdout.strip()) * 1000.0
    return cumulative_us / 1000.0, cpu_ms, imported & set(LAZY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    modules = [spec.handler.rsplit(".", 1)[0] for spec in PLATFORM_FUNCTIONS]
    for module in modules:  # warm-up so .pyc files exist, as they do in the deployment package
        measure(module, "local")
    print(f"python {sys.version.split()[0]}, median of {args.repeats} fresh interpreters, target <= {TARGET_MS:.0f} ms")
    print("| handler module | lambda: -X importtime ms | lambda: CPU ms | local: -X importtime ms | local: CPU ms | lazy modules loaded |")
    print("|---|---:|---:|---:|---:|---|")
    for module in modules:
        row, loaded = [], set()
        for environment in ("lambda", "local"):
            wall, cpu = [], []
            for _ in range(args.repeats):
                wall_ms, cpu_ms, lazy = measure(module, environment)
                wall.append(wall_ms)
                cpu.append(cpu_ms)
                loaded |= lazy
            row += [statistics.median(wall), statistics.median(cpu)]
        cells = " | ".join(f"{value:.1f}" for value in row)
        print(f"| {module} | {cells} | {', '.join(sorted(loaded)) or 'none'} |")


if __name__ == "__main__":
    main()
