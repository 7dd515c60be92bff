"""AzureML command jobs for mlinfra stages, built from the experiment configuration.

A stage whose experiment entry has an ``entrypoint`` runs as ``mlinfra run STAGE``; any other
stage is a sweep and runs as ``mlinfra hpo``. The job gets:

* the project folder as its code (AzureML skips what ``.amlignore``/``.gitignore`` list);
* the compute cluster ``env.compute.cluster`` and the environment ``env.environment`` of the env
  config (``env=azure`` by default: ``config/env/azure.yaml``), named ``name:v<hash>``;
* the dataset as an input (the data asset ``azureml:<data.name>:<data.version>``, mounted
  read-only), passed to mlinfra as ``data.local_path=${{inputs.data}}``;
* environment variables: ``MLINFRA_PLATFORM=azureml``, and when configured the shared study
  storage (``MLINFRA_HPO_STORAGE``), registry (``MLINFRA_REGISTRY_URL``) and a tracking server
  (``MLFLOW_TRACKING_URI``; without one, mlinfra tracks to the workspace);
* a display name from the naming policy, and an AzureML experiment per stage.

``workers=N`` gives N identical jobs of one study. They share its storage and the registry, so
both must be database URLs every job reaches (PostgreSQL); a SQLite file would be private to each
job, and that is refused. Everything here is computed offline; only :func:`build_command_job`
needs the Azure SDK.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mlinfra.azureml._sdk import azure_ml, quiet_sdk
from mlinfra.azureml.environment import EnvironmentSpec, build_environment
from mlinfra.config import Project, compose_experiment
from mlinfra.core.redact import hide_password
from mlinfra.errors import ConfigError

__all__ = [
    "DATA_INPUT",
    "DataInput",
    "StageJobPlan",
    "build_command_job",
    "build_stage_jobs",
    "job_to_yaml",
    "plan_stage_jobs",
]

#: The name of the dataset input of a stage job (``${{inputs.data}}`` in its command).
DATA_INPUT = "data"
_PLATFORM = "azureml"
_LOCAL_SCHEMES = ("sqlite:", "file:")
_REMOTE_TRACKING = ("http://", "https://", "azureml:", "databricks", "postgresql", "mysql", "mssql")


@dataclass(frozen=True)
class DataInput:
    """A job input: an AzureML data asset, mounted read-only by default."""

    path: str
    type: str = "uri_folder"
    mode: str = "ro_mount"


@dataclass(frozen=True)
class StageJobPlan:
    """Everything one stage job holds, resolved from configuration without the Azure SDK.

    Attributes:
        experiment: The mlinfra experiment.
        stage: The stage.
        kind: ``hpo`` (``mlinfra hpo``) or ``run`` (``mlinfra run STAGE``).
        command: The shell command the job runs.
        code: The folder uploaded as the job's code (the project root).
        compute: The compute cluster.
        environment: The job's environment.
        inputs: Input name → data asset.
        environment_variables: Variables set in the job.
        display_name: The job's display name (from the naming policy).
        experiment_name: The AzureML experiment.
        worker: This job's number among ``workers`` (0-based).
        workers: How many jobs the stage was split into.
        tags: AzureML tags.
    """

    experiment: str
    stage: str
    kind: Literal["hpo", "run"]
    command: str
    code: Path
    compute: str
    environment: EnvironmentSpec
    inputs: Mapping[str, DataInput]
    environment_variables: Mapping[str, str]
    display_name: str
    experiment_name: str
    worker: int = 0
    workers: int = 1
    tags: Mapping[str, str] = field(default_factory=dict)


def _is_shared_url(url: str | None) -> bool:
    return bool(url) and not str(url).startswith(_LOCAL_SCHEMES)


def _stage_kind(resolved: Any, stage: str) -> Literal["hpo", "run"]:
    """``run`` for a stage with an entry point, a process type, or a name that implies one
    (``training``); else ``hpo``.

    Raises:
        ConfigError: a ``run`` stage without an entry point (``mlinfra run`` would refuse it).
    """
    from mlinfra.errors import NamingError
    from mlinfra.naming import process_type_for_stage

    spec = resolved.experiment.stages.get(stage)
    try:
        implied: str | None = process_type_for_stage(stage)
    except NamingError:
        implied = None
    is_run = spec is not None and bool(spec.entrypoint or spec.process_type)
    if not is_run and implied not in (None, "hpo"):
        is_run = True
    if is_run and (spec is None or not spec.entrypoint):
        raise ConfigError(
            f"stage {stage!r} runs `mlinfra run {stage}`, which needs an entry point: add "
            f"'entrypoint: package.module:function' to stages.{stage} in "
            f"{resolved.experiment.file.name}",
            key=f"stages.{stage}.entrypoint",
        )
    return "run" if is_run else "hpo"


def _section(values: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    found = values.get(key)
    return found if isinstance(found, Mapping) else {}


def _experiment_name(resolved: Any, experiment: str, stage: str, model: str) -> str:
    from mlinfra.naming import build_aml_experiment_name

    spec = resolved.experiment.stages.get(stage)
    with_model = resolved.experiment.naming.include_backbone_in_experiment
    if spec is not None and spec.aml_experiment:
        return f"{spec.aml_experiment}-{model}" if with_model else str(spec.aml_experiment)
    return build_aml_experiment_name(experiment, stage, model if with_model else None)


def _display_name(
    project: Project,
    experiment: str,
    stage: str,
    overrides: Sequence[str],
    kind: str,
    process: str | None,
    model: str,
) -> tuple[str, dict[str, str]]:
    """The naming policy's name for the stage's run (without a version), and identity tags."""
    from mlinfra.naming import create_naming_context, format_run_name, load_naming_policy

    policy = load_naming_policy(project.config_dir, environ=project.environ)
    if kind == "hpo":
        from mlinfra.hpo.runner import locate_study

        where = locate_study(
            project, experiment, stage=stage, overrides=overrides, platform=_PLATFORM
        )
        name = format_run_name(where.context, policy)
        return name, {"mlinfra.study_key_hash": where.study_key_hash}
    if process in (None, "final_training"):
        from mlinfra.fingerprints import fingerprint_experiment

        fps = fingerprint_experiment(
            project.config_dir,
            experiment,
            stage=stage,
            overrides=overrides,
            root_dir=project.root,
            environ=project.environ,
        )
        context = create_naming_context(
            process_type="final_training",
            model=model,
            environment=_PLATFORM,
            stage=stage,
            spec_fp=fps.spec,
            exec_fp=fps.exec,
        )
        return format_run_name(context, policy), {"mlinfra.spec_fp": fps.spec}
    # benchmarking and conversion runs are named from the parent they pick when they run
    return f"{_PLATFORM}_{model}_{stage}", {}


def plan_stage_jobs(
    project: Project,
    experiment: str,
    stage: str,
    *,
    workers: int = 1,
    overrides: Sequence[str] = (),
    env: str | None = "azure",
    compute: str | None = None,
    data_input: bool = True,
) -> list[StageJobPlan]:
    """Resolve the job(s) of one stage from the configuration; nothing is contacted.

    Args:
        project: The project.
        experiment: The experiment name.
        stage: The stage to run.
        workers: For a sweep, how many jobs work on the study together.
        overrides: Config overrides, applied here and passed on to the job's command.
        env: The env config to use (``config/env/<env>.yaml``, selected with the override
            ``env=<env>`` here and in the job); ``None`` keeps the experiment's own.
        compute: The compute cluster (default: ``env.compute.cluster``).
        data_input: Mount the data asset ``azureml:<data.name>:<data.version>`` as the dataset.

    Raises:
        ConfigError: invalid configuration, no compute, a missing conda file, or ``workers > 1``
            without a shared (database) study storage and registry.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}", key="workers")
    all_overrides = ((f"env={env}",) if env else ()) + tuple(overrides)
    resolved = compose_experiment(
        project.config_dir,
        experiment,
        stage=stage,
        overrides=all_overrides,
        environ=project.environ,
    )
    values = resolved.to_dict()
    kind = _stage_kind(resolved, stage)
    if kind == "run" and workers > 1:
        raise ConfigError(
            f"stage {stage!r} runs `mlinfra run`, which is one job; --workers is for sweeps",
            key="workers",
        )
    env_values = _section(values, "env")
    cluster = compute or _section(env_values, "compute").get("cluster")
    if not isinstance(cluster, str) or not cluster.strip():
        raise ConfigError(
            "no compute cluster for the job: set compute.cluster in the env config "
            f"({resolved.experiment.env_config.name}), choose an env config that has one "
            "(--env azure), or pass --compute",
            key="env.compute.cluster",
        )
    environment = EnvironmentSpec.from_config(
        _section(env_values, "environment"), base_dir=project.config_dir, key="env.environment"
    )
    model = resolved.experiment.model_config.stem

    variables = {"MLINFRA_PLATFORM": _PLATFORM}
    shared = project.mlflow.shared
    database = project.environ.get("MLINFRA_DATABASE_URL") or shared.database
    tracking = (
        project.environ.get("MLFLOW_TRACKING_URI")
        or project.mlflow.tracking_uri
        or shared.tracking_uri
    )
    if tracking and str(tracking).startswith(_REMOTE_TRACKING):
        variables["MLFLOW_TRACKING_URI"] = str(tracking)
    # the same precedence as on a workstation (docs/scale-out.md): specific before shared
    registry = (
        project.environ.get("MLINFRA_REGISTRY_URL") or project.mlflow.registry.url or database
    )
    storage: str | None = None
    if kind == "hpo":
        hpo = _section(values, "hpo")
        storage = (
            project.environ.get("MLINFRA_HPO_STORAGE")
            or _section(hpo, "storage").get("url")
            or database
        )
    if workers > 1:
        missing = []
        if not _is_shared_url(storage):
            missing.append(
                "the study storage (hpo.storage.url or MLINFRA_HPO_STORAGE) "
                + (f"is {hide_password(str(storage))}" if storage else "is not set")
            )
        if not _is_shared_url(registry):
            missing.append(
                "the registry (registry.url in mlflow.yaml or MLINFRA_REGISTRY_URL) "
                + (f"is {hide_password(str(registry))}" if registry else "is not set")
            )
        if missing:
            raise ConfigError(
                f"--workers {workers} runs {workers} jobs on one study, so they need a study "
                "storage and a registry every job reaches: a database URL such as "
                "postgresql+psycopg://user:password@host/db. A SQLite file would be private to "
                "each job. Now " + "; ".join(missing),
                key="hpo.storage.url",
            )
    if _is_shared_url(storage):
        variables["MLINFRA_HPO_STORAGE"] = str(storage)
    if _is_shared_url(registry):
        variables["MLINFRA_REGISTRY_URL"] = str(registry)

    inputs: dict[str, DataInput] = {}
    job_overrides = list(all_overrides)
    if data_input:
        data = _section(values, "data")
        name, version = data.get("name"), data.get("version")
        if not name or version is None:
            raise ConfigError(
                "the data config needs 'name' and 'version' to mount its data asset "
                "(azureml:<name>:<version>), or submit with data_input=False (--no-data-input)",
                key="data.name",
            )
        inputs[DATA_INPUT] = DataInput(path=f"azureml:{name}:{version}")
        prefix = "" if "local_path" in data else "+"
        job_overrides.append(f"{prefix}data.local_path=${{{{inputs.{DATA_INPUT}}}}}")

    if kind == "hpo":
        argv = ["mlinfra", "hpo", "--experiment", experiment, "--stage", stage]
        argv += ["--platform", _PLATFORM, "--no-progress"]
    else:
        argv = ["mlinfra", "run", stage, "--experiment", experiment, "--platform", _PLATFORM]
    command = shlex.join([*argv, *job_overrides])

    spec = resolved.experiment.stages.get(stage)
    process = spec.process_type if spec is not None else None
    display, identity = _display_name(
        project, experiment, stage, all_overrides, kind, process, model
    )
    exp_name = _experiment_name(resolved, experiment, stage, model)
    plans = []
    for worker in range(workers):
        tags = {"mlinfra.experiment": experiment, "mlinfra.stage": stage, **identity}
        name = display
        if workers > 1:
            tags["mlinfra.worker"] = f"{worker + 1}/{workers}"
            name = f"{display}_w{worker + 1}of{workers}"
        plans.append(
            StageJobPlan(
                experiment=experiment,
                stage=stage,
                kind=kind,
                command=command,
                code=project.root,
                compute=cluster.strip(),
                environment=environment,
                inputs=dict(inputs),
                environment_variables=dict(variables),
                display_name=name,
                experiment_name=exp_name,
                worker=worker,
                workers=workers,
                tags=tags,
            )
        )
    return plans


def build_command_job(plan: StageJobPlan) -> Any:
    """The ``azure.ai.ml`` command job of ``plan`` (built offline; submit it with
    :func:`~mlinfra.azureml.submit_and_wait_for_job`).

    Raises:
        MissingDependencyError: the ``azure`` extra is not installed.
    """
    ml = azure_ml()
    with quiet_sdk():
        inputs = {
            name: ml.Input(type=item.type, path=item.path, mode=item.mode)
            for name, item in plan.inputs.items()
        }
        return ml.command(
            command=plan.command,
            code=str(plan.code),
            environment=build_environment(plan.environment),
            compute=plan.compute,
            inputs=inputs or None,
            environment_variables=dict(plan.environment_variables),
            display_name=plan.display_name,
            experiment_name=plan.experiment_name,
            tags=dict(plan.tags),
        )


def build_stage_jobs(
    project: Project,
    experiment: str,
    stage: str,
    *,
    workers: int = 1,
    overrides: Sequence[str] = (),
    env: str | None = "azure",
    compute: str | None = None,
    data_input: bool = True,
) -> list[Any]:
    """The command job(s) of one stage: :func:`plan_stage_jobs`, then :func:`build_command_job`.

    Raises:
        MissingDependencyError: the ``azure`` extra is not installed (checked first).
        ConfigError: as :func:`plan_stage_jobs`.
    """
    azure_ml()
    plans = plan_stage_jobs(
        project,
        experiment,
        stage,
        workers=workers,
        overrides=overrides,
        env=env,
        compute=compute,
        data_input=data_input,
    )
    return [build_command_job(plan) for plan in plans]


def job_to_yaml(job: Any, *, redact: bool = True) -> str:
    """The job as the YAML ``az ml job create --file`` reads, for review and tests.

    A command built with ``azure.ai.ml.command`` is turned into its job first (``_to_job()``),
    whose ``_to_dict()`` holds every field (display and experiment name, tags, compute, command,
    code, environment, variables, inputs). With ``redact`` the password of every URL-valued
    environment variable is replaced by ``***``.
    """
    with quiet_sdk():
        to_job = getattr(job, "_to_job", None)
        data = _plain((to_job() if callable(to_job) else job)._to_dict())
    if redact:
        _redact(data)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _plain(data: Any) -> Any:
    """OrderedDicts (and tuples) as plain dicts and lists, which YAML writes without tags."""
    if isinstance(data, Mapping):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_plain(v) for v in data]
    return data


def _redact(data: Any) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "environment_variables" and isinstance(value, dict):
                for name, text in value.items():
                    if isinstance(text, str):
                        value[name] = hide_password(text)
            else:
                _redact(value)
    elif isinstance(data, list):
        for item in data:
            _redact(item)
