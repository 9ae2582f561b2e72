"""Deterministic Lambda packages: same tree, same bytes; changed source, changed hash."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from patternwatch_infra import packaging
from patternwatch_infra.packaging import build_function, build_layer, deterministic_zip, function_packages, layer_requirements


@pytest.fixture()
def source_tree(tmp_path):
    src = tmp_path / "lambda_src"
    (src / "my_function").mkdir(parents=True)
    (src / "my_function" / "__init__.py").write_text("")
    (src / "my_function" / "handler.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    (src / "my_function" / "__pycache__").mkdir()
    (src / "my_function" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"junk")
    for package in packaging.LAYER_PACKAGES:
        (src / package).mkdir()
        (src / package / "__init__.py").write_text(f"NAME = {package!r}\n")
    deps = tmp_path / "deps"
    (deps / "numpy").mkdir(parents=True)
    (deps / "numpy" / "__init__.py").write_text("")
    (deps / ".complete").write_text("numpy==2")
    return src, deps


def test_two_builds_give_the_same_bytes(source_tree, tmp_path):
    src, _ = source_tree
    first = build_function("my_function", source_root=src, out_dir=tmp_path / "a")
    second = build_function("my_function", source_root=src, out_dir=tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.source_code_hash == second.source_code_hash
    assert first.source_code_hash == base64.b64encode(hashlib.sha256(first.path.read_bytes()).digest()).decode()
    assert first.sha256_hex == hashlib.sha256(first.path.read_bytes()).hexdigest()  # the artifact's S3 key


def test_a_build_does_not_depend_on_file_times(source_tree, tmp_path):
    src, _ = source_tree
    first = build_function("my_function", source_root=src, out_dir=tmp_path / "a").source_code_hash
    os.utime(src / "my_function" / "handler.py", (1_000_000_000, 1_000_000_000))
    assert build_function("my_function", source_root=src, out_dir=tmp_path / "b").source_code_hash == first


def test_a_changed_source_changes_the_hash(source_tree, tmp_path):
    src, _ = source_tree
    before = build_function("my_function", source_root=src, out_dir=tmp_path).source_code_hash
    (src / "my_function" / "handler.py").write_text("def lambda_handler(event, context):\n    return 2\n")
    assert build_function("my_function", source_root=src, out_dir=tmp_path).source_code_hash != before


def test_an_unchanged_zip_is_not_rewritten(source_tree, tmp_path):
    src, _ = source_tree
    built = build_function("my_function", source_root=src, out_dir=tmp_path)
    os.utime(built.path, (1, 1))
    build_function("my_function", source_root=src, out_dir=tmp_path)
    assert built.path.stat().st_mtime == 1


def test_unchanged_inputs_reuse_the_zip_without_compressing_again(source_tree, tmp_path, monkeypatch):
    src, deps = source_tree
    built = build_layer(source_root=src, dependencies=deps, out_dir=tmp_path)
    monkeypatch.setattr(packaging, "deterministic_zip", lambda entries: pytest.fail("compressed unchanged inputs again"))
    assert build_layer(source_root=src, dependencies=deps, out_dir=tmp_path) == built


@pytest.mark.parametrize("change", ["content", "mode", "new file"])
def test_any_changed_input_builds_the_zip_again(source_tree, tmp_path, change):
    src, _ = source_tree
    before = build_function("my_function", source_root=src, out_dir=tmp_path)
    handler = src / "my_function" / "handler.py"
    if change == "content":  # same size, so only the content digest can tell
        handler.write_text(handler.read_text().replace("1", "2"))
    elif change == "mode":
        handler.chmod(0o755)
    else:
        (src / "my_function" / "rules.py").write_text("")
    after = build_function("my_function", source_root=src, out_dir=tmp_path)
    assert after.source_code_hash != before.source_code_hash
    assert after.source_code_hash == build_function("my_function", source_root=src, out_dir=tmp_path / "fresh").source_code_hash


def test_a_zip_whose_inputs_were_not_recorded_is_checked_not_trusted(source_tree, tmp_path):
    src, _ = source_tree
    built = build_function("my_function", source_root=src, out_dir=tmp_path)
    recorded = built.path.with_name("my_function.zip.inputs")
    recorded.unlink()
    built.path.write_bytes(b"not the zip")
    rebuilt = build_function("my_function", source_root=src, out_dir=tmp_path)
    assert rebuilt.source_code_hash == built.source_code_hash and rebuilt.path.read_bytes() != b"not the zip"
    assert recorded.exists()


def test_function_zip_holds_the_package_folder_without_caches(source_tree, tmp_path):
    src, _ = source_tree
    built = build_function("my_function", source_root=src, out_dir=tmp_path)
    with zipfile.ZipFile(built.path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == ["my_function/__init__.py", "my_function/handler.py"]
    assert {i.date_time for i in infos} == {packaging.FIXED_ZIP_TIME}
    assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}


def test_a_folder_without_a_handler_is_refused(source_tree, tmp_path):
    src, _ = source_tree
    with pytest.raises(FileNotFoundError, match="handler.py not found"):
        build_function("pattern_engine", source_root=src, out_dir=tmp_path)


def test_layer_puts_our_code_and_the_wheels_under_python(source_tree, tmp_path):
    src, deps = source_tree
    built = build_layer(source_root=src, dependencies=deps, out_dir=tmp_path)
    with zipfile.ZipFile(built.path) as archive:
        names = archive.namelist()
    assert names == sorted(names)
    assert "python/numpy/__init__.py" in names
    assert {f"python/{p}/__init__.py" for p in packaging.LAYER_PACKAGES} <= set(names)
    assert "python/.complete" not in names


def test_executable_files_keep_their_mode(tmp_path):
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    with zipfile.ZipFile(io.BytesIO(deterministic_zip([("bin/tool", script)]))) as archive:
        assert (archive.infolist()[0].external_attr >> 16) & 0o777 == 0o755


def test_every_function_folder_is_found():
    assert {"kinesis_consumer", "pattern_detector", "alert_processor", "threshold_checker", "approval_processor"} <= set(function_packages())
    assert "pattern_engine" not in function_packages() and "patternwatch_shared" not in function_packages()


def test_layer_requirements_are_pinned_from_the_lock_and_leave_out_the_sdk(tmp_path):
    requirements = layer_requirements()
    assert any(r.startswith("aws-lambda-powertools[tracer,parser]==") for r in requirements)
    assert any(r.startswith("numpy==") for r in requirements)
    assert not any(r.startswith(("boto3", "botocore")) for r in requirements)
    lock = tmp_path / "Pipfile.lock"
    lock.write_text('{"default": {"numpy": {"version": "==2.0.0"}}}')
    with pytest.raises(KeyError, match="aws-lambda-powertools is not in Pipfile.lock"):
        layer_requirements(lock)


@pytest.fixture(scope="module")
def built():
    """What synth builds: wheels for arm64 (from the cache after the first build)."""
    return packaging.build_all()


def _top_levels(package) -> set[str]:
    with zipfile.ZipFile(package.path) as archive:
        return {n.split("/")[1] for n in archive.namelist()}


def test_the_real_layer_has_the_engine_and_no_aws_sdk(built):
    tops = _top_levels(built.shared_layer)
    assert {"pattern_engine", "patternwatch_shared", "aws_lambda_powertools", "numpy", "pydantic"} <= tops
    assert not {"boto3", "botocore", "s3transfer", "pattern_charts"} & tops
    assert any(n.endswith("aarch64-linux-gnu.so") for n in zipfile.ZipFile(built.shared_layer.path).namelist())


def test_the_chart_layer_has_the_renderer_and_nothing_the_shared_layer_already_has(built):
    tops = _top_levels(built.chart_layer)
    assert {"pattern_charts", "mplfinance", "matplotlib", "pandas", "PIL"} <= tops
    assert not {"numpy", "dateutil", "six.py", "pattern_engine", "patternwatch_shared", "boto3", "botocore"} & tops
    assert not tops & _top_levels(built.shared_layer)
    names = zipfile.ZipFile(built.chart_layer.path).namelist()
    assert not [n for n in names if "/tests/" in n], "the wheels' test suites are trimmed"
    assert any(n.startswith("python/pandas/") and n.endswith("aarch64-linux-gnu.so") for n in names)


def test_every_function_with_its_layers_fits_lambdas_limits(built):
    sizes = packaging.check_lambda_limits("AlertProcessor", built.functions["alert_processor"], [built.shared_layer, built.chart_layer])
    assert sizes.largest_zip_bytes <= packaging.DIRECT_UPLOAD_LIMIT_BYTES
    assert sizes.unzipped_bytes <= packaging.UNZIPPED_LIMIT_BYTES
    without_charts = packaging.check_lambda_limits("KinesisConsumer", built.functions["kinesis_consumer"], [built.shared_layer])
    assert without_charts.unzipped_bytes < sizes.unzipped_bytes


def test_a_function_over_lambdas_limits_is_refused_at_synth(source_tree, tmp_path, monkeypatch):
    src, deps = source_tree
    code = build_function("my_function", source_root=src, out_dir=tmp_path)
    layer = build_layer(source_root=src, dependencies=deps, out_dir=tmp_path)
    fits = packaging.check_lambda_limits("Mine", code, [layer])
    assert fits.unzipped_bytes == packaging.unzipped_bytes(code.path) + packaging.unzipped_bytes(layer.path)
    monkeypatch.setattr(packaging, "UNZIPPED_LIMIT_BYTES", fits.unzipped_bytes - 1)
    with pytest.raises(packaging.PackageTooLarge, match="Mine: code and layers unzip to .* over Lambda's 250 MiB"):
        packaging.check_lambda_limits("Mine", code, [layer])
    monkeypatch.setattr(packaging, "DIRECT_UPLOAD_LIMIT_BYTES", fits.largest_zip_bytes - 1)
    with pytest.raises(packaging.PackageTooLarge, match="over Lambda's 50 MiB direct upload"):
        packaging.check_lambda_limits("Mine", code, [layer])


def test_a_layer_above_another_leaves_out_what_is_below_and_its_trimmed_folders(tmp_path):
    src = tmp_path / "lambda_src"
    (src / "charts").mkdir(parents=True)
    (src / "charts" / "__init__.py").write_text("")
    deps = tmp_path / "deps"
    for path in ("plotting/__init__.py", "plotting/tests/test_x.py", "plotting/core/tests/data.csv", "numpy/__init__.py", "six.py"):
        (deps / path).parent.mkdir(parents=True, exist_ok=True)
        (deps / path).write_text("")
    below = tmp_path / "below"
    (below / "numpy").mkdir(parents=True)
    (below / "six.py").write_text("")
    spec = packaging.LayerSpec("charts-layer", ("charts",), ("plotting",), frozenset({"tests"}))
    built_layer = build_layer(spec, source_root=src, dependencies=deps, out_dir=tmp_path, below=below)
    assert built_layer.path.name == "charts-layer.zip"
    assert zipfile.ZipFile(built_layer.path).namelist() == ["python/charts/__init__.py", "python/plotting/__init__.py"]


def test_chart_layer_requirements_are_pinned_from_the_lock():
    requirements = layer_requirements(spec=packaging.CHART_LAYER)
    assert "mplfinance==0.12.10b0" in requirements
    assert any(r.startswith("matplotlib==") for r in requirements) and any(r.startswith("pandas==") for r in requirements)


def test_layer_dependencies_are_installed_for_lambda_once_then_cached(tmp_path):
    """pip runs once per requirement set, for arm64 python3.12, constrained to the lock; the SDK is dropped."""
    commands = []

    def fake_pip(command, **_):
        commands.append(command)
        target = Path(command[command.index("--target") + 1])
        for name in ("numpy", "boto3", "botocore", "bin"):
            (target / name).mkdir(parents=True)
            (target / name / "x.py").write_text("")
        (target / "s3transfer-0.1.dist-info").write_text("")
        return subprocess.CompletedProcess(command, 0, "", "")

    target = packaging.install_layer_dependencies(["numpy==2.0.0"], cache_root=tmp_path, run=fake_pip)
    assert sorted(p.name for p in target.iterdir()) == [".complete", "numpy"]
    (command,) = commands
    assert command[-1] == "numpy==2.0.0"
    assert "--only-binary=:all:" in command and command[command.index("--python-version") + 1] == "3.12"
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"] == list(packaging.LAMBDA_PLATFORMS)
    constraints = Path(command[command.index("--constraint") + 1]).read_text().splitlines()
    assert any(line.startswith("numpy==") for line in constraints)
    assert packaging.install_layer_dependencies(["numpy==2.0.0"], cache_root=tmp_path, run=fake_pip) == target
    assert len(commands) == 1


def test_an_interrupted_install_is_redone_and_a_pip_failure_says_why(tmp_path):
    def failing_pip(command, **_):
        target = Path(command[command.index("--target") + 1])
        target.mkdir(parents=True)
        (target / "half-installed").write_text("")
        return subprocess.CompletedProcess(command, 1, "", "No matching distribution found for numpy==0.0")

    with pytest.raises(RuntimeError, match="No matching distribution found"):
        packaging.install_layer_dependencies(["numpy==0.0"], cache_root=tmp_path, run=failing_pip)
    (leftover,) = [p for p in tmp_path.iterdir() if p.is_dir()]

    def working_pip(command, **_):
        (Path(command[command.index("--target") + 1]) / "numpy").mkdir(parents=True)
        return subprocess.CompletedProcess(command, 0, "", "")

    target = packaging.install_layer_dependencies(["numpy==0.0"], cache_root=tmp_path, run=working_pip)
    assert target == leftover and sorted(p.name for p in target.iterdir()) == [".complete", "numpy"]


def test_the_command_line_builds_and_lists_every_package(capsys):
    assert packaging.main() == 0
    printed = capsys.readouterr().out
    assert printed.startswith("layer  .build/shared-dependencies.zip  ")
    assert "\nlayer  .build/chart-dependencies.zip  " in printed and "MiB unzipped" in printed
    for package in function_packages():
        assert f".build/functions/{package}.zip" in printed
