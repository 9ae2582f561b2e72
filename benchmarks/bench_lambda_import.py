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
boto3 / requests were loaded (the first three load lazily, on first use; requests not at all).
Then the per-module breakdown in the "lambda" environment: for each handler, the distributions
(top-level packages) by the sum of their modules' own ("self") import time, and the handler's
heaviest imports by cumulative time, medians over the same runs.

Then the chart renderer's cold-start cost, paid by the alert processor on its first alert: in a fresh
interpreter ("lambda" environment, one BLAS/OpenMP thread as Lambda's small instances run), after the
handler module is imported, the import of matplotlib, pandas and mplfinance, the first evidence
`build_evidence` (chart of a 70-bar window and its JSON) and a second one (warm). Twice: with an empty
MPLCONFIGDIR (a new execution environment, matplotlib builds its font cache in /tmp) and with the cache
left by an earlier run (a later cold start on a reused /tmp does not happen in Lambda; shown for scale).

    .venv/bin/python benchmarks/bench_lambda_import.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
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
LAZY = ("numpy", "pattern_engine.engine", "boto3", "requests")
TARGET_MS = 250.0
BREAKDOWN_ROWS = 8
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


class ImportTimes:
    """One `-X importtime` run of `module`: microseconds of each module it imported, own and cumulative.

    Lines come in the order imports complete, nested ones indented under their importer; the module's
    subtree is the lines between the previous top-level line (interpreter start-up: site, ...) and its own.
    """

    def __init__(self, stderr: str, module: str):
        lines = []
        for line in stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            own, cumulative, name = line[len("import time:") :].split("|")
            if own.strip().isdigit():  # not the header line
                depth = (len(name) - len(name.lstrip())) // 2
                lines.append((name.strip(), int(own), int(cumulative), depth))
        names = [name for name, *_ in lines]
        if module not in names:
            raise RuntimeError(f"{module} not found in -X importtime output")
        end = names.index(module)
        start = max((i + 1 for i, (*_, depth) in enumerate(lines[:end]) if depth == 0), default=0)
        self.total_us = lines[end][2]
        self.own = {name: own for name, own, _, _ in lines[start:end]}
        self.cumulative = {name: cumulative for name, _, cumulative, _ in lines[start:end]}

    def by_package(self) -> dict[str, int]:
        packages: dict[str, int] = {}
        for name, own in self.own.items():
            packages[name.split(".")[0]] = packages.get(name.split(".")[0], 0) + own
        return packages


BREAKDOWNS: dict[str, list[ImportTimes]] = {}


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
    times = ImportTimes(completed.stderr, module)
    if environment == "lambda":
        BREAKDOWNS.setdefault(module, []).append(times)
    imported = {prefix for name in times.own for prefix in (name, name.split(".")[0])}
    cpu_ms = float(completed.stdout.strip()) * 1000.0
    return times.total_us / 1000.0, cpu_ms, imported & set(LAZY)


def median_ms(runs: list[dict[str, int]], name: str) -> float:
    return statistics.median(run.get(name, 0) for run in runs) / 1000.0


def breakdown_table() -> None:
    print(f"\nper-module breakdown, \"lambda\" environment, -X importtime wall ms, median of the runs above")
    print("| handler module | distributions by own import time (ms) | heaviest imports by cumulative time (ms) |")
    print("|---|---|---|")
    for module, runs in BREAKDOWNS.items():
        packages = [run.by_package() for run in runs]
        names = {name for run in packages for name in run}
        top_packages = sorted(names, key=lambda name: -median_ms(packages, name))[:BREAKDOWN_ROWS]
        cumulative = [run.cumulative for run in runs]
        children = {name for run in cumulative for name in run}
        top_imports = sorted(children, key=lambda name: -median_ms(cumulative, name))[:BREAKDOWN_ROWS]
        print(
            f"| {module} | {', '.join(f'{name} {median_ms(packages, name):.0f}' for name in top_packages)} | "
            f"{', '.join(f'{name} {median_ms(cumulative, name):.0f}' for name in top_imports)} |"
        )


BLAS_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Run in the child: the handler module, then the renderer's libraries, then two evidence builds.
RENDER_PROBE = """
import json, sys, time
def clock(): return time.perf_counter(), time.process_time()
def since(start): now = clock(); return [(now[0] - start[0]) * 1000, (now[1] - start[1]) * 1000]
alert, rows, extrema = json.load(open(sys.argv[1]))
t = clock(); import alert_processor.handler; handler = since(t)
from patternwatch_shared.alert_evidence import build_evidence
from patternwatch_shared.models import AlertMessage
from pattern_charts import render
message = AlertMessage.model_validate(alert)
t = clock(); render._libraries(); libraries = since(t)
t = clock(); first = build_evidence(message, bars=rows, extrema=extrema); first_ms = since(t)
t = clock(); build_evidence(message, bars=rows, extrema=extrema); second_ms = since(t)
print(json.dumps({"handler": handler, "libraries": libraries, "first": first_ms, "second": second_ms, "png": len(first.chart_png)}))
"""


def evidence_input(path: Path) -> None:
    """The alert processor's input for a planted head-and-shoulders: the alert, its 70-bar window, extrema."""
    from pattern_engine import detect
    from pattern_engine.synthetic import planted_bar_records

    from patternwatch_shared.alert_evidence import CONTEXT_BARS

    bars = planted_bar_records("BENCH", "head-and-shoulders", seed=7, start=1_609_718_400, scale=100)
    columns = {k: [b[k] for b in bars] for k in ("timestamp", "open", "high", "low", "close", "volume")}
    match = max(detect(columns, patterns=["head-and-shoulders"]), key=lambda m: m.confidence)
    rows = [{k: b[k] for k in columns} for b in bars[max(0, match.start - CONTEXT_BARS) : match.end + 1]]
    alert = {
        "alertId": "BENCH#bench", "source": "stream", "severity": "CRITICAL", "detectedAt": "2026-01-01T00:00:00.000000Z",
        "confidence": match.confidence, "symbol": "BENCH", "pattern": match.pattern,
        "startTimestamp": bars[match.start]["timestamp"], "endTimestamp": bars[match.end]["timestamp"],
    }
    path.write_text(json.dumps([alert, rows, [[bars[i]["timestamp"], price] for i, price in match.extrema]]))


def measure_renderer(input_path: Path, config_dir: Path) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "LAMBDA_", "POWERTOOLS_", "MPL"))}
    env.update(ENVIRONMENTS["lambda"], **BLAS_THREADS, PYTHONPATH=str(LAMBDA_SRC), MPLCONFIGDIR=str(config_dir))
    completed = subprocess.run([sys.executable, "-c", RENDER_PROBE, str(input_path)], env=env, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def renderer_table(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        input_path = Path(scratch) / "evidence-input.json"
        evidence_input(input_path)
        measure_renderer(input_path, Path(scratch) / "warm-up")  # .pyc files exist, as in the layer
        runs: dict[str, list[dict]] = {"empty font cache (new environment)": [], "font cache present": []}
        for index in range(repeats):
            runs["empty font cache (new environment)"].append(measure_renderer(input_path, Path(scratch) / f"fresh-{index}"))
            runs["font cache present"].append(measure_renderer(input_path, Path(scratch) / "warm-up"))
    print(f"\nchart renderer in the alert processor, median of {repeats} fresh interpreters, one BLAS thread "
          f"(PNG {runs['font cache present'][0]['png'] / 1024:.0f} KiB)")
    print("| MPLCONFIGDIR | step | wall ms | CPU ms |")
    print("|---|---|---:|---:|")
    for label, results in runs.items():
        for step, name in (("handler", "import alert_processor.handler"), ("libraries", "import matplotlib, pandas, mplfinance"),
                           ("first", "first build_evidence (chart + JSON)"), ("second", "second build_evidence (warm)")):
            wall = statistics.median(r[step][0] for r in results)
            cpu = statistics.median(r[step][1] for r in results)
            print(f"| {label} | {name} | {wall:.0f} | {cpu:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-renderer", action="store_true", help="only the handler imports, not the chart renderer")
    args = parser.parse_args()
    modules = [spec.handler.rsplit(".", 1)[0] for spec in PLATFORM_FUNCTIONS]
    for module in modules:  # warm-up so .pyc files exist, as they do in the deployment package
        measure(module, "local")
    BREAKDOWNS.clear()
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
    breakdown_table()
    if not args.skip_renderer:
        renderer_table(args.repeats)


if __name__ == "__main__":
    main()
