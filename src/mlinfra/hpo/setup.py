"""Everything a sweep needs, resolved once per process before its first trial.

:func:`locate_study` finds where an experiment stage's study lives from its configuration alone
(composed config, fingerprints, study key, folder, storage) and creates nothing; :func:`resolve`
adds the objective, the MLflow target and the study folder (a :class:`Sweep`);
:func:`backup_callbacks` turns ``hpo.backup`` into Optuna callbacks.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlinfra.config import HpoSpec, Project, ResolvedConfig, compose_experiment
from mlinfra.errors import ConfigError
from mlinfra.fingerprints import Fingerprints, fingerprint_experiment
from mlinfra.hpo.context import TrialContext
from mlinfra.hpo.study import study_storage_url
from mlinfra.naming import NamingContext, create_naming_context
from mlinfra.naming.experiments import build_mlflow_experiment_name
from mlinfra.naming.keys import compute_study_key_hash
from mlinfra.paths import build_output_path

__all__ = [
    "StudyLocation",
    "Sweep",
    "backup_callbacks",
    "load_entrypoint",
    "locate_study",
    "resolve",
]


def load_entrypoint(
    spec: str, project_root: Path, *, key: str = "entrypoint"
) -> Callable[..., Any]:
    """Import ``package.module:function`` with the project root importable.

    Raises:
        ConfigError: malformed, the module cannot be imported (the import error is the cause),
            the attribute is missing or is not callable.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{key} must be 'package.module:function', got {spec!r}", key=key)
    root = str(project_root)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import {module_name!r} for {key} {spec!r}: {exc}; the module must be "
            f"importable from the project root {project_root}",
            key=key,
        ) from exc
    func = getattr(module, attr, None)
    if func is None:
        raise ConfigError(f"module {module_name!r} has no {attr!r} ({key} {spec!r})", key=key)
    if not callable(func):
        raise ConfigError(f"{spec!r} is not callable ({key})", key=key)
    return func  # type: ignore[no-any-return]


def _model_name(resolved: ResolvedConfig) -> str:
    return resolved.experiment.model_config.stem


@dataclass(frozen=True)
class StudyLocation:
    """Where an experiment stage's study is, computed from its configuration alone.

    Attributes:
        resolved: The composed configuration.
        hpo: Its validated HPO config.
        model: The model name (the model config's file stem).
        fingerprints: The stage's fingerprints (the data fingerprint is part of the study key).
        study_key_hash: The study key.
        context: The sweep's naming context.
        study_dir: The study folder (not created here).
        storage_url: The Optuna storage.
        study_name: The study's name in that storage.
    """

    resolved: ResolvedConfig
    hpo: HpoSpec
    model: str
    fingerprints: Fingerprints
    study_key_hash: str
    context: NamingContext
    study_dir: Path
    storage_url: str
    study_name: str


def locate_study(
    project: Project,
    experiment: str,
    *,
    stage: str | None = None,
    overrides: Sequence[str] = (),
    platform: str = "local",
) -> StudyLocation:
    """Find where the study of an experiment stage lives; creates nothing.

    Raises:
        ConfigError: the configuration is invalid.
        FingerprintError: the data cannot be fingerprinted.
    """
    resolved = compose_experiment(
        project.config_dir, experiment, stage=stage, overrides=overrides, environ=project.environ
    )
    values = resolved.to_dict()
    hpo = HpoSpec.model_validate(values["hpo"])
    model = _model_name(resolved)
    fps = fingerprint_experiment(
        project.config_dir,
        experiment,
        stage=stage,
        overrides=overrides,
        root_dir=project.root,
        environ=project.environ,
    )
    study_key = compute_study_key_hash(
        data=values.get("data") or {},
        hpo=values["hpo"],
        train=values.get("train") or {},
        model=model,
        data_fingerprint=fps.data_hash,
    )
    context = create_naming_context(
        process_type="hpo",
        model=model,
        environment=platform,
        stage="hpo_sweep",
        study_key_hash=study_key,
    )
    study_dir = build_output_path(
        project.root, context, config_dir=project.config_dir, environ=project.environ
    )
    configured = (hpo.model_extra or {}).get("checkpoint", {})
    name = configured.get("study_name") if isinstance(configured, Mapping) else None
    return StudyLocation(
        resolved=resolved,
        hpo=hpo,
        model=model,
        fingerprints=fps,
        study_key_hash=study_key,
        context=context,
        study_dir=study_dir,
        storage_url=study_storage_url(
            hpo, study_dir, project.environ, shared_database=project.mlflow.shared.database
        ),
        study_name=str(name) if name else f"{experiment}-{model}-{study_key[:8]}",
    )


@dataclass
class Sweep:
    """Everything a worker needs, resolved once per process."""

    project: Project
    experiment: str
    stage: str | None
    overrides: tuple[str, ...]
    where: StudyLocation  # config, HPO spec, model, fingerprints, study key, folder, storage
    objective: Callable[[TrialContext], Any]
    target: Any  # TrackingTarget
    platform: str


def resolve(
    project: Project,
    experiment: str,
    stage: str | None,
    overrides: Sequence[str],
    *,
    platform: str,
    registry: Any,
) -> Sweep:
    """The sweep of an experiment stage: its study's location, the objective (imported), the
    MLflow target; creates the study folder.

    Raises:
        ConfigError: the configuration is invalid, or names no importable objective.
    """
    from mlinfra.tracking.mlflow.trackers import project_target

    where = locate_study(project, experiment, stage=stage, overrides=overrides, platform=platform)
    resolved, hpo = where.resolved, where.hpo
    if not hpo.objective.entrypoint:
        source = resolved.source("hpo.objective")
        raise ConfigError(
            "the HPO config names no objective: add 'entrypoint: package.module:function' "
            "under 'objective'",
            file=source.file if source else None,
            line=source.line if source else None,
            key="hpo.objective.entrypoint",
        )
    objective = load_entrypoint(
        hpo.objective.entrypoint, project.root, key="hpo.objective.entrypoint"
    )
    where.study_dir.mkdir(parents=True, exist_ok=True)
    exp_name = build_mlflow_experiment_name(
        experiment,
        "hpo",
        where.model,
        include_backbone=resolved.experiment.naming.include_backbone_in_experiment,
    )
    target = project_target(project, exp_name, platform=platform, registry=registry)
    return Sweep(
        project=project,
        experiment=experiment,
        stage=stage,
        overrides=tuple(overrides),
        where=where,
        objective=objective,
        target=target,
        platform=platform,
    )


def backup_callbacks(sweep: Sweep) -> list[Any]:
    """The Optuna callbacks backing the study folder up (``hpo.backup``), or none.

    Raises:
        ConfigError: backups are enabled with no ``backup.root`` off Colab.
    """
    spec = sweep.where.hpo.backup
    if not spec.enabled:
        return []
    from mlinfra.storage import DriveBackupStore, create_colab_store
    from mlinfra.storage.backup import create_incremental_backup_callback

    if spec.root:
        store: Any = DriveBackupStore(sweep.project.root, spec.root)
    elif sweep.platform == "colab":
        store = create_colab_store(sweep.project.root, sweep.project.config_dir)
    else:
        raise ConfigError(
            "hpo.backup.enabled is true but no backup.root is set (a default exists on Colab "
            "only); set backup.root to a mounted folder",
            key="hpo.backup.root",
        )
    return [
        create_incremental_backup_callback(
            sweep.where.study_dir, store, is_directory=True, every_n_trials=spec.every_n_trials
        )
    ]
