"""The project's Terraform CLI config: a local provider mirror when there is one, the registry otherwise."""
from __future__ import annotations

import pytest

from tooling import toolchain
from tooling.toolchain import (
    AWS_PROVIDER_VERSION,
    MIRROR_ENV_VAR,
    ToolchainError,
    check_terraform,
    find_provider_mirror,
    mirror_has_provider,
    render_cli_config,
    terraform_platform,
)


def make_mirror(root):
    provider_dir = root / "registry.terraform.io" / "hashicorp" / "aws" / AWS_PROVIDER_VERSION / terraform_platform()
    provider_dir.mkdir(parents=True)
    (provider_dir / f"terraform-provider-aws_v{AWS_PROVIDER_VERSION}_x5").write_bytes(b"\x7fELF")
    return root


def test_a_configured_mirror_is_used(tmp_path):
    mirror = make_mirror(tmp_path / "mirror")
    assert find_provider_mirror({MIRROR_ENV_VAR: str(mirror)}) == mirror


def test_a_configured_mirror_without_the_provider_is_a_clear_error(tmp_path):
    with pytest.raises(ToolchainError, match=rf"does not hold hashicorp/aws {AWS_PROVIDER_VERSION} for {terraform_platform()}"):
        find_provider_mirror({MIRROR_ENV_VAR: str(tmp_path)})


def test_a_packed_mirror_counts(tmp_path):
    packed = tmp_path / "registry.terraform.io" / "hashicorp" / "aws"
    packed.mkdir(parents=True)
    (packed / f"terraform-provider-aws_{AWS_PROVIDER_VERSION}_{terraform_platform()}.zip").write_bytes(b"PK")
    assert mirror_has_provider(tmp_path)


def test_a_mirror_is_found_by_searching_when_no_usual_location_has_one(tmp_path, monkeypatch):
    mirror = make_mirror(tmp_path / "srv" / "images" / "terraform")
    monkeypatch.setattr(toolchain, "USUAL_MIRRORS", (tmp_path / "nothing-here",))
    monkeypatch.setattr(toolchain, "SEARCH_ROOTS", (tmp_path / "missing", tmp_path / "srv"))
    assert find_provider_mirror({}) == mirror


def test_no_mirror_anywhere_means_the_registry(tmp_path, monkeypatch):
    monkeypatch.setattr(toolchain, "USUAL_MIRRORS", (tmp_path / "a",))
    monkeypatch.setattr(toolchain, "SEARCH_ROOTS", (tmp_path,))
    assert find_provider_mirror({}) is None
    config = render_cli_config(None)
    assert "direct {}" in config and "filesystem_mirror" not in config


def test_the_cli_config_takes_hashicorp_providers_from_the_mirror_and_others_from_the_registry(tmp_path):
    config = render_cli_config(tmp_path)
    assert f'path    = "{tmp_path}"' in config
    assert config.count('"registry.terraform.io/hashicorp/*"') == 2
    assert "exclude" in config.split("direct")[1]


def test_the_cli_config_turns_terraform_s_checkpoint_call_off(tmp_path):
    for mirror in (None, tmp_path):
        assert "\ndisable_checkpoint = true\n" in render_cli_config(mirror)


def test_print_env_gives_a_shell_everything_the_readme_s_terraform_steps_need(capsys):
    assert toolchain.main(["--print-env"]) == 0
    exports = dict(line.removeprefix("export ").split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert exports == {
        "TF_CLI_CONFIG_FILE": str(toolchain.CLI_CONFIG_PATH),
        "CHECKPOINT_DISABLE": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }


def test_the_written_config_is_what_terraform_env_points_at():
    env = toolchain.terraform_env({"PATH": "/usr/bin"})
    assert env["TF_CLI_CONFIG_FILE"] == str(toolchain.CLI_CONFIG_PATH)
    assert toolchain.CLI_CONFIG_PATH.read_text().startswith("# Written by tooling/toolchain.py")


def test_missing_terraform_says_what_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolchainError, match=r"terraform is not on PATH: install Terraform >= 1.10"):
        check_terraform()


def test_this_machine_has_a_usable_toolchain():
    assert check_terraform().startswith("Terraform v1.")
    assert toolchain.main([]) == 0
