"""``mlinfra run STAGE``: run one stage's entry point under the same identity machinery as a sweep.

A stage of the experiment file names its function and, optionally, its process type and run
mode::

    stages:
      final_training:
        entrypoint: resume_ner.train:train      # def train(ctx: StageContext) -> metrics
        run_mode: reuse_if_exists               # or force_new, resume_if_incomplete
      benchmarking:
        entrypoint: resume_ner.bench:benchmark
        source_stage: hpo                       # benchmark the best trial of this stage's study

Identity, by process type (``process_type``, default: implied by the stage name):

* ``final_training``: the stage's ``spec_fp`` and ``exec_fp`` and a variant number;
* ``conversion``: the newest finished final training with the same ``spec_fp`` (its
  ``spec_fp``/``exec_fp``/variant), and ``conv_fp`` from them and the stage's config;
* ``benchmarking``: the best trial of the study of ``source_stage`` (default ``hpo``).

Run modes (the specification's): ``reuse_if_exists`` (default) does nothing when a finished
output with the same identity exists, and starts the next variant otherwise; ``force_new`` always
starts the next variant; ``resume_if_incomplete`` reruns the newest variant in its own folder and
MLflow run when it did not finish, and does nothing when it did. Variant numbers come from the
registry, so two processes never get the same one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlinfra.config import Project, compose_experiment
from mlinfra.config.models import StageSpec
from mlinfra.core.canonical import stable_hash
from mlinfra.core.imports import require
from mlinfra.errors import ConfigError
from mlinfra.fingerprints import compute_conv_fp, fingerprint_experiment
from mlinfra.hpo.runner import load_entrypoint, locate_study, trial_output_dir
from mlinfra.naming import NamingContext, create_naming_context
from mlinfra.naming.context import process_type_for_stage
from mlinfra.naming.experiments import build_mlflow_experiment_name
from mlinfra.naming.keys import compute_trial_key_hash
from mlinfra.paths import build_output_path

__all__ = [
    "RUN_MODES",
    "RunMode",
    "StageContext",
    "StageResult",
    "run_stage",
    "should_reuse_existing",
]

RunMode = Literal["reuse_if_exists", "force_new", "resume_if_incomplete"]
RUN_MODES: tuple[str, ...] = ("reuse_if_exists", "force_new", "resume_if_incomplete")
_PROCESSES = ("final_training", "conversion", "benchmarking")


def should_reuse_existing(mode: str, exists: bool, is_complete: bool | None = None) -> bool:
    """The specification's decision: keep what exists instead of running again?

    * ``force_new``: never;
    * nothing exists: no;
    * ``reuse_if_exists``: when it is complete (or completeness is unknown);
    * ``resume_if_incomplete``: when it is complete (an incomplete one is resumed, not kept).

    Raises:
        ConfigError: an unknown mode (the old system treated any string as "reuse").
    """
    if mode not in RUN_MODES:
        raise ConfigError(f"unknown run mode {mode!r}; use one of: {', '.join(RUN_MODES)}")
    if mode == "force_new" or not exists:
        return False
    return is_complete is not False


@dataclass
class StageContext:
    """What a stage's entry point receives.

    Attributes:
        stage: The stage name.
        process_type: ``final_training``, ``conversion`` or ``benchmarking``.
        config: The resolved configuration (a plain dict keyed by domain).
        output_dir: This run's output folder (created).
        project_root, config_dir: The project.
        run_id: The MLflow run.
        variant: The variant number (final training and conversion).
        params: The hyperparameters: the best trial's for a benchmark, else ``{}``.
        parent_dir: The parent's output folder (the trained model a conversion converts, the
            trial folder a benchmark measures), when there is one.
        resumed: True when an unfinished run is being resumed in its own folder.
    """

    stage: str
    process_type: str
    config: dict[str, Any]
    output_dir: Path
    project_root: Path
    config_dir: Path
    run_id: str
    variant: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    parent_dir: Path | None = None
    resumed: bool = False
    _log_metrics: Callable[[Mapping[str, float], int | None], None] | None = field(
        default=None, repr=False
    )

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metrics to the stage's MLflow run."""
        if self._log_metrics is not None:
            self._log_metrics(metrics, step)


@dataclass(frozen=True)
class StageResult:
    """What ``run_stage`` did.

    Attributes:
        action: ``ran``, ``resumed`` or ``reused`` (nothing was run).
        output_dir: The stage's output folder.
        run_name, run_id: Its MLflow run (``None`` when reused without a recorded run).
        variant: Its variant.
        metrics: What the entry point returned (a float becomes ``{"value": x}``).
    """

    action: str
    output_dir: Path
    run_name: str | None
    run_id: str | None
    variant: int | None
    metrics: dict[str, float]


def _stage_spec(resolved: Any, stage: str) -> StageSpec:
    spec = resolved.experiment.stages.get(stage)
    if spec is None:
        known = ", ".join(sorted(resolved.experiment.stages)) or "none"
        raise ConfigError(
            f"the experiment has no stage {stage!r} (stages: {known})", key=f"stages.{stage}"
        )
    return spec  # type: ignore[no-any-return]


def _metrics(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if isinstance(value, bool):
        raise ConfigError(f"a stage entry point returned {value!r}; return a number or a mapping")
    if isinstance(value, (int, float)):
        return {"value": float(value)}
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise ConfigError(
                    f"a stage entry point returned a non-numeric metric {key}={item!r}"
                )
            out[str(key)] = float(item)
        return out
    raise ConfigError(
        f"a stage entry point returned {type(value).__name__}; return a number, a mapping of "
        "metric names to numbers, or None"
    )


def _finished(status: Mapping[str, Any], process_type: str) -> bool:
    block = status.get(process_type)
    return isinstance(block, Mapping) and block.get("state") == "finished"


def run_stage(
    project: Project,
    experiment: str,
    stage: str,
    *,
    overrides: Sequence[str] = (),
    mode: str | None = None,
    parent: str | Path | None = None,
    platform: str | None = None,
) -> StageResult:
    """Run (or reuse, or resume) one stage; see the module docstring.

    Args:
        project: The project.
        experiment: The experiment name.
        stage: A stage of the experiment file with an ``entrypoint``.
        overrides: Config overrides.
        mode: The run mode (default: the stage's ``run_mode``, else ``reuse_if_exists``).
        parent: A conversion's parent output folder (default: the newest finished final
            training with the same ``spec_fp``).
        platform: The platform (default: detected).

    Raises:
        ConfigError: no such stage, no entry point, an unknown mode or process type, no parent.
    """
    from mlinfra.core.platforms import detect_platform
    from mlinfra.registry import open_registry
    from mlinfra.tracking import track_run
    from mlinfra.tracking.mlflow.trackers import project_target

    where = platform or detect_platform(project.environ)
    resolved = compose_experiment(
        project.config_dir, experiment, stage=stage, overrides=overrides, environ=project.environ
    )
    spec = _stage_spec(resolved, stage)
    if not spec.entrypoint:
        raise ConfigError(
            f"stage {stage!r} has no entrypoint; add 'entrypoint: package.module:function' to "
            f"stages.{stage} in {resolved.experiment.file.name}",
            key=f"stages.{stage}.entrypoint",
        )
    process = spec.process_type or process_type_for_stage(stage)
    if process not in _PROCESSES:
        raise ConfigError(
            f"`mlinfra run` runs {', '.join(_PROCESSES)} stages; stage {stage!r} is {process!r} "
            "(use `mlinfra hpo` for sweeps)",
            key=f"stages.{stage}.process_type",
        )
    run_mode = mode or spec.run_mode
    should_reuse_existing(run_mode, False)  # validates the mode
    func = load_entrypoint(spec.entrypoint, project.root, key=f"stages.{stage}.entrypoint")
    model = resolved.experiment.model_config.stem
    fps = fingerprint_experiment(
        project.config_dir,
        experiment,
        stage=stage,
        overrides=overrides,
        root_dir=project.root,
        environ=project.environ,
    )
    config = resolved.to_dict()

    with open_registry(project.root, project.config_dir, environ=project.environ) as registry:
        params: dict[str, Any] = {}
        parent_dir: Path | None = None
        base: NamingContext
        if process == "benchmarking":
            base, params, parent_dir = _benchmark_identity(
                project, experiment, spec, model, where, config, overrides
            )
        elif process == "conversion":
            base, parent_dir = _conversion_identity(project, registry, model, where, fps, parent)
        else:
            base = create_naming_context(
                process_type="final_training",
                model=model,
                environment=where,
                stage=stage,
                spec_fp=fps.spec,
                exec_fp=fps.exec,
            )
        choice = _choose(project, registry, base, run_mode)
        context, resumed = choice.context, choice.resumed
        folder = build_output_path(
            project.root, context, config_dir=project.config_dir, environ=project.environ
        )
        if choice.reused is not None:
            variant = context.variant if process != "benchmarking" else None
            return StageResult("reused", folder, None, choice.reused.run_id, variant, {})
        exp_name = build_mlflow_experiment_name(
            experiment,
            stage,
            model,
            include_backbone=resolved.experiment.naming.include_backbone_in_experiment,
        )
        target = project_target(project, exp_name, platform=where, registry=registry)
        folder.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            try:
                run = stack.enter_context(
                    track_run(
                        target,
                        context,
                        params=params or None,
                        fingerprints=fps,
                        output_dir=folder,
                        on_change="log_delta",
                    )
                )
            except BaseException:
                if choice.counter is not None and choice.owner is not None:
                    # the number is not reused; the next run takes the one after it
                    registry.release_version(choice.counter, context.variant, choice.owner)
                raise
            if choice.counter is not None:
                registry.commit_version(choice.counter, context.variant, run.run_id)
            ctx = StageContext(
                stage=stage,
                process_type=process,
                config=config,
                output_dir=folder,
                project_root=project.root,
                config_dir=project.config_dir,
                run_id=run.run_id,
                variant=context.variant if process != "benchmarking" else None,
                params=dict(params),
                parent_dir=parent_dir,
                resumed=resumed,
                _log_metrics=run.log_metrics,
            )
            metrics = _metrics(func(ctx))
            if metrics:
                run.log_metrics(metrics)
    return StageResult(
        "resumed" if resumed else "ran",
        folder,
        run.run_name,
        run.run_id,
        context.variant if process != "benchmarking" else None,
        metrics,
    )


@dataclass(frozen=True)
class _Choice:
    context: NamingContext
    resumed: bool = False
    reused: Any = None  # the index entry kept instead of running
    counter: str | None = None  # a reserved variant to commit once the run exists
    owner: str | None = None


def _choose(project: Project, registry: Any, base: NamingContext, mode: str) -> _Choice:
    """Apply the run mode: keep an output, resume it, or start a new variant."""
    if base.process_type in ("benchmarking", "conversion"):
        # one folder per identity: its run is found again when it is run again
        folder = build_output_path(project.root, base, config_dir=project.config_dir)
        existing = registry.get_output(_key(project, folder))
        complete = existing is not None and _finished(existing.status, base.process_type)
        if should_reuse_existing(mode, existing is not None, complete):
            return _Choice(base, reused=existing)
        return _Choice(base, resumed=existing is not None and not complete)
    entries = registry.find_outputs(
        process_type=base.process_type,
        model=base.model,
        spec_fp=base.spec_fp,
        exec_fp=base.exec_fp,
        environment=base.environment,
    )
    newest = max(entries, key=lambda e: e.variant or 0) if entries else None
    complete = newest is not None and _finished(newest.status, base.process_type)
    if newest is not None and should_reuse_existing(mode, True, complete):
        return _Choice(base.with_(variant=newest.variant or 1), reused=newest)
    if newest is not None and mode == "resume_if_incomplete" and not complete:
        return _Choice(base.with_(variant=newest.variant or 1), resumed=True)
    counter = (
        f"{project.mlflow.naming.project_name}:{base.process_type}:{base.model}:"
        f"{base.environment}:{base.spec_fp}:{base.exec_fp}:variant"
    )
    owner = f"run-{uuid.uuid4().hex[:12]}"
    variant = registry.reserve_version(counter, owner)
    return _Choice(base.with_(variant=variant), counter=counter, owner=owner)


def _key(project: Project, folder: Path) -> str:
    from mlinfra.metadata import output_key

    return output_key(folder, project.root)


def _benchmark_identity(
    project: Project,
    experiment: str,
    spec: StageSpec,
    model: str,
    platform: str,
    config: Mapping[str, Any],
    overrides: Sequence[str],
) -> tuple[NamingContext, dict[str, Any], Path | None]:
    optuna = require("optuna", feature="benchmarking the best trial")
    source = spec.source_stage or "hpo"
    where = locate_study(project, experiment, stage=source, overrides=overrides, platform=platform)
    url = where.storage_url
    db = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
    if db is not None and not Path(db).is_file():
        raise ConfigError(
            f"no study yet for stage {source!r} ({db} does not exist); run `mlinfra hpo -s "
            f"{source}` first",
            key="stages.source_stage",
        )
    study = optuna.load_study(study_name=where.study_name, storage=where.storage_url)
    try:
        best = study.best_trial
    except ValueError:
        raise ConfigError(
            f"the study of stage {source!r} has no completed trial to benchmark yet",
            key="stages.source_stage",
        ) from None
    context = create_naming_context(
        process_type="benchmarking",
        model=model,
        environment=platform,
        study_key_hash=where.study_key_hash,
        trial_key_hash=compute_trial_key_hash(where.study_key_hash, best.params),
        trial_number=best.number,
        benchmark_config_hash=stable_hash(config.get("benchmark") or {}),
    )
    return context, dict(best.params), trial_output_dir(project, where, best)


def _conversion_identity(
    project: Project,
    registry: Any,
    model: str,
    platform: str,
    fps: Any,
    parent: str | Path | None,
) -> tuple[NamingContext, Path]:
    from mlinfra.metadata import output_folder, read_metadata

    if parent is not None:
        folder = Path(parent)
        meta = read_metadata(folder)
        if not meta.get("spec_fp") or not meta.get("exec_fp"):
            raise ConfigError(
                f"{folder} is not a final-training output (its metadata.json has no spec_fp and "
                "exec_fp)",
                key="parent",
            )
        spec_fp, exec_fp, variant = meta["spec_fp"], meta["exec_fp"], int(meta.get("variant", 1))
    else:
        found = [
            e
            for e in registry.find_outputs(
                process_type="final_training", model=model, spec_fp=fps.spec
            )
            if _finished(e.status, "final_training")
        ]
        if not found:
            raise ConfigError(
                "no finished final training with this spec_fp to convert; run "
                "`mlinfra run final_training` first, or pass --parent",
                key="parent",
            )
        entry = found[0]
        folder = output_folder(entry, project.root)
        spec_fp, exec_fp, variant = entry.spec_fp, entry.exec_fp, entry.variant or 1
    conv_fp = compute_conv_fp(spec_fp, exec_fp, {"config": fps.config.hash})
    context = create_naming_context(
        process_type="conversion",
        model=model,
        environment=platform,
        spec_fp=spec_fp,
        exec_fp=exec_fp,
        variant=variant,
        conv_fp=conv_fp,
    )
    return context, folder
