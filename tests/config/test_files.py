from __future__ import annotations

from pathlib import Path

import pytest

from mlinfra.config import (
    MlflowConfig,
    NamingConfig,
    PathsConfig,
    TagsConfig,
    load_infra_config,
)
from mlinfra.errors import ConfigError, ConfigErrorGroup


def test_example_library_files_validate(config_dir: Path) -> None:
    paths = load_infra_config(config_dir, "paths", environ={})
    assert isinstance(paths, PathsConfig)
    assert paths.patterns["hpo"] == "{backbone}[/study_{study_hash}]"
    assert paths.drive is not None and paths.drive.backup_base_dir == "resume-ner"
    assert set(paths.env_overrides) == {"colab", "kaggle", "azureml"}
    naming = load_infra_config(config_dir, "naming", environ={})
    assert isinstance(naming, NamingConfig)
    assert naming.run_names["hpo_trial"].components["trial_number"].zero_pad == 2
    assert naming.validation.max_length == 250
    tags = load_infra_config(config_dir, "tags", environ={})
    assert isinstance(tags, TagsConfig)
    assert tags.sections()["grouping"]["run_key_hash"] == "code.run_key_hash"
    mlflow_cfg = load_infra_config(config_dir, "mlflow", environ={})
    assert isinstance(mlflow_cfg, MlflowConfig)
    assert mlflow_cfg.naming.project_name == "resume-ner"
    assert mlflow_cfg.azure_ml.workspace_name == "resume-ner-ws"


def test_models_are_frozen(config_dir: Path) -> None:
    paths = load_infra_config(config_dir, "paths", environ={})
    with pytest.raises(ValueError, match="frozen"):
        paths.project = None  # type: ignore[assignment,misc]


def test_env_interpolation_inside_library_file(config_dir: Path) -> None:
    cfg = load_infra_config(config_dir, "mlflow", environ={"AZURE_WORKSPACE_NAME": "prod-ws"})
    assert cfg.azure_ml.workspace_name == "prod-ws"


def test_platform_vocabulary_is_enforced(config_dir: Path) -> None:
    path = config_dir / "paths.yaml"
    path.write_text(path.read_text().replace("  azureml:\n", "  azure:\n"))
    with pytest.raises(ConfigError) as info:
        load_infra_config(config_dir, "paths", environ={})
    assert info.value.key == "env_overrides.azure"
    assert "'local', 'colab', 'kaggle' or 'azureml'" in info.value.reason


def test_unknown_key_in_library_file_is_an_error(config_dir: Path) -> None:
    path = config_dir / "mlflow.yaml"
    path.write_text(path.read_text() + "trackng_uri: sqlite:///x.db\n")
    with pytest.raises(ConfigError) as info:
        load_infra_config(config_dir, "mlflow", environ={})
    assert info.value.key == "trackng_uri"
    assert "tracking_uri" in info.value.reason  # the allowed keys are listed


def test_bad_pattern_placeholder(config_dir: Path) -> None:
    path = config_dir / "naming.yaml"
    text = path.read_text().replace("_t{trial_number}{version}", "_t{trial_number:02d}{version}", 1)
    path.write_text(text)
    with pytest.raises(ConfigError, match="not a plain name") as info:
        load_infra_config(config_dir, "naming", environ={})
    assert info.value.key == "run_names.hpo_trial.pattern"
    assert info.value.line == 5


def test_several_problems_are_listed_together(config_dir: Path) -> None:
    (config_dir / "tags.yaml").write_text("schema_version: 3\ngrouping: {a: 'bad key!'}\n")
    with pytest.raises(ConfigError) as info:
        load_infra_config(config_dir, "tags", environ={})
    err = info.value
    problems = err.errors if isinstance(err, ConfigErrorGroup) else [err]
    assert problems[0].key == "schema_version"


def test_missing_library_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"paths\.yaml not found"):
        load_infra_config(tmp_path, "paths", environ={})


def test_unknown_library_file_name(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="known: paths, naming, tags, mlflow"):
        load_infra_config(config_dir, "other", environ={})  # type: ignore[call-overload]


def test_bad_tag_key_is_located(config_dir: Path) -> None:
    path = config_dir / "tags.yaml"
    path.write_text(path.read_text().replace("code.study_key_hash", "code.study key hash!"))
    with pytest.raises(ConfigError) as info:
        load_infra_config(config_dir, "tags", environ={})
    assert info.value.key == "grouping.study_key_hash"
    assert info.value.line == 4
    assert "'code.study key hash!'" in info.value.reason
