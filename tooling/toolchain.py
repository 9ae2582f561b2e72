"""The Terraform toolchain: find the binary and the AWS provider, and write the project's CLI config.

Terraform must never need the internet on a machine that has the provider in a filesystem mirror, and
must use the public registry everywhere else. The project therefore writes its own CLI config to
`.cache/terraform.rc` and every script points `TF_CLI_CONFIG_FILE` at it.

Usage: python -m tooling.toolchain [--print-env]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CLI_CONFIG_PATH = PROJECT_ROOT / ".cache" / "terraform.rc"
MIRROR_ENV_VAR = "PATTERNWATCH_PROVIDER_MIRROR"
AWS_PROVIDER_VERSION = "5.100.0"
MINIMUM_TERRAFORM = (1, 10)
PROVIDER_HOST = "registry.terraform.io"

# Where Terraform itself looks for plugins (its "implied local mirror directories"), plus the places
# machine images put a shared mirror.
USUAL_MIRRORS = (
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
    Path("/usr/local/share/terraform/plugins"),
    Path("/usr/share/terraform/plugins"),
    Path("/opt/tf-plugins"),
    Path("/opt/terraform/plugins"),
)
# Roots searched, depth-limited, when no usual location has the provider.
SEARCH_ROOTS = (Path("/opt"), Path("/usr/local"), Path("/usr/share"), Path.home(), Path("/srv"))
SEARCH_DEPTH = 8


class ToolchainError(RuntimeError):
    """Something the project needs is missing; the message says what to install."""


def terraform_platform() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}_{arch}"


def _provider_dir(mirror: Path) -> Path:
    return mirror / PROVIDER_HOST / "hashicorp" / "aws" / AWS_PROVIDER_VERSION / terraform_platform()


def mirror_has_provider(mirror: Path) -> bool:
    """True when `mirror` holds the pinned AWS provider, unpacked or packed, for this platform."""
    unpacked = _provider_dir(mirror)
    if unpacked.is_dir() and any(p.name.startswith("terraform-provider-aws") for p in unpacked.iterdir()):
        return True
    packed = mirror / PROVIDER_HOST / "hashicorp" / "aws" / f"terraform-provider-aws_{AWS_PROVIDER_VERSION}_{terraform_platform()}.zip"
    return packed.is_file()


def _search(root: Path, depth: int) -> Path | None:
    if depth < 0 or not root.is_dir():
        return None
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return None
    for child in children:
        if child.name == PROVIDER_HOST and mirror_has_provider(root):
            return root
    for child in children:
        if child.name in {"proc", "sys", "node_modules", ".git", ".venv"}:
            continue
        found = _search(child, depth - 1)
        if found is not None:
            return found
    return None


def find_provider_mirror(environ: dict | None = None) -> Path | None:
    """The configured mirror, else a usual plugin location, else one found by searching the machine."""
    environ = os.environ if environ is None else environ
    configured = environ.get(MIRROR_ENV_VAR)
    if configured:
        mirror = Path(configured)
        if not mirror_has_provider(mirror):
            raise ToolchainError(
                f"{MIRROR_ENV_VAR}={configured} does not hold hashicorp/aws {AWS_PROVIDER_VERSION} for "
                f"{terraform_platform()} (expected {_provider_dir(mirror)})"
            )
        return mirror
    for mirror in USUAL_MIRRORS:
        if mirror_has_provider(mirror):
            return mirror
    for root in SEARCH_ROOTS:
        found = _search(root, SEARCH_DEPTH)
        if found is not None:
            return found
    return None


# Terraform's upgrade and security-bulletin check calls checkpoint-api.hashicorp.com on every command; offline it
# only adds a delay and an error. The CLI config turns it off for every Terraform run that uses this file.
NO_CHECKPOINT = "disable_checkpoint = true\n"
# What a shell needs to run this project's Terraform and cdktf by hand (`--print-env`). cdktf-cli 0.21 reads
# CHECKPOINT_DISABLE only from the environment (nothing in cdktf.json turns its own checkpoint call off).
QUIET_ENV = {"CHECKPOINT_DISABLE": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


def render_cli_config(mirror: Path | None) -> str:
    if mirror is None:
        return (
            "# Written by tooling/toolchain.py: no local provider mirror was found, so Terraform uses the registry.\n"
            f"{NO_CHECKPOINT}provider_installation {{\n  direct {{}}\n}}\n"
        )
    return (
        "# Written by tooling/toolchain.py: hashicorp providers come from the local mirror, others from the registry.\n"
        f"{NO_CHECKPOINT}"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
    )


def write_cli_config(environ: dict | None = None) -> Path:
    """Write .cache/terraform.rc (only when its content changes) and return its path."""
    content = render_cli_config(find_provider_mirror(environ))
    CLI_CONFIG_PATH.parent.mkdir(parents=True, exist_ok=True)
    if not CLI_CONFIG_PATH.exists() or CLI_CONFIG_PATH.read_text() != content:
        CLI_CONFIG_PATH.write_text(content)
    return CLI_CONFIG_PATH


def terraform_env(environ: dict | None = None) -> dict[str, str]:
    """The environment every Terraform call of the project runs with."""
    env = dict(os.environ if environ is None else environ)
    env["TF_CLI_CONFIG_FILE"] = str(write_cli_config(env))
    env.setdefault("TF_IN_AUTOMATION", "1")
    for key, value in QUIET_ENV.items():
        env.setdefault(key, value)
    return env


def check_terraform() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        raise ToolchainError(
            "terraform is not on PATH: install Terraform >= 1.10 (https://developer.hashicorp.com/terraform/install)"
        )
    out = subprocess.run([binary, "version"], capture_output=True, text=True, env=terraform_env()).stdout
    match = re.search(r"Terraform v(\d+)\.(\d+)\.(\d+)", out)
    if not match or tuple(map(int, match.groups()[:2])) < MINIMUM_TERRAFORM:
        raise ToolchainError(f"terraform >= 1.10 is required (found: {out.splitlines()[0] if out else 'unknown'})")
    return match.group(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-env", action="store_true", help="print the exports a shell needs: eval \"$(python -m tooling.toolchain --print-env)\"")
    args = parser.parse_args(argv)
    try:
        path = write_cli_config()
        if args.print_env:
            print(f"export TF_CLI_CONFIG_FILE={path}")
            for key, value in QUIET_ENV.items():
                print(f"export {key}={value}")
            return 0
        version = check_terraform()
        mirror = find_provider_mirror()
    except ToolchainError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    source = f"local mirror {mirror}" if mirror else "the public registry (no local mirror found)"
    print(f"toolchain: {version}; hashicorp/aws {AWS_PROVIDER_VERSION} from {source}; CLI config {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
