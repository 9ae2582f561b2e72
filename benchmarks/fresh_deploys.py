"""Fresh deploys of `local`, one after another: each on a new emulator, `make down` after each.

    PATTERNWATCH_EMULATOR_PORT=5073 .venv/bin/python benchmarks/fresh_deploys.py [--runs 10] [--json out.json]
        [--drop-create-function 3]

Each run is exactly what `make demo` does before it streams anything (tooling.local_platform.deploy: emulator,
synth, init, apply, outputs), then what `make down` does (tooling.local_platform.destroy: emulator stopped,
state removed; until 2026-12-02 it ran a terraform destroy first), so the next run starts from nothing. It stops at the first failure and
exits 1. For every run it reports the time of each step, and from the emulator's request log how many
CreateFunction requests arrived and how they were answered: a repeated create (the SDK sending it again
after a dropped connection) shows as more requests than functions, all answered 201 (docs/reliability.md).
`--drop-create-function N` makes that happen on purpose: the emulator serves every other CreateFunction call,
N times, and then closes the connection without an answer (tooling/local_aws/faults.py), as it did in the
1-in-4 loop; the deploy must still be green, without the provider's 5-minute retry.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from tooling import emulator, local_platform
from tooling.local_aws import admin

CREATE_FUNCTION = re.compile(r'"POST /2015-03-31/functions/? HTTP/1\.1" (\d{3})')
# How the emulator names CreateFunction (a REST call: method and path, tooling/local_aws/call_counts.py).
CREATE_FUNCTION_OPERATION = "POST /2015-03-31/functions"


def create_function_answers(log_offset: int) -> list[str]:
    """Status codes of the CreateFunction requests the emulator logged after `log_offset` bytes."""
    if not emulator.LOG_FILE.exists():
        return []
    with emulator.LOG_FILE.open("rb") as log:
        log.seek(log_offset)
        text = log.read().decode(errors="replace")
    return CREATE_FUNCTION.findall(text)


def one_run(number: int, drop_create_function: int = 0) -> dict:
    log_offset = emulator.LOG_FILE.stat().st_size if emulator.LOG_FILE.exists() else 0
    timings: dict[str, float] = {}
    started = time.monotonic()
    result: dict = {"run": number}
    if drop_create_function:
        emulator.start()  # the deploy reuses it, with the fault set
        # Every other call: a dropped create's retry (the next call) is answered, as when a drop is rare.
        admin.set_faults(emulator.endpoint(), [{"action": "drop-after", "service": "lambda", "operations": [CREATE_FUNCTION_OPERATION],
                                                "every": 2, "limit": drop_create_function}])
    try:
        outputs = local_platform.deploy(timings=timings)
        result["deploy_seconds"] = round(time.monotonic() - started, 1)
        result["outputs"] = len(outputs)
        result["ok"] = True
    except SystemExit as failure:
        result.update(ok=False, deploy_seconds=round(time.monotonic() - started, 1), error=str(failure)[-2000:])
    result["steps"] = {step: round(seconds, 1) for step, seconds in timings.items()}
    if drop_create_function:
        result["dropped_create_function_answers"] = admin.clear_faults(emulator.endpoint())[0]["fired"]
    answers = create_function_answers(log_offset)
    result["create_function_requests"] = len(answers)
    result["create_function_answers"] = {code: answers.count(code) for code in sorted(set(answers))}
    down = time.monotonic()
    try:
        local_platform.destroy()
        result["down_ok"] = True
    except SystemExit as failure:
        result.update(down_ok=False, down_error=str(failure)[-2000:])
    result["down_seconds"] = round(time.monotonic() - down, 1)
    return result


def table(results: list[dict]) -> str:
    lines = ["| run | result | deploy (s) | synth | init | apply | CreateFunction requests (answers) | `make down` (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        answers = ", ".join(f"{count}× {code}" for code, count in r["create_function_answers"].items())
        lines.append(f"| {r['run']} | {'green' if r['ok'] and r['down_ok'] else 'FAILED'} | {r['deploy_seconds']} | "
                     f"{r['steps'].get('synth', '-')} | {r['steps'].get('init', '-')} | {r['steps'].get('apply', '-')} | "
                     f"{r['create_function_requests']} ({answers}) | {r['down_seconds']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write every run's result here too")
    parser.add_argument("--drop-create-function", type=int, default=0, metavar="N",
                        help="lose the emulator's answer to the first N CreateFunction calls of each run")
    args = parser.parse_args(argv)
    # Start from nothing: whatever an earlier run left (state, emulator) goes, as `make down` would do it.
    local_platform.destroy()
    results: list[dict] = []
    for number in range(1, args.runs + 1):
        result = one_run(number, args.drop_create_function)
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        if not (result["ok"] and result["down_ok"]):
            break
    print(table(results))
    deploys = [r["deploy_seconds"] for r in results if r["ok"]]
    if deploys:
        print(f"green: {len(deploys)}/{len(results)}; deploy seconds min {min(deploys)}, "
              f"median {sorted(deploys)[len(deploys) // 2]}, max {max(deploys)}")
    return 0 if len(deploys) == len(results) == args.runs and all(r["down_ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
