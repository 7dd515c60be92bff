"""``mlinfra name``: run names from the command line, and its usage and config errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlinfra.cli.main import cli

STUDY = "350a79aa" + "0" * 56
Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.chdir(example_project)
    for name in ("MLINFRA_PROJECT", "MLINFRA_PROJECT_ROOT", "MLINFRA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    for name in ("COLAB_RELEASE_TAG", "COLAB_GPU", "KAGGLE_KERNEL_RUN_TYPE", "AZUREML_RUN_ID"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, ["name", *args])
        return result.exit_code, result.stdout, result.stderr

    return invoke


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["hpo", "backbone=distilbert", "study_hash=abc123", "--platform", "local"],
            "local_distilbert_hpo_study-abc123",
        ),
        (
            ["hpo_trial", "model=distilbert", f"study_hash={STUDY}", "trial_number=3"],
            "local_distilbert_hpo_trial_study-350a79aa_t03",
        ),
        (
            [
                "hpo_trial",
                "model=distilbert",
                f"study_hash={STUDY}",
                "trial_number=3",
                "fold_idx=1",
            ],
            "local_distilbert_hpo_trial_study-350a79aa_t03_fold1",
        ),
        (
            ["hpo_sweep", "model=distilbert", f"study_key_hash={STUDY}", "--version", "2"],
            "local_distilbert_hpo_study-350a79aa_2",
        ),
        (
            [
                "training",
                "backbone=distilbert-base-uncased",
                "spec_fp=abc123de00",
                "exec_fp=0123abcd00",
                "variant=2",
                "--platform",
                "colab",
            ],
            "colab_distilbert_base_uncased_final_training_spec-abc123de_exec-0123abcd_v2",
        ),
        (
            [
                "conversion",
                "model=distilbert",
                "parent_training_id=spec_81710c33_exec_30fd8453/v1",
                "conv_fp=c0ffee12",
            ],
            "local_distilbert_conversion_spec-81710c33_exec-30fd8453_v1_conv-c0ffee12",
        ),
    ],
)
def test_prints_the_run_name(run: Invoke, args: list[str], expected: str) -> None:
    code, out, err = run(*args)
    assert (code, err) == (0, "")
    assert out == expected + "\n"


def test_the_platform_is_detected(run: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLINFRA_PLATFORM", "kaggle")
    code, out, _ = run("hpo", "model=bert", "study_hash=abc123")
    assert (code, out) == (0, "kaggle_bert_hpo_study-abc123\n")


def test_project_and_config_dir_options(example_project: Path) -> None:
    runner = CliRunner()
    args = ["name", "hpo", "model=bert", "study_hash=abc123", "--platform", "local"]
    for extra in (
        ["--project", str(example_project)],
        ["--config-dir", str(example_project / "config")],
    ):
        result = runner.invoke(cli, [*args, *extra])
        assert (result.exit_code, result.stdout) == (0, "local_bert_hpo_study-abc123\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["warmup", "model=bert"], "unknown process 'warmup'"),
        (["hpo", "model"], "expected KEY=VALUE"),
        (["hpo", "model=bert", "backbone=bert"], "model is given twice"),
        (["hpo", "modle=bert"], "unknown field 'modle'"),
        (["hpo", "model=bert", "process_type=hpo"], "unknown field 'process_type'"),
        (["hpo", "model=bert", "trial_number=three"], "trial_number must be an integer"),
        (["hpo", "model=bert", "--platform", "azure"], "'azure' is not one of"),
        (["hpo", "model=bert", "--version", "0"], "--version"),
        (["hpo", "model=bert", "environment=colab", "--platform", "local"], "not both"),
        (["hpo_trial", "model=bert", "stage=hpo_sweep"], "disagrees with PROCESS"),
    ],
)
def test_usage_errors_exit_2(run: Invoke, args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert message in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hpo", "model=bert"], "needs the context field 'study_key_hash'"),
        (["benchmarking", "model=bert", "study_key_hash=abcdef12"], "needs trial_key_hash"),
        (["hpo", "model=bert", "study_hash=xyz"], "study_key_hash must be a hex digest"),
        (["hpo", "model=a:b", "study_hash=abc123"], "forbidden character ':'"),
        (["benchmarking", "model=bert"], "needs study_key_hash, trial_key_hash"),
        (["hpo_trial", "model=bert", "fold_idx=1", "study_hash=abc123"], "needs trial_number"),
    ],
)
def test_naming_errors_exit_1(run: Invoke, args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert (code, out) == (1, "")
    assert err.startswith("error: ")
    assert message in err


def test_a_broken_naming_yaml_is_reported(run: Invoke, example_project: Path) -> None:
    (example_project / "config" / "naming.yaml").unlink()
    code, _, err = run("hpo", "model=bert", "study_hash=abc123")
    assert code == 1
    assert "naming.yaml not found" in err


def test_no_project_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLINFRA_PROJECT_ROOT", raising=False)
    result = CliRunner().invoke(cli, ["name", "hpo", "model=bert"])
    assert result.exit_code == 1
    assert "no mlinfra project" in result.stderr
