from __future__ import annotations

from pathlib import Path

import pytest

from mlinfra.config import Project
from mlinfra.errors import ConfigError


def test_discovers_from_a_nested_folder(example_project: Path) -> None:
    nested = example_project / "notebooks" / "deep"
    nested.mkdir(parents=True)
    project = Project.discover(nested, environ={})
    assert project.root == example_project.resolve()
    assert project.config_dir == (example_project / "config").resolve()


def test_discovers_from_inside_the_config_folder(example_project: Path) -> None:
    project = Project.discover(example_project / "config" / "hpo", environ={})
    assert project.root == example_project.resolve()


def test_explicit_arguments_win(example_project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    by_root = Project.discover(elsewhere, project=example_project, environ={})
    assert by_root.root == example_project.resolve()
    by_dir = Project.discover(elsewhere, config_dir=example_project / "config", environ={})
    assert by_dir.config_dir == (example_project / "config").resolve()
    by_env = Project.discover(elsewhere, environ={"MLINFRA_PROJECT_ROOT": str(example_project)})
    assert by_env.root == example_project.resolve()


def test_two_projects_never_mix(example_project: Path, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(example_project, other)
    a = Project.discover(example_project, environ={})
    b = Project.discover(other, environ={})
    assert a.root != b.root
    assert Project.discover(example_project, environ={}).root == a.root


def test_nothing_found_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pass --project or --config-dir"):
        Project.discover(tmp_path, environ={})


def test_bad_project_argument(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--project"):
        Project.discover(tmp_path, project=tmp_path, environ={})


def test_library_files_load_lazily_and_once(example_project: Path) -> None:
    project = Project.discover(example_project, environ={})
    assert project.paths.project.name == "resume-ner"
    assert project.paths is project.paths
    assert project.naming.version.separator == "_"
    assert "grouping" in project.tags.sections()
    assert project.mlflow.naming.project_name == "resume-ner"
