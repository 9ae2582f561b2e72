"""The whole platform on this machine: emulator up, `local` synthesized, applied, outputs written.

Used by `make demo` (tooling/demo.py), `make down`, and the integration tests' session fixture, so all
three deploy exactly the same way.

The power tuner is tooling with a stack of its own (`patternwatch-local-power-tuner`, its own state file
beside the platform's): `deploy()` never applies it. Whoever needs it applies it after the platform with
`deploy_tuner()` (the power-tuning integration test does) and removes it with `destroy_tuner()` before the
platform, because its data sources read the platform's functions.

Workspaces: `deploy(workspace="it2")` applies an isolated copy of `local` beside the default one (every
name ends in `-local-it2`). The local backend keeps the default workspace's state in
terraform.patternwatch-local.tfstate and every other workspace's under terraform.patternwatch-local.tfstate.d/
in the project root; `destroy_workspace()` removes one. `destroy()` (`make down`) stops the emulator, which
takes every workspace with it, and removes all of these state files.
Every Terraform call names its workspace (TF_WORKSPACE), so a workspace left selected in the stack
directory never redirects one.

What an earlier run left never breaks the next one (docs/reliability.md): each deploy keeps a journal
(.local/deploy.json: its pid, terraform's pid, the emulator's pid, `applying` until the apply succeeded).
The next deploy reads it first. A deploy that died mid-apply left a half-applied platform on the emulator
that no state fully describes: the next deploy says so and starts over on a fresh emulator (what
`make down` does). A deploy still running, or its terraform still applying, stops the next one at once
with what to do. State written against an emulator that has since been restarted is dropped.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

from patternwatch_infra.config import load_environment
from patternwatch_infra.workspaces import DEFAULT_WORKSPACE

from . import emulator
from .stack_outputs import parse_outputs, workspace_env
from .toolchain import terraform_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENT = "local"
STACK_DIR = PROJECT_ROOT / "cdktf.out" / "stacks" / f"patternwatch-{ENVIRONMENT}"
TUNER_STACK_DIR = PROJECT_ROOT / "cdktf.out" / "stacks" / f"patternwatch-{ENVIRONMENT}-power-tuner"
# Existing pipelines for this platform read their names and ARNs from this file; keep the path.
FLAT_OUTPUTS = PROJECT_ROOT / "cfn-outputs" / "flat-outputs.json"
# The local backend's files (stack.py): the default workspace's state, and a folder with one per other workspace.
STATE_FILE = PROJECT_ROOT / f"terraform.patternwatch-{ENVIRONMENT}.tfstate"
WORKSPACE_STATES = PROJECT_ROOT / f"{STATE_FILE.name}.d"
TUNER_STATE_FILE = PROJECT_ROOT / f"terraform.{TUNER_STACK_DIR.name}.tfstate"
# moto's development server sometimes drops a connection under load; a second apply picks up from the state
# (a resource created whose answer was lost is answered again by the emulator: moto_extensions.py). The last
# is the AWS SDK's message when every attempt of one request lost its connection.
TRANSIENT_FAILURES = ("use of closed network connection", "connection reset by peer", "unexpected EOF", "request send failed")
_DONE = re.compile(r"^(\S+): (Creation|Modifications|Destruction) complete after (\S+)")
JOURNAL = emulator.STATE_DIR / "deploy.json"


def say(message: str) -> None:
    print(message, flush=True)


def synth() -> float:
    """Synthesize only the local stack (main.py, as `cdktf synth` runs it), unless its inputs are unchanged.

    A synth costs 15-70 s (jsii starts Node, the packages are zipped), most of a second demo's time. The
    stack is a pure function of SYNTH_INPUTS and the PATTERNWATCH_* variables, so when their hash and the
    hash of the synthesized JSON both match what the last synth recorded, and its assets are all there, the
    output is what a new synth would write and it is kept.
    """
    started = time.monotonic()
    inputs = synth_inputs_digest()
    if _synthesized_for(inputs):
        say("synth: patternwatch-local is up to date (inputs unchanged since the last synth)")
        return time.monotonic() - started
    say("synth: patternwatch-local")
    env = {**terraform_env(), "PATTERNWATCH_ENVIRONMENTS": ENVIRONMENT}
    result = subprocess.run([sys.executable, "main.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        SYNTH_STAMP.unlink(missing_ok=True)
        raise SystemExit(f"error: synth failed:\n{result.stderr[-4000:]}")
    SYNTH_STAMP.write_text(json.dumps({"inputs": inputs, "stacks": _stack_digests()}, indent=1) + "\n")
    return time.monotonic() - started


# Everything the local stack's synthesized JSON and assets are made from (with the PATTERNWATCH_* variables).
SYNTH_INPUTS = ("main.py", "cdktf.json", "Pipfile.lock", "package-lock.json", "envs", "patternwatch_infra", "lambda_src")
SYNTH_STAMP = PROJECT_ROOT / "cdktf.out" / "patternwatch-local.synth-inputs.json"
_ASSET_PATH = re.compile(r'"(assets/[^"]+)"')
_NOT_INPUTS = ("__pycache__", ".pytest_cache", ".mypy_cache")


def synth_inputs_digest() -> str:
    """SHA-256 over every input file's path and bytes and the PATTERNWATCH_* environment variables."""
    digest = hashlib.sha256()
    for name, value in sorted(os.environ.items()):
        if name.startswith("PATTERNWATCH_"):
            digest.update(f"{name}={value}\0".encode())
    for entry in SYNTH_INPUTS:
        path = PROJECT_ROOT / entry
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            relative = file.relative_to(PROJECT_ROOT)
            if any(part in _NOT_INPUTS for part in relative.parts) or file.suffix in (".pyc", ".pyo"):
                continue
            digest.update(f"{relative}\0".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _stack_digests() -> dict[str, str]:
    """SHA-256 of each synthesized `local` stack's JSON (the platform's, and any other stack of `local`)."""
    return {path.parent.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(STACK_DIR.parent.glob(f"{STACK_DIR.name}*/cdk.tf.json"))}


def _synthesized_for(inputs: str) -> bool:
    """The last synth recorded these inputs, its stacks' JSON is unchanged since, and every asset they name exists."""
    try:
        stamp = json.loads(SYNTH_STAMP.read_text())
    except (OSError, ValueError):
        return False
    stacks = _stack_digests()
    if stamp.get("inputs") != inputs or stamp.get("stacks") != stacks or STACK_DIR.name not in stacks:
        return False
    return all((STACK_DIR.parent / name / asset).is_file()
               for name in stacks for asset in set(_ASSET_PATH.findall((STACK_DIR.parent / name / "cdk.tf.json").read_text())))


def terraform(
    *args: str, progress: bool = False, workspace: str = DEFAULT_WORKSPACE, stack_dir: Path = STACK_DIR
) -> subprocess.CompletedProcess:
    """Run terraform in a local stack's directory (the platform's unless told) and `workspace`; with progress,
    echo each resource as it finishes."""
    command = ["terraform", *args]
    env = workspace_env(workspace)
    if not progress:
        return subprocess.run(command, cwd=stack_dir, env=env, capture_output=True, text=True)
    lines: list[str] = []
    done = 0
    started = time.monotonic()
    with subprocess.Popen(command, cwd=stack_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        if args[0] == "apply":
            _update_journal(terraform_pid=process.pid)
        for line in process.stdout:
            lines.append(line)
            match = _DONE.match(line.strip())
            if match:
                done += 1
                # When each resource finished, since the command started: the apply's critical path at a glance.
                say(f"  [{done:3d}] {time.monotonic() - started:6.1f} s  {match.group(2).lower():<13} {match.group(1)} ({match.group(3)})")
            elif line.startswith(("Apply complete", "Destroy complete", "Error", "│ Error")):
                say(f"  {line.rstrip()}")
    output = "".join(lines)
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def flat_outputs(workspace: str = DEFAULT_WORKSPACE, stack_dir: Path = STACK_DIR) -> dict[str, object]:
    result = terraform("output", "-json", workspace=workspace, stack_dir=stack_dir)
    if result.returncode != 0:
        raise SystemExit(f"error: terraform output failed:\n{result.stderr}")
    return parse_outputs(result.stdout, source=str(stack_dir))


def deploy(*, workspace: str = DEFAULT_WORKSPACE, timings: dict[str, float] | None = None, reapply: bool = False) -> dict[str, object]:
    """Emulator, synth, init, apply, outputs; idempotent (a second run applies no changes).

    The default workspace's apply is skipped when the deployment is known to be current (`is_current`): the same
    emulator still holds what the last apply of the same synthesized stack left, and the state is unchanged since.
    `reapply` applies anyway (Terraform then also finds drift made outside it).
    The default workspace's outputs also go to cfn-outputs/flat-outputs.json; another workspace's are returned.
    """
    timings = timings if timings is not None else {}
    step = time.monotonic()
    recover_from_earlier_runs()
    if emulator.start():
        # A new emulator starts empty: state left from an earlier one describes nothing that exists.
        _remove_state()
    timings["emulator"] = time.monotonic() - step

    timings["synth"] = synth()

    if workspace == DEFAULT_WORKSPACE and not reapply and is_current():
        step = time.monotonic()
        say("terraform apply: skipped: this emulator holds the deployment of this exact stack, state unchanged since "
            "(make demo DEMO_ARGS=--reapply applies anyway)")
        outputs = flat_outputs()
        timings["outputs"] = time.monotonic() - step
    else:
        step = time.monotonic()
        say("terraform init (offline provider mirror where present)")
        # -reconfigure: the synthesized backend block is the truth; a .terraform/ left by an older synth (say,
        # before the local backend got its workspace_dir) must not stop the deploy with "Backend configuration changed".
        init = terraform("init", "-input=false", "-no-color", "-reconfigure")
        if init.returncode != 0:
            raise SystemExit(f"error: terraform init failed:\n{init.stdout}{init.stderr}")
        timings["init"] = time.monotonic() - step

        step = time.monotonic()
        _write_journal({"status": "applying", "pid": os.getpid(), "workspace": workspace, "started": time.time(),
                        "emulatorPid": (emulator.identity() or {}).get("pid")})
        outputs = apply(workspace)
        _update_journal(status="applied", terraform_pid=None)
        timings["apply"] = time.monotonic() - step
        if workspace == DEFAULT_WORKSPACE:
            _record_deployment()
    if workspace == DEFAULT_WORKSPACE:
        FLAT_OUTPUTS.parent.mkdir(exist_ok=True)
        FLAT_OUTPUTS.write_text(json.dumps(outputs, indent=2, sort_keys=True) + "\n")
        say(f"outputs: {len(outputs)} names and ARNs in {FLAT_OUTPUTS.relative_to(PROJECT_ROOT)}")
    return outputs


# What the last successful apply of the default workspace left: the emulator holding it, the stack, the state.
APPLIED_RECORD = emulator.STATE_DIR / f"{STACK_DIR.name}.applied.json"


def _deployment() -> dict[str, str | None]:
    from .local_aws import admin

    return {"emulator": admin.boot_id(emulator.endpoint()), "stack": _stack_digests().get(STACK_DIR.name),
            "state": hashlib.sha256(STATE_FILE.read_bytes()).hexdigest() if STATE_FILE.is_file() else None}


def _record_deployment() -> None:
    try:
        APPLIED_RECORD.write_text(json.dumps(_deployment(), indent=1) + "\n")
    except (OSError, ValueError, urllib.error.URLError):
        APPLIED_RECORD.unlink(missing_ok=True)  # an emulator without the boot endpoint: every deploy applies


def is_current() -> bool:
    """True when a new apply could only find what the last one left: the same emulator process (its boot id), the
    same synthesized stack, and the state that apply wrote. Drift made on the emulator outside Terraform since then
    is not looked for; nothing on `local` but Terraform changes what it manages (the release tooling's changes are
    ignored by the stack either way)."""
    try:
        recorded = json.loads(APPLIED_RECORD.read_text())
        return recorded == _deployment() and None not in recorded.values()
    except (OSError, ValueError, urllib.error.URLError):
        return False


def apply(workspace: str = DEFAULT_WORKSPACE, stack_dir: Path = STACK_DIR) -> dict[str, object]:
    """`terraform apply` of the synthesized stack in `workspace` (no new synth: a workspace only renames); its outputs."""
    say(f"terraform apply {stack_dir.name}" + ("" if workspace == DEFAULT_WORKSPACE else f" (workspace {workspace})"))
    result = terraform("apply", "-input=false", "-no-color", "-auto-approve", progress=True, workspace=workspace, stack_dir=stack_dir)
    if result.returncode != 0 and any(sign in result.stdout for sign in TRANSIENT_FAILURES):
        say("terraform apply: the emulator dropped a connection; applying once more")
        result = terraform("apply", "-input=false", "-no-color", "-auto-approve", progress=True, workspace=workspace, stack_dir=stack_dir)
    if result.returncode != 0:
        raise SystemExit(f"error: terraform apply failed:\n{result.stdout[-6000:]}")
    return flat_outputs(workspace, stack_dir)


def deploy_tuner(workspace: str = DEFAULT_WORKSPACE) -> dict[str, object]:
    """Apply the power tuner's stack beside a deployed `local` (same synth, same workspace); its outputs."""
    if not (TUNER_STACK_DIR / "cdk.tf.json").exists():
        raise SystemExit(f"error: {TUNER_STACK_DIR.name} is not synthesized: is power_tuner.enabled true in envs/{ENVIRONMENT}.json?")
    init = terraform("init", "-input=false", "-no-color", stack_dir=TUNER_STACK_DIR)
    if init.returncode != 0:
        raise SystemExit(f"error: terraform init of {TUNER_STACK_DIR.name} failed:\n{init.stdout}{init.stderr}")
    return apply(workspace, TUNER_STACK_DIR)


def destroy_tuner(workspace: str = DEFAULT_WORKSPACE) -> None:
    """Destroy the power tuner's stack in `workspace` (the platform's functions are left as they are)."""
    say(f"terraform destroy {TUNER_STACK_DIR.name}" + ("" if workspace == DEFAULT_WORKSPACE else f" (workspace {workspace})"))
    result = terraform("destroy", "-input=false", "-no-color", "-auto-approve", progress=True, workspace=workspace, stack_dir=TUNER_STACK_DIR)
    if result.returncode != 0:
        raise SystemExit(f"error: terraform destroy of {TUNER_STACK_DIR.name} failed:\n{result.stdout[-6000:]}")


def recover_from_earlier_runs() -> None:
    """Make what an earlier deploy of this checkout left harmless, or stop at once saying what to run."""
    journal = _read_journal()
    if journal is None:
        return
    found = emulator.identity()
    if journal.get("status") == "applying":
        since = time.strftime("%H:%M:%S", time.localtime(journal.get("started", 0)))
        if journal.get("pid") != os.getpid() and _alive(journal.get("pid")):
            raise SystemExit(f"error: another deploy of this checkout (pid {journal['pid']}, since {since}) is still running; "
                             f"wait for it, or stop it (kill {journal['pid']}) and run this again")
        if _alive(journal.get("terraformPid"), cwd=STACK_DIR):
            raise SystemExit(f"error: the terraform apply of an interrupted deploy (pid {journal['terraformPid']}) is still "
                             f"running in {STACK_DIR.relative_to(PROJECT_ROOT)}; wait until it ends (or kill "
                             f"{journal['terraformPid']}), then run this again")
        if emulator.is_ours(found):
            say(f"the deploy started at {since} (pid {journal.get('pid')}) did not finish: the emulator holds a half-applied "
                "platform that no state fully describes. Starting over on a fresh emulator, as `make down` would: "
                "the emulator is stopped (everything in it goes), and the local state files and "
                f"{FLAT_OUTPUTS.relative_to(PROJECT_ROOT)} are removed")
            emulator.stop()
        _forget_deployment()
    elif emulator.is_ours(found) and journal.get("emulatorPid") not in (None, found.get("pid")):
        say(f"the emulator was restarted since the last deploy (pid {journal['emulatorPid']} -> {found.get('pid')}): "
            "its state described resources that no longer exist; deploying from scratch")
        _forget_deployment()


def _alive(pid: object, cwd: Path | None = None) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    where = emulator.process_cwd(pid)
    return where is not None and (cwd is None or where == cwd.resolve())


def _read_journal() -> dict | None:
    try:
        return json.loads(JOURNAL.read_text())
    except (OSError, ValueError):
        return None


def _write_journal(entry: dict) -> None:
    JOURNAL.parent.mkdir(exist_ok=True)
    temporary = JOURNAL.with_suffix(".tmp")
    temporary.write_text(json.dumps(entry))
    temporary.replace(JOURNAL)


def _update_journal(*, status: str | None = None, terraform_pid: int | None | bool = False) -> None:
    entry = _read_journal()
    if entry is None:
        return
    if status is not None:
        entry["status"] = status
    if terraform_pid is not False:
        entry["terraformPid"] = terraform_pid
    _write_journal(entry)


def _forget_deployment() -> None:
    _remove_state()
    if FLAT_OUTPUTS.exists():
        FLAT_OUTPUTS.unlink()
    JOURNAL.unlink(missing_ok=True)


def plan_is_clean(workspace: str = DEFAULT_WORKSPACE) -> tuple[bool, str]:
    """`terraform plan -detailed-exitcode`: exit 0 means no changes (2 would mean drift)."""
    result = terraform("plan", "-input=false", "-no-color", "-detailed-exitcode", workspace=workspace)
    return result.returncode == 0, result.stdout + result.stderr


def workspaces() -> list[str]:
    """The workspaces other than `default` that have local state (the backend's workspace folder)."""
    folder = STATE_FILE.with_name(f"{STATE_FILE.name}.d")
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def destroy_workspace(workspace: str) -> None:
    """Destroy one workspace's copy of `local` and forget the workspace; the others are untouched."""
    say(f"terraform destroy (workspace {workspace})")
    result = terraform("destroy", "-input=false", "-no-color", "-auto-approve", progress=True, workspace=workspace)
    if result.returncode != 0:
        raise SystemExit(f"error: terraform destroy of workspace {workspace} failed:\n{result.stdout[-6000:]}")
    # `workspace delete` refuses the selected workspace, so it runs from `default`.
    deleted = terraform("workspace", "delete", "-no-color", workspace)
    if deleted.returncode != 0:
        raise SystemExit(f"error: terraform workspace delete {workspace} failed:\n{deleted.stdout}{deleted.stderr}")


def destroy() -> None:
    """`make down`: the `local` deployment in every workspace (platform and tuner), the emulator, and the state
    files that described them.

    The emulator keeps everything in memory, so stopping it removes every resource of every workspace at once;
    a `terraform destroy` of each first took 80–215 s to delete what the stop deletes anyway. Another
    checkout's emulator on this port is never touched (`emulator.stop` stops only ours); this checkout's state
    goes either way, since it can only describe an emulator of ours.
    """
    emulator.stop()
    _forget_deployment()


def _remove_state() -> None:
    """The emulator keeps nothing after it stops, so the states describing it (every stack's and workspace's) go too."""
    APPLIED_RECORD.unlink(missing_ok=True)
    for state in [*PROJECT_ROOT.glob(f"{STATE_FILE.name}*"), *PROJECT_ROOT.glob(f"{TUNER_STATE_FILE.name}*")]:
        if state.is_dir():
            shutil.rmtree(state)
        else:
            state.unlink()


def emulator_session():
    import boto3

    config = load_environment(ENVIRONMENT)
    os.environ.setdefault("AWS_DEFAULT_REGION", config.region)
    return boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=config.region), config
