"""Deterministic Lambda packages: one zip per function and two layers.

Same inputs give the same bytes: entries are sorted, timestamps and permissions fixed, caches left out.
So the zip's SHA-256 (which is what Lambda reports as CodeSha256) changes only when the code does, and an
unchanged tree plans no changes. Zips are rewritten only when their content hash changes.

Building is content-addressed, like a build cache: next to each zip, `<zip>.inputs` records the digest of
what went into it (archive names, modes, file contents). When the inputs are unchanged, the zip on disk is
used as it is, so a synth of four stacks, a test session and a deploy compress the layers once per change,
not once per stack (compressing them took about 15 s a time).

- `shared-dependencies`: the pattern engine, the shared code and their third-party wheels; every function.
- `chart-dependencies`: the chart renderer (pattern_charts) with mplfinance, matplotlib and pandas; only
  the functions that draw. It sits on top of the shared layer and leaves out what that layer already has
  (numpy, python-dateutil, ...), and the wheels' own test suites, which nothing imports.

Wheels are built for the Lambda runtime (python3.12 on arm64) with pip's cross-platform install. pip
fetches them from the package index on first build and they are cached under .build/ keyed by the
requirement set. `check_lambda_limits` holds every function, with its layers, to Lambda's size limits.

Usage: python -m patternwatch_infra.packaging  (synth calls the same code through `build_all`)
"""
from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import os
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

# Code that every function imports: it ships once, in the shared layer.
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
ZIP_COMPRESS_LEVEL = 6
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIPPED_SUFFIXES = (".pyc", ".pyo")
# Lambda's limits (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): a zip
# uploaded directly (function code or layer), and the function's code plus all its layers, unzipped.
DIRECT_UPLOAD_LIMIT_BYTES = 50 * 1024 * 1024
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024


@dataclass(frozen=True)
class LayerSpec:
    """One Lambda layer: our packages from lambda_src and third-party requirements, under python/."""

    name: str  # the zip's name and the layer's base name (`<name>-<suffix>`)
    packages: tuple[str, ...]
    requirements: tuple[str, ...]
    # Folder names inside the installed wheels that nothing imports at run time (test suites).
    trimmed_folders: frozenset[str] = frozenset()


SHARED_LAYER = LayerSpec("shared-dependencies", LAYER_PACKAGES, LAYER_REQUIREMENTS)
# The wheels' test suites (pandas 18 MiB, matplotlib 2 MiB unzipped) are never imported: left out, they cost
# neither upload nor cold-start unzip time (sizes in docs/lambda.md).
CHART_LAYER = LayerSpec("chart-dependencies", ("pattern_charts",), ("mplfinance", "matplotlib", "pandas"), frozenset({"tests"}))


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


def _entry_mode(path: Path) -> int:
    # Keep the executable bit (bundled binaries need it); everything else is read-only for others.
    return 0o755 if path.stat().st_mode & 0o111 else 0o644


def deterministic_zip(entries: Iterable[tuple[str, Path]]) -> bytes:
    """A zip of (archive name, file) pairs, sorted by name, with fixed timestamps and permissions."""
    buffer = io.BytesIO()
    # zlib's default level: level 9 took three times as long for 0.5 % fewer bytes.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_COMPRESS_LEVEL) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | _entry_mode(path)) << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


@functools.lru_cache(maxsize=None)
def _file_digest(path: Path, size: int, mtime_ns: int) -> bytes:
    # Keyed by size and mtime as well as the path, so an edited file is read again.
    return hashlib.sha256(path.read_bytes()).digest()


def inputs_digest(entries: Iterable[tuple[str, Path]]) -> str:
    """What a zip of `entries` depends on: names, modes and contents (not timestamps, which the zip fixes)."""
    digest = hashlib.sha256(f"level {ZIP_COMPRESS_LEVEL}\n".encode())
    for name, path in sorted(entries):
        stat = path.stat()
        digest.update(f"{name}\0{_entry_mode(path):o}\0".encode())
        digest.update(_file_digest(path, stat.st_size, stat.st_mtime_ns))
    return digest.hexdigest()


def _package(target: Path, data: bytes) -> Package:
    return Package(path=target, source_code_hash=base64.b64encode(hashlib.sha256(data).digest()).decode())


def zip_to(entries: Iterable[tuple[str, Path]], target: Path) -> Package:
    """The deterministic zip of `entries` at `target`: compressed only when its inputs differ from the ones
    recorded for the zip already there."""
    entries = list(entries)
    recorded = target.with_name(f"{target.name}.inputs")
    inputs = inputs_digest(entries)
    if target.exists() and recorded.exists() and recorded.read_text() == inputs:
        return _package(target, target.read_bytes())
    data = deterministic_zip(entries)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_bytes() != data:
        _replace_atomically(target, data)
        _progress(f"wrote {target.relative_to(PROJECT_ROOT) if target.is_relative_to(PROJECT_ROOT) else target} ({len(data) / 1e6:.1f} MB)")
    _replace_atomically(recorded, inputs.encode())
    return _package(target, data)


def _replace_atomically(target: Path, data: bytes) -> None:
    # Two processes may build at once (make test-fast runs two pytest processes): neither may read half a zip.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)


def build_function(package: str, *, source_root: Path = LAMBDA_SRC, out_dir: Path = BUILD_DIR / "functions") -> Package:
    """Zip lambda_src/<package>/ as <package>/... so the handler is `<package>.handler.lambda_handler`."""
    root = source_root / package
    if not (root / "handler.py").is_file():
        raise FileNotFoundError(f"{root}/handler.py not found: every function folder needs a handler module")
    entries = [(f"{package}/{p.relative_to(root).as_posix()}", p) for p in _files_under(root)]
    return zip_to(entries, out_dir / f"{package}.zip")


def locked_versions(lock_file: Path = PIPFILE_LOCK) -> dict[str, str]:
    lock = json.loads(lock_file.read_text())
    return {name: spec["version"] for name, spec in lock["default"].items() if "version" in spec}


def layer_requirements(lock_file: Path = PIPFILE_LOCK, spec: LayerSpec = SHARED_LAYER) -> list[str]:
    """The layer's requirements, each pinned to the version in Pipfile.lock."""
    versions = locked_versions(lock_file)
    pinned = []
    for requirement in spec.requirements:
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


def build_layer(
    spec: LayerSpec = SHARED_LAYER,
    *,
    source_root: Path = LAMBDA_SRC,
    dependencies: Path | None = None,
    out_dir: Path = BUILD_DIR,
    below: Path | None = None,
) -> Package:
    """python/<our packages> plus python/<third-party wheels>, minus what the layer `below` (its installed
    wheels folder) already provides and the spec's trimmed folders."""
    if dependencies is None:
        dependencies = install_layer_dependencies(layer_requirements(spec=spec))
    provided = {p.name for p in below.iterdir()} if below is not None else set()
    entries = [
        (f"python/{relative.as_posix()}", p)
        for p in _files_under(dependencies)
        if p.name != ".complete"
        and (relative := p.relative_to(dependencies)).parts[0] not in provided
        and not spec.trimmed_folders & set(relative.parts[1:-1])
    ]
    for package in spec.packages:
        root = source_root / package
        entries += [(f"python/{package}/{p.relative_to(root).as_posix()}", p) for p in _files_under(root)]
    return zip_to(entries, out_dir / f"{spec.name}.zip")


@dataclass(frozen=True)
class BuiltPackages:
    shared_layer: Package
    chart_layer: Package
    functions: dict[str, Package]


@dataclass(frozen=True)
class DeploymentSize:
    largest_zip_bytes: int
    unzipped_bytes: int


class PackageTooLarge(ValueError):
    pass


def unzipped_bytes(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist())


def check_lambda_limits(name: str, code: Package, layers: Iterable[Package]) -> DeploymentSize:
    """Refuse a function whose zips Lambda would reject: any zip over the direct-upload limit, or code
    plus layers over the unzipped limit. Synth fails here, not the apply."""
    packages = [code, *layers]
    sizes = DeploymentSize(
        largest_zip_bytes=max(p.path.stat().st_size for p in packages),
        unzipped_bytes=sum(unzipped_bytes(p.path) for p in packages),
    )
    if sizes.largest_zip_bytes > DIRECT_UPLOAD_LIMIT_BYTES:
        largest = max(packages, key=lambda p: p.path.stat().st_size)
        raise PackageTooLarge(f"{name}: {largest.path.name} is {sizes.largest_zip_bytes / 2**20:.1f} MiB zipped, over Lambda's 50 MiB direct upload")
    if sizes.unzipped_bytes > UNZIPPED_LIMIT_BYTES:
        raise PackageTooLarge(f"{name}: code and layers unzip to {sizes.unzipped_bytes / 2**20:.1f} MiB, over Lambda's 250 MiB")
    return sizes


def function_packages(source_root: Path = LAMBDA_SRC) -> list[str]:
    """Every folder of lambda_src with a handler module is one function."""
    return sorted(p.parent.name for p in source_root.glob("*/handler.py"))


def build_all() -> BuiltPackages:
    shared_dependencies = install_layer_dependencies(layer_requirements(spec=SHARED_LAYER))
    return BuiltPackages(
        shared_layer=build_layer(SHARED_LAYER, dependencies=shared_dependencies),
        chart_layer=build_layer(CHART_LAYER, below=shared_dependencies),
        functions={package: build_function(package) for package in function_packages()},
    )


def main() -> int:
    built = build_all()
    for layer in (built.shared_layer, built.chart_layer):
        print(f"layer  {layer.path.relative_to(PROJECT_ROOT)}  {layer.source_code_hash}  "
              f"{layer.path.stat().st_size / 2**20:.1f} MiB zipped, {unzipped_bytes(layer.path) / 2**20:.1f} MiB unzipped")
    for package, function in built.functions.items():
        print(f"{package:<20} {function.path.relative_to(PROJECT_ROOT)}  {function.source_code_hash}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
