"""Deterministic Lambda packages: one zip per function and the shared-dependencies layer.

Same inputs give the same bytes: entries are sorted, timestamps and permissions fixed, caches left out.
So the zip's SHA-256 (which is what Lambda reports as CodeSha256) changes only when the code does, and an
unchanged tree plans no changes. Zips are rewritten only when their content hash changes.

The layer holds the pattern engine, the shared code and the third-party wheels, built for the Lambda
runtime (python3.12 on arm64) with pip's cross-platform install. pip fetches the wheels from the package
index on first build and they are cached under .build/ keyed by the requirement set.

Usage: python -m patternwatch_infra.packaging  (synth calls the same code through `build_all`)
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = PROJECT_ROOT / "lambda_src"
BUILD_DIR = PROJECT_ROOT / ".build"
PIPFILE_LOCK = PROJECT_ROOT / "Pipfile.lock"

# Code that every function imports: it ships once, in the layer.
LAYER_PACKAGES = ("pattern_engine", "patternwatch_shared")
# Third-party packages the handlers import at run time; their versions come from Pipfile.lock.
LAYER_REQUIREMENTS = ("aws-lambda-powertools[tracer,parser]", "numpy")
# The Lambda Python runtime already has the AWS SDK; shipping it again only makes the layer bigger.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
LAMBDA_PYTHON_VERSION = "3.12"
# numpy >= 2.3 publishes aarch64 wheels for glibc 2.28+ only; the python3.12 runtime (Amazon Linux 2023,
# glibc 2.34) runs both tags.
LAMBDA_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# ZIP timestamps start in 1980; any fixed value makes the archive reproducible.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Package:
    """A built zip: where it is and the base64 SHA-256 of its bytes (Terraform's `source_code_hash`)."""

    path: Path
    source_code_hash: str

    @property
    def sha256_hex(self) -> str:
        """The same digest in hex: safe in S3 keys and file names, where base64's `/` and `+` are not."""
        return base64.b64decode(self.source_code_hash).hex()


def _progress(message: str) -> None:
    print(f"packaging: {message}", file=sys.stderr, flush=True)


def _files_under(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not (SKIPPED_NAMES & set(path.relative_to(root).parts)) and not path.name.endswith(SKIPPED_SUFFIXES):
            yield path


def deterministic_zip(entries: Iterable[tuple[str, Path]]) -> bytes:
    """A zip of (archive name, file) pairs, sorted by name, with fixed timestamps and permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            # Keep the executable bit (bundled binaries need it); everything else is read-only for others.
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _write_if_changed(data: bytes, target: Path) -> Package:
    digest = hashlib.sha256(data).digest()
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or hashlib.sha256(target.read_bytes()).digest() != digest:
        target.write_bytes(data)
        _progress(f"wrote {target.relative_to(PROJECT_ROOT) if target.is_relative_to(PROJECT_ROOT) else target} ({len(data) / 1e6:.1f} MB)")
    return Package(path=target, source_code_hash=base64.b64encode(digest).decode())


def build_function(package: str, *, source_root: Path = LAMBDA_SRC, out_dir: Path = BUILD_DIR / "functions") -> Package:
    """Zip lambda_src/<package>/ as <package>/... so the handler is `<package>.handler.lambda_handler`."""
    root = source_root / package
    if not (root / "handler.py").is_file():
        raise FileNotFoundError(f"{root}/handler.py not found: every function folder needs a handler module")
    entries = [(f"{package}/{p.relative_to(root).as_posix()}", p) for p in _files_under(root)]
    return _write_if_changed(deterministic_zip(entries), out_dir / f"{package}.zip")


def locked_versions(lock_file: Path = PIPFILE_LOCK) -> dict[str, str]:
    lock = json.loads(lock_file.read_text())
    return {name: spec["version"] for name, spec in lock["default"].items() if "version" in spec}


def layer_requirements(lock_file: Path = PIPFILE_LOCK) -> list[str]:
    """The layer's requirements, each pinned to the version in Pipfile.lock."""
    versions = locked_versions(lock_file)
    pinned = []
    for requirement in LAYER_REQUIREMENTS:
        name = requirement.split("[")[0]
        if name not in versions:
            raise KeyError(f"{name} is not in Pipfile.lock [packages]; add it to the Pipfile and re-lock")
        pinned.append(f"{requirement}{versions[name]}")
    return pinned


def install_layer_dependencies(
    requirements: list[str],
    *,
    cache_root: Path = BUILD_DIR / "layer-deps",
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> Path:
    """pip-install the wheels for the Lambda platform once per requirement set; reuse the cache after.

    Every transitive dependency is constrained to its Pipfile.lock version, so the layer runs what the
    tests ran.
    """
    constraints = sorted(f"{name}{version}" for name, version in locked_versions().items())
    key = hashlib.sha256(json.dumps([requirements, constraints, LAMBDA_PLATFORMS, LAMBDA_PYTHON_VERSION]).encode()).hexdigest()[:16]
    target = cache_root / key
    if (target / ".complete").exists():
        return target
    _progress(f"installing {', '.join(requirements)} for python{LAMBDA_PYTHON_VERSION} on arm64 (cached after the first build)")
    if target.exists():
        shutil.rmtree(target)
    platform_args = [arg for platform in LAMBDA_PLATFORMS for arg in ("--platform", platform)]
    constraints_file = cache_root / f"{key}.constraints.txt"
    constraints_file.parent.mkdir(parents=True, exist_ok=True)
    constraints_file.write_text("\n".join(constraints) + "\n")
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        *platform_args, "--only-binary=:all:", "--implementation", "cp", "--python-version", LAMBDA_PYTHON_VERSION,
        "--target", str(target), "--constraint", str(constraints_file), *requirements,
    ]
    result = run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip could not install the layer dependencies:\n{result.stderr.strip()}")
    for provided in PROVIDED_BY_RUNTIME:
        for path in target.glob(f"{provided}*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(target / "bin", ignore_errors=True)
    (target / ".complete").write_text("\n".join(requirements))
    return target


def build_layer(*, source_root: Path = LAMBDA_SRC, dependencies: Path | None = None, out_dir: Path = BUILD_DIR) -> Package:
    """The shared layer: python/<our packages> plus python/<third-party wheels>."""
    if dependencies is None:
        dependencies = install_layer_dependencies(layer_requirements())
    entries = [(f"python/{p.relative_to(dependencies).as_posix()}", p) for p in _files_under(dependencies) if p.name != ".complete"]
    for package in LAYER_PACKAGES:
        root = source_root / package
        entries += [(f"python/{package}/{p.relative_to(root).as_posix()}", p) for p in _files_under(root)]
    return _write_if_changed(deterministic_zip(entries), out_dir / "shared-dependencies.zip")


def function_packages(source_root: Path = LAMBDA_SRC) -> list[str]:
    """Every folder of lambda_src with a handler module is one function."""
    return sorted(p.parent.name for p in source_root.glob("*/handler.py"))


def build_all() -> tuple[Package, dict[str, Package]]:
    layer = build_layer()
    functions = {package: build_function(package) for package in function_packages()}
    return layer, functions


def main() -> int:
    layer, functions = build_all()
    print(f"layer  {layer.path.relative_to(PROJECT_ROOT)}  {layer.source_code_hash}")
    for package, built in functions.items():
        print(f"{package:<20} {built.path.relative_to(PROJECT_ROOT)}  {built.source_code_hash}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
