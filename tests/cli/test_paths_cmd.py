"""``mlinfra paths resolve|build|parse`` through click's test runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlinfra.cli.main import cli

STUDY = "350a79aa" + "0" * 56
TRIAL = "747428f2" + "1" * 56


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(example_project)
    monkeypatch.delenv("MLINFRA_PROJECT_ROOT", raising=False)
    monkeypatch.delenv("MLINFRA_PLATFORM", raising=False)
    return example_project.resolve()


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["paths", *args])


# --------------------------------------------------------------------------------------------
# resolve


def test_resolve_prints_the_absolute_folder(project: Path) -> None:
    before = _listing(project)
    result = _run("resolve", "hpo", "backbone=distilbert", "study_hash=abc123")
    assert result.exit_code == 0, result.stderr
    printed = result.stdout.strip()
    assert Path(printed).is_absolute()
    assert printed.endswith("outputs/hpo/distilbert/study_abc123")
    assert Path(printed) == project / "outputs/hpo/distilbert/study_abc123"
    assert result.stderr == ""
    assert _listing(project) == before


def test_resolve_optional_segment(project: Path) -> None:
    result = _run("resolve", "hpo", "backbone=distilbert")
    assert result.exit_code == 0, result.stderr
    assert Path(result.stdout.strip()) == project / "outputs/hpo/distilbert"


@pytest.mark.parametrize(
    ("platform", "base"),
    [
        ("colab", "/content/outputs"),
        ("kaggle", "/kaggle/working/outputs"),
        ("azureml", "/mnt/outputs"),
    ],
)
def test_resolve_platform(project: Path, platform: str, base: str) -> None:
    result = _run(
        "resolve", "hpo", "backbone=distilbert", "study_hash=abc123", "--platform", platform
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{base}/hpo/distilbert/study_abc123"


def test_resolve_from_a_nested_folder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "config" / "hpo")
    result = _run("resolve", "final_training")
    assert result.exit_code == 0, result.stderr
    assert Path(result.stdout.strip()) == project / "outputs/final_training"


def test_resolve_with_project_option(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = _run("resolve", "hpo", "backbone=b", "--project", str(project))
    assert result.exit_code == 0, result.stderr
    assert Path(result.stdout.strip()) == project / "outputs/hpo/b"
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["backbone=../x"], ["'..'", "'backbone'", "{backbone}[/study_{study_hash}]"]),
        (["backbone=/etc"], ["absolute", "'backbone'"]),
        (["backbone=CON"], ["reserved device name"]),
        (["backbone=b", "study_hash=.."], ["'study_hash'", "'..'"]),
        (["study_hash=abc"], ["no value for placeholder(s) backbone", "given: study_hash"]),
        (["backbone=b", "trial=3"], ["trial are not used by patterns.hpo"]),
    ],
)
def test_resolve_bad_value_exits_1_and_creates_nothing(
    project: Path, args: list[str], expected: list[str]
) -> None:
    before = _listing(project)
    result = _run("resolve", "hpo", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    for text in expected:
        assert text in result.stderr, (text, result.stderr)
    assert _listing(project) == before
    assert not (project / "outputs").exists()


def test_resolve_unknown_category_exits_1(project: Path) -> None:
    result = _run("resolve", "modelz")
    assert result.exit_code == 1
    assert "unknown output category 'modelz'" in result.stderr
    assert "hpo" in result.stderr


def test_resolve_malformed_assignment_exits_1(project: Path) -> None:
    result = _run("resolve", "hpo", "backbone")
    assert result.exit_code == 1
    assert "expected KEY=VALUE, got 'backbone'" in result.stderr
    result = _run("resolve", "hpo", "=x")
    assert result.exit_code == 1
    assert "expected KEY=VALUE" in result.stderr


def test_resolve_duplicate_assignment_exits_1(project: Path) -> None:
    result = _run("resolve", "hpo", "backbone=a", "backbone=b")
    assert result.exit_code == 1
    assert "backbone is given twice" in result.stderr


@pytest.mark.parametrize("option", ["storage_env", "subcategory", "paths", "environ"])
def test_resolve_refuses_option_names_as_placeholders(project: Path, option: str) -> None:
    result = _run("resolve", "hpo", "backbone=b", f"{option}=colab")
    assert result.exit_code == 1
    assert f"{option} is an option, not a placeholder" in result.stderr


@pytest.mark.parametrize("name", ["category", "root_dir", "config_dir"])
def test_resolve_refuses_parameter_names_as_placeholders(project: Path, name: str) -> None:
    result = _run("resolve", "hpo", "backbone=b", f"{name}=x")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert name in result.stderr


@pytest.mark.parametrize("bad", ["azure", "gcp"])
def test_unknown_platform_exits_2(project: Path, bad: str) -> None:
    result = _run("resolve", "hpo", "backbone=b", "--platform", bad)
    assert result.exit_code == 2
    assert "--platform" in result.stderr
    assert "azureml" in result.stderr
    build = _run("build", "hpo", "model=b", f"study_key_hash={STUDY}", "--platform", bad)
    assert build.exit_code == 2


# --------------------------------------------------------------------------------------------
# build


def test_build_hpo_trial(project: Path) -> None:
    before = _listing(project)
    result = _run(
        "build",
        "hpo",
        "model=distilbert",
        f"study_key_hash={STUDY}",
        f"trial_key_hash={TRIAL}",
        "trial_number=3",
    )
    assert result.exit_code == 0, result.stderr
    assert Path(result.stdout.strip()) == (
        project / "outputs/hpo/local/distilbert/study-350a79aa/trial-747428f2"
    )
    assert _listing(project) == before


def test_build_platform(project: Path) -> None:
    result = _run(
        "build", "benchmarking", "model=distilbert", f"study_key_hash={STUDY}",
        f"trial_key_hash={TRIAL}", "--platform", "kaggle",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == (
        "/kaggle/working/outputs/benchmarking/kaggle/distilbert/study-350a79aa/trial-747428f2"
    )


def test_build_final_training_variant(project: Path) -> None:
    result = _run(
        "build", "final_training", "model=microsoft/deberta-v3-base",
        f"spec_fp={STUDY}", f"exec_fp={TRIAL}", "variant=4",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert Path(result.stdout.strip()) == project / (
        "outputs/final_training/local/microsoft_deberta-v3-base/spec-350a79aa_exec-747428f2/v4"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model=distilbert", "trial_number=three"], "trial_number must be an integer"),
        (["model=distilbert", "trial_number=-1"], "trial_number must be an integer of at least 0"),
        (["model=distilbert", "study_key_hash=xyz"], "study_key_hash must be a hex digest"),
        (["model=distilbert"], "needs study8"),
        (["model=../../etc", f"study_key_hash={STUDY}"], "'..'"),
        (["model=distilbert", "colour=blue"], "unknown naming field(s) colour"),
        (["study_key_hash=" + STUDY], "needs a model"),
    ],
)
def test_build_bad_input_exits_1(project: Path, args: list[str], expected: str) -> None:
    before = _listing(project)
    result = _run("build", "hpo", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert expected in result.stderr, result.stderr
    assert _listing(project) == before


def test_build_unknown_process_exits_1(project: Path) -> None:
    result = _run("build", "training_run", "model=distilbert")
    assert result.exit_code == 1
    assert "unknown process type 'training_run'" in result.stderr


def test_build_malformed_assignment_exits_1(project: Path) -> None:
    result = _run("build", "hpo", "model")
    assert result.exit_code == 1
    assert "expected KEY=VALUE, got 'model'" in result.stderr


@pytest.mark.parametrize("name", ["process_type", "environment"])
def test_build_refuses_parameter_names_as_fields(project: Path, name: str) -> None:
    result = _run("build", "hpo", "model=b", f"study_key_hash={STUDY}", f"{name}=hpo")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert name in result.stderr


# --------------------------------------------------------------------------------------------
# parse


def test_parse_v2_folder(project: Path) -> None:
    result = _run("parse", "outputs/hpo/local/distilbert/study-350a79aa/trial-747428f2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "kind: hpo",
        "category: hpo",
        "storage_env: local",
        "model: distilbert",
        "study8: 350a79aa",
        "trial8: 747428f2",
    ]


def test_parse_what_build_printed(project: Path) -> None:
    built = _run(
        "build", "hpo_refit", "model=distilbert", f"study_key_hash={STUDY}",
        f"trial_key_hash={TRIAL}", "--platform", "colab",
    )  # fmt: skip
    assert built.exit_code == 0, built.stderr
    parsed = _run("parse", built.stdout.strip())
    assert parsed.exit_code == 0, parsed.stderr
    assert "kind: hpo_refit" in parsed.stdout
    assert "storage_env: colab" in parsed.stdout


def test_parse_category_folder(project: Path) -> None:
    resolved = _run("resolve", "hpo", "backbone=distilbert", "study_hash=abc123")
    result = _run("parse", resolved.stdout.strip())
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "kind: category",
        "category: hpo",
        "backbone: distilbert",
        "study_hash: abc123",
    ]


def test_parse_foreign_folder_exits_1(project: Path) -> None:
    result = _run("parse", "somewhere/else")
    assert result.exit_code == 1
    assert "is not an output folder" in result.stderr
    assert result.stdout == ""
