"""``mlinfra platform``: what was detected and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlinfra.cli.main import cli
from mlinfra.core.platforms import SIGNALS

_ALL = [name for _, names in SIGNALS for name in names]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*_ALL, "MLINFRA_PLATFORM", "MLINFRA_PROJECT_ROOT"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_local_in_a_project(clean_env: pytest.MonkeyPatch, example_project: Path) -> None:
    clean_env.chdir(example_project)
    result = CliRunner().invoke(cli, ["platform"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "platform: local"
    assert lines[1].startswith("why: neither MLINFRA_PLATFORM nor any runtime signal")
    assert "  colab: none set" in lines
    assert f"outputs root: {example_project.resolve()}/outputs" in lines
    assert "drive backup root: /content/drive/MyDrive/resume-ner (not mounted)" in lines
    assert "platform job: no" in lines


@pytest.mark.parametrize(
    ("variable", "platform", "outputs"),
    [
        ("COLAB_RELEASE_TAG", "colab", "/content/outputs"),
        ("KAGGLE_KERNEL_RUN_TYPE", "kaggle", "/kaggle/working/outputs"),
        ("AZUREML_RUN_ID", "azureml", "/mnt/outputs"),
    ],
)
def test_each_platform_says_why(
    clean_env: pytest.MonkeyPatch, example_project: Path, variable: str, platform: str, outputs: str
) -> None:
    clean_env.chdir(example_project)
    clean_env.setenv(variable, "x")
    result = CliRunner().invoke(cli, ["platform"])
    assert result.exit_code == 0, result.stderr
    assert f"platform: {platform}\nwhy: {variable} set" in result.stdout
    assert f"  {platform}: {variable} set" in result.stdout
    assert f"outputs root: {outputs}" in result.stdout
    assert f"platform job: {'yes' if platform == 'azureml' else 'no'}" in result.stdout


def test_override_outside_a_project(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    clean_env.setenv("MLINFRA_PLATFORM", "kaggle")
    result = CliRunner().invoke(cli, ["platform"])
    assert result.exit_code == 0, result.stderr
    assert "why: MLINFRA_PLATFORM=kaggle overrides detection" in result.stdout
    assert "project: none (no mlinfra project at or above" in result.stdout


def test_bad_override_exits_1(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    clean_env.setenv("MLINFRA_PLATFORM", "azure")
    result = CliRunner().invoke(cli, ["platform"])
    assert result.exit_code == 1
    assert "did you mean 'azureml'" in result.stderr
    assert "or unset MLINFRA_PLATFORM" in result.stderr
