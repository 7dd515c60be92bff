"""Stage jobs are real azure-ai-ml entities, built offline and read back from their YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlinfra.azureml import (
    build_stage_jobs,
    compute_environment_hash,
    job_to_yaml,
    plan_stage_jobs,
)
from mlinfra.config import Project
from mlinfra.errors import ConfigError

EXP = "resume_ner_baseline"
PG_STORAGE = "postgresql+psycopg://optuna:s3cret@db.internal/optuna"
PG_REGISTRY = "postgresql+psycopg://reg:s3cret@db.internal/registry"


def _project(root: Path, **environ: str) -> Project:
    return Project.discover(project=root, environ=environ)


def _spec(job: Any) -> dict[str, Any]:
    return yaml.safe_load(job_to_yaml(job))  # type: ignore[no-any-return]


def test_hpo_stage_job(aml_project: Path) -> None:
    (job,) = build_stage_jobs(_project(aml_project), EXP, "hpo")
    spec = _spec(job)
    assert spec["type"] == "command"
    assert spec["command"] == (
        "mlinfra hpo --experiment resume_ner_baseline --stage hpo --platform azureml "
        "--no-progress env=azure 'data.local_path=${{inputs.data}}'"
    )
    assert spec["compute"] == "azureml:cpu-cluster"
    assert Path(spec["code"]) == aml_project
    env = spec["environment"]
    conda = yaml.safe_load((aml_project / "config/environment/conda.yaml").read_text())
    assert env["name"] == "resume-ner-training"
    assert env["version"] == "v" + compute_environment_hash(conda, env["image"])
    assert env["image"] == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"
    assert env["conda_file"] == conda
    assert spec["inputs"]["data"] == {
        "type": "uri_folder",
        "path": "azureml:resume_tiny:1.0",
        "mode": "ro_mount",
    }
    assert spec["environment_variables"] == {"MLINFRA_PLATFORM": "azureml"}
    assert spec["display_name"].startswith("azureml_distilbert_hpo_study-")
    assert spec["experiment_name"] == "resume-ner-hpo-distilbert"
    assert spec["tags"]["mlinfra.stage"] == "hpo"


def test_workers_share_the_study_storage_and_registry(aml_project: Path) -> None:
    project = _project(
        aml_project,
        MLINFRA_HPO_STORAGE=PG_STORAGE,
        MLINFRA_REGISTRY_URL=PG_REGISTRY,
        MLFLOW_TRACKING_URI="https://mlflow.internal",
    )
    jobs = build_stage_jobs(project, EXP, "hpo", workers=3, overrides=["hpo=smoke"])
    assert len(jobs) == 3
    for job in jobs:  # the entities hold the real URLs
        assert job.environment_variables == {
            "MLINFRA_PLATFORM": "azureml",
            "MLFLOW_TRACKING_URI": "https://mlflow.internal",
            "MLINFRA_HPO_STORAGE": PG_STORAGE,
            "MLINFRA_REGISTRY_URL": PG_REGISTRY,
        }
    specs = [_spec(job) for job in jobs]
    assert len({s["command"] for s in specs}) == 1
    assert specs[0]["command"].endswith("env=azure hpo=smoke 'data.local_path=${{inputs.data}}'")
    assert [s["tags"]["mlinfra.worker"] for s in specs] == ["1/3", "2/3", "3/3"]
    assert len({s["display_name"] for s in specs}) == 3
    # the YAML shown by --dry-run hides passwords
    variables = specs[0]["environment_variables"]
    assert variables["MLINFRA_HPO_STORAGE"] == "postgresql+psycopg://optuna:***@db.internal/optuna"
    assert "s3cret" not in job_to_yaml(jobs[0])


def test_workers_without_database_storage_are_refused(aml_project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_stage_jobs(_project(aml_project), EXP, "hpo", workers=2)
    text = str(caught.value)
    assert "database URL" in text and "study storage" in text and "registry" in text

    only_storage = _project(aml_project, MLINFRA_HPO_STORAGE=PG_STORAGE)
    with pytest.raises(ConfigError, match="registry") as caught:
        plan_stage_jobs(only_storage, EXP, "hpo", workers=2)
    assert "study storage (" not in str(caught.value)

    sqlite = _project(
        aml_project,
        MLINFRA_HPO_STORAGE="sqlite:////tmp/study.db",
        MLINFRA_REGISTRY_URL=PG_REGISTRY,
    )
    with pytest.raises(ConfigError, match=r"is sqlite:////tmp/study\.db"):
        plan_stage_jobs(sqlite, EXP, "hpo", workers=2)


def test_run_stage_job(aml_project: Path) -> None:
    experiment = aml_project / "config/experiment/resume_ner_baseline.yaml"
    text = experiment.read_text().replace(
        "  training:\n", "  training:\n    entrypoint: resume_ner.train:train\n"
    )
    experiment.write_text(text)
    (job,) = build_stage_jobs(_project(aml_project), EXP, "training", compute="gpu-cluster")
    spec = _spec(job)
    assert spec["command"].startswith(
        "mlinfra run training --experiment resume_ner_baseline --platform azureml env=azure"
    )
    assert spec["compute"] == "azureml:gpu-cluster"
    assert spec["display_name"].startswith("azureml_distilbert_final_training_spec-")
    assert spec["experiment_name"] == "resume-ner-train-distilbert"
    with pytest.raises(ConfigError, match="one job"):
        plan_stage_jobs(_project(aml_project), EXP, "training", workers=2)


def test_a_training_stage_without_entrypoint_is_refused(aml_project: Path) -> None:
    with pytest.raises(ConfigError, match="needs an entry point"):
        plan_stage_jobs(_project(aml_project), EXP, "training")


def test_missing_compute_and_conda_file_are_named(aml_project: Path) -> None:
    with pytest.raises(ConfigError, match="--compute") as caught:
        plan_stage_jobs(_project(aml_project), EXP, "hpo", env=None)
    assert caught.value.key == "env.compute.cluster"
    (aml_project / "config/environment/conda.yaml").unlink()
    with pytest.raises(ConfigError, match="conda file") as caught:
        plan_stage_jobs(_project(aml_project), EXP, "hpo")
    assert caught.value.key == "env.environment.conda_file"


def test_without_data_input(aml_project: Path) -> None:
    (plan,) = plan_stage_jobs(_project(aml_project), EXP, "hpo", data_input=False)
    assert plan.inputs == {} and "inputs.data" not in plan.command


def test_environment_hash_follows_content() -> None:
    a = compute_environment_hash({"dependencies": ["python=3.11"]}, "img:1")
    assert a == compute_environment_hash({"dependencies": ["python=3.11"]}, "img:1")
    assert len(a) == 16
    assert a != compute_environment_hash({"dependencies": ["python=3.12"]}, "img:1")
    assert a != compute_environment_hash({"dependencies": ["python=3.11"]}, "img:2")


def test_cli_dry_run_prints_the_job_yaml(
    aml_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from mlinfra.cli.main import cli

    monkeypatch.chdir(aml_project)
    monkeypatch.delenv("MLINFRA_PROJECT_ROOT", raising=False)
    result = CliRunner().invoke(
        cli, ["azureml", "submit", "-s", "smoke", "--dry-run", "--no-data-input"]
    )
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(result.stdout)
    assert spec["command"].startswith("mlinfra hpo --experiment resume_ner_baseline --stage smoke")
    assert spec["experiment_name"] == "resume-ner-smoke-distilbert"
    assert "nothing submitted" in result.stderr
