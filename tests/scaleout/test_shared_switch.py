"""One switch points the study storage, the registry and tracking at shared services:
``MLINFRA_DATABASE_URL`` + ``MLFLOW_TRACKING_URI``, or ``shared:`` in ``mlflow.yaml``. The
environment beats files; within one source the specific setting beats the shared one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlinfra.config import HpoSpec, Project
from mlinfra.hpo.study import study_storage_url
from mlinfra.registry.location import resolve_registry_url, sqlalchemy_url
from mlinfra.tracking.mlflow.setup import resolve_tracking_uri

DB = "postgresql://u:secret@db.example:5432/mlinfra"
PSY = "postgresql+psycopg://u:secret@db.example:5432/mlinfra"


def _hpo(url: str | None = None) -> HpoSpec:
    spec: dict[str, object] = {"objective": {"metric": "m", "direction": "maximize"}}
    spec.update(search_space={}, sampling={"max_trials": 1})
    spec["storage"] = {"url": url}
    return HpoSpec.model_validate(spec)


def _shared(config_dir: Path, database: str = "", tracking: str = "") -> None:
    path = config_dir / "mlflow.yaml"
    text = path.read_text(encoding="utf-8")
    text += f"shared:\n  database: {database or 'null'}\n  tracking_uri: {tracking or 'null'}\n"
    path.write_text(text, encoding="utf-8")


def test_sqlalchemy_url_gives_postgres_the_psycopg3_driver() -> None:
    assert sqlalchemy_url(DB) == PSY
    assert sqlalchemy_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert sqlalchemy_url("postgresql+psycopg2://h/db") == "postgresql+psycopg2://h/db"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"


def test_study_storage_precedence(tmp_path: Path) -> None:
    env = {"MLINFRA_DATABASE_URL": DB}
    assert study_storage_url(_hpo(), tmp_path, env) == PSY
    assert study_storage_url(
        _hpo(), tmp_path, {**env, "MLINFRA_HPO_STORAGE": "sqlite:///a.db"}
    ) == ("sqlite:///a.db")
    assert study_storage_url(_hpo("sqlite:///b.db"), tmp_path, env) == PSY  # env beats files
    assert study_storage_url(_hpo("sqlite:///b.db"), tmp_path, {}, shared_database=DB) == (
        "sqlite:///b.db"
    )
    assert study_storage_url(_hpo(), tmp_path, {}, shared_database=DB) == PSY
    assert study_storage_url(_hpo(), tmp_path, {}) == f"sqlite:///{tmp_path / 'study.db'}"


def test_registry_precedence(config_dir: Path) -> None:
    root = config_dir.parent
    env = {"MLINFRA_DATABASE_URL": DB}
    assert resolve_registry_url(root, environ=env) == DB
    assert resolve_registry_url(
        root, environ={**env, "MLINFRA_REGISTRY_URL": "sqlite:////r.db"}
    ) == ("sqlite:////r.db")
    assert resolve_registry_url(root, environ={}).endswith("mlinfra_registry.db")
    _shared(config_dir, database=DB)
    assert resolve_registry_url(root, environ={}) == DB


def test_tracking_precedence(config_dir: Path) -> None:
    root = config_dir.parent
    kwargs = {"root": root, "config_dir": config_dir, "platform": "local"}
    _shared(config_dir, database=DB, tracking="http://127.0.0.1:5999")
    assert resolve_tracking_uri(None, environ={}, **kwargs) == ("http://127.0.0.1:5999", "shared")
    env = {"MLFLOW_TRACKING_URI": "http://other:5000"}
    assert resolve_tracking_uri(None, environ=env, **kwargs) == ("http://other:5000", "environment")
    env = {"MLFLOW_TRACKING_URI": DB}
    assert resolve_tracking_uri(None, environ=env, **kwargs) == (PSY, "environment")


def test_shared_section_is_typed_and_interpolated(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _shared(config_dir, database="${SHARED_DB:-postgresql://h/fallback}")
    project = Project.discover(project=config_dir.parent, environ={"SHARED_DB": DB})
    assert project.mlflow.shared.database == DB
    assert project.mlflow.shared.tracking_uri is None
    project = Project.discover(project=config_dir.parent, environ={})
    assert project.mlflow.shared.database == "postgresql://h/fallback"
