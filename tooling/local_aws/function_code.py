"""The code a function version runs, read back from the emulator and unpacked once per CodeSha256.

moto keeps the bytes of every function version's zip and of every layer version. They are extracted
under .local/lambda-code/<kind>/<sha256 hex>/ (written to a temporary folder and renamed, so a half
written folder is never used), exactly as Terraform uploaded them: a module missing from the zip is
missing here too.

Third-party packages inside a layer are left out. The layer's wheels are built for arm64 Linux and this
machine cannot load their compiled parts (numpy, pydantic-core), so workers take them from the project's
environment instead. They are recognised by pip's own record: every top-level name that a
`*.dist-info/RECORD` in the layer lists belongs to a third-party distribution; everything else in the
layer (our own packages) is extracted.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

_lock = threading.Lock()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def code_sha256(data: bytes) -> str:
    """What Lambda reports as CodeSha256: base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def third_party_top_levels(archive: zipfile.ZipFile, prefix: str) -> set[str]:
    """Top-level names under `prefix` that pip installed (listed in some *.dist-info/RECORD)."""
    owned: set[str] = set()
    for name in archive.namelist():
        if not name.startswith(prefix):
            continue
        relative = name[len(prefix):]
        parts = relative.split("/")
        if len(parts) == 2 and parts[0].endswith(".dist-info"):
            owned.add(parts[0])
            if parts[1] == "RECORD":
                for line in archive.read(name).decode("utf-8", "replace").splitlines():
                    path = line.split(",", 1)[0]
                    if path and not path.startswith(".."):
                        owned.add(path.split("/", 1)[0])
    return owned


def _extract(data: bytes, target: Path, *, skip_third_party: bool) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        skipped = third_party_top_levels(archive, "python/") if skip_third_party else set()
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            for info in archive.infolist():
                parts = info.filename.split("/")
                if skip_third_party and len(parts) > 1 and parts[0] == "python" and parts[1] in skipped:
                    continue
                archive.extract(info, staging)
                mode = (info.external_attr >> 16) & 0o777
                if mode and not info.is_dir():
                    os.chmod(staging / info.filename, mode | 0o400)
            try:
                staging.rename(target)
            except OSError:
                if not target.is_dir():  # another process finished the same extraction first
                    raise
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def unpacked(cache_root: Path, kind: str, data: bytes, *, skip_third_party: bool = False) -> Path:
    """The folder holding `data` (a zip) extracted; extracted on first use."""
    target = cache_root / kind / sha256_hex(data)
    if target.is_dir():
        return target
    with _lock:
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            _extract(data, target, skip_third_party=skip_third_party)
    return target
