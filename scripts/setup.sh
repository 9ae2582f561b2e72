#!/usr/bin/env bash
# One-command setup: Python deps (pipenv, from Pipfile.lock), the CDKTF CLI (npm, from package-lock.json),
# Chromium for the browser test (Debian package), and a check of the Terraform toolchain. Safe to run again:
# finished steps are skipped. Everything it installs stays in this checkout (.cache/pipenv: pipenv itself,
# .venv: Python packages, node_modules: cdktf-cli) except Chromium, a system package.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "error: Python 3.11 is required (found $("$PYTHON" --version 2>&1)); install python3.11 and re-run" >&2
  exit 1
fi
command -v node >/dev/null 2>&1 || { echo "error: Node.js >= 20 is required for the CDKTF CLI; install nodejs and npm" >&2; exit 1; }
command -v terraform >/dev/null 2>&1 || { echo "error: terraform is not on PATH: install Terraform >= 1.10 (https://developer.hashicorp.com/terraform/install)" >&2; exit 1; }

# pipenv lives in the project (.cache/pipenv), never in the global interpreter: it is only needed to install
# Pipfile.lock into .venv, and nothing outside this checkout should change because of it.
PIPENV_VERSION=2026.10.3
PIPENV_HOME=.cache/pipenv
PIPENV="$PIPENV_HOME/bin/pipenv"
if [ "$("$PIPENV" --version 2>/dev/null)" != "pipenv, version $PIPENV_VERSION" ]; then
  step "installing pipenv $PIPENV_VERSION into $PIPENV_HOME (inside the project, not the global interpreter)"
  "$PYTHON" -m venv --clear "$PIPENV_HOME"
  "$PIPENV_HOME/bin/python" -m pip install --quiet --quiet "pipenv==$PIPENV_VERSION"
fi

export PIPENV_VENV_IN_PROJECT=1 PIPENV_VERBOSITY=-1 PIPENV_NOSPIN=1
# Reinstall only when something it installs changed since the last successful sync: the lock file, or the
# project itself (pyproject.toml, or the set of packages the editable install maps, e.g. a new function folder).
lock_hash=$({ cat Pipfile.lock pyproject.toml; printf '%s\n' */__init__.py lambda_src/*/__init__.py; } | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.pipfile-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  step "installing Python packages from Pipfile.lock"
  "$PIPENV" sync --dev --python "$PYTHON"
  echo "$lock_hash" > .venv/.pipfile-lock-hash
else
  echo "Python packages: up to date with Pipfile.lock"
fi

npm_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/cdktf ] || [ "$(cat node_modules/.package-lock-hash 2>/dev/null)" != "$npm_hash" ]; then
  step "installing the CDKTF CLI from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_hash" > node_modules/.package-lock-hash
else
  echo "CDKTF CLI: up to date with package-lock.json"
fi

# The approval page's browser test drives Debian's Chromium through Playwright (never `playwright install`:
# no browser downloads). Installed here when missing and we may (root with apt-get, as CI runs); otherwise
# one clear line says what to do.
CHROMIUM=${PATTERNWATCH_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  echo "Chromium: $("$CHROMIUM" --version 2>/dev/null | head -n1)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  step "installing Chromium (Debian package) for the approval page's browser test"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 ||
         { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; }; }; then
    echo "error: apt-get could not install chromium; install it (apt-get install chromium) and re-run" >&2
    exit 1
  fi
  echo "Chromium: $("$CHROMIUM" --version 2>/dev/null | head -n1)"
else
  echo "error: Chromium is missing ($CHROMIUM): the approval page's browser test needs it; run 'sudo apt-get install chromium' and re-run" >&2
  exit 1
fi

step "checking the toolchain"
.venv/bin/python -m tooling.toolchain
