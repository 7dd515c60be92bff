"""``mlinfra hpo``: a resumable, tracked, budgeted sweep of the user's objective.

One invocation:

1. composes the experiment stage, computes its fingerprints, the study key (data identity and
   content, HPO settings, training budget, model) and from it the study folder
   (:mod:`mlinfra.hpo.setup`);
2. finds or creates the sweep's parent MLflow run (a rerun finds the same one) and opens the
   Optuna study in the study folder (``study.db``) or at the configured RDB URL;
3. runs trials in this process and ``workers - 1`` more until ``sampling.max_trials`` trials
   have finished, counted across every invocation, or ``sampling.timeout_minutes`` has passed
   (:mod:`mlinfra.hpo.workers`). Each trial gets a child run named by the naming policy, its
   output folder, its fingerprints and params, the objective's metrics
   (:mod:`mlinfra.hpo.trial`); a trial left running by a dead worker is re-queued with its
   parameters and finds its MLflow run again. A worker that fails (a full disk, a denied
   write, a store refusing writes) sends its error to this process, which stops the sweep with
   it (the other workers stop after their trial); such faults of the sweep's own bookkeeping
   are told apart from the objective's failures in :mod:`mlinfra.hpo.faults`;
4. refits the best trial once when ``refit.enabled`` (:mod:`mlinfra.hpo.trial`), and returns a
   :class:`SweepResult`.

The names other code uses (:func:`run_sweep`, :class:`SweepResult`, :class:`SweepError`,
:class:`StudyLocation`, :func:`locate_study`, :func:`load_entrypoint`,
:func:`trial_output_dir`, :data:`TIMEOUT_REASON`) are all importable from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlinfra.config import Project
from mlinfra.core.imports import require
from mlinfra.errors import ConfigError, MlinfraError
from mlinfra.hpo.faults import (
    STOPPED,
    Stores,
    SweepError,
    fault_text,
    is_fault,
    quiet_logs,
    tracking_failure,
)
from mlinfra.hpo.setup import (
    StudyLocation,
    Sweep,
    backup_callbacks,
    load_entrypoint,
    locate_study,
    resolve,
)
from mlinfra.hpo.study import Budget, budget, open_study
from mlinfra.hpo.trial import refit
from mlinfra.hpo.workers import TIMEOUT_REASON, Limits, start_workers, work
from mlinfra.naming.experiments import build_mlflow_experiment_name
from mlinfra.naming.keys import compute_trial_key_hash
from mlinfra.paths import build_output_path

__all__ = [
    "TIMEOUT_REASON",
    "StudyLocation",
    "SweepError",
    "SweepResult",
    "load_entrypoint",
    "locate_study",
    "run_sweep",
    "trial_output_dir",
]


@dataclass
class SweepResult:
    """What a sweep did and found.

    Attributes:
        study_name, storage_url, study_dir: Where the study is.
        finished: Trials finished (completed, pruned, or failed by the objective), all time.
        completed, pruned, failed: Those counts apart.
        new_trials: Trials this invocation ran (all workers).
        best_number, best_value, best_params: The best completed trial (``None`` if none).
        best_run_name, best_output_dir: Its MLflow run name and output folder.
        parent_run_id, parent_run_name: The sweep's parent run.
        tracking_uri, experiment_name: Where the runs are.
        refit_run_name: The refit's run, when one was made.
        stopped: Why the sweep stopped before the budget was spent, if it did.
    """

    study_name: str
    storage_url: str
    study_dir: Path
    max_trials: int
    finished: int
    completed: int
    pruned: int
    failed: int
    new_trials: int
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any] | None
    best_run_name: str | None
    best_output_dir: str | None
    parent_run_id: str
    parent_run_name: str
    tracking_uri: str
    experiment_name: str
    metric: str
    direction: str
    refit_run_name: str | None = None
    stopped: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_to_finish(self) -> bool:
        """The sweep stopped early for a failure (failed trials, a dead worker), not its
        timeout."""
        return self.stopped is not None and self.stopped != TIMEOUT_REASON


def trial_output_dir(project: Project, where: StudyLocation, trial: Any) -> Path:
    """A trial's output folder, from its identity (the study key and the trial's params)."""
    context = where.context.with_(
        stage="hpo_trial",
        trial_number=trial.number,
        trial_key_hash=compute_trial_key_hash(where.study_key_hash, trial.params),
    )
    return build_output_path(project.root, context, config_dir=project.config_dir)


def _summarise(
    sweep: Sweep, study: Any, before: int, parent: Any, experiment_name: str
) -> SweepResult:
    state = require("optuna.trial", feature="HPO sweeps").TrialState
    trials = study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.state == state.COMPLETE]
    best = None
    if completed:
        best = study.best_trial
    b = budget(study, sweep.where.hpo.sampling.max_trials)
    return SweepResult(
        study_name=sweep.where.study_name,
        storage_url=sweep.where.storage_url,
        study_dir=sweep.where.study_dir,
        max_trials=sweep.where.hpo.sampling.max_trials,
        finished=b.finished,
        completed=len(completed),
        pruned=sum(1 for t in trials if t.state == state.PRUNED),
        failed=b.failed,
        new_trials=len(trials) - before,
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else None,
        best_run_name=best.user_attrs.get("mlflow_run_name") if best else None,
        best_output_dir=str(trial_output_dir(sweep.project, sweep.where, best)) if best else None,
        parent_run_id=parent.run_id,
        parent_run_name=parent.run_name,
        tracking_uri=sweep.target.tracking_uri,
        experiment_name=experiment_name,
        metric=sweep.where.hpo.objective.metric,
        direction=sweep.where.hpo.objective.direction,
    )


def run_sweep(
    project: Project,
    experiment: str,
    *,
    stage: str | None = None,
    overrides: Sequence[str] = (),
    workers: int = 1,
    platform: str | None = None,
    on_progress: Callable[[Budget, Any], None] | None = None,
) -> SweepResult:
    """Run (or resume) the sweep of an experiment stage; see the module docstring.

    Args:
        project: The project.
        experiment: The experiment name.
        stage: The stage whose HPO config to use (``hpo_config``, overrides).
        overrides: Config overrides.
        workers: Processes running trials (this one included), all on the same study.
        platform: The platform (default: detected).
        on_progress: Called as trials finish with the budget and the study.

    Raises:
        ConfigError: the configuration is invalid, or names no importable objective.
        SweepError: the sweep stopped on failed trials, or a worker process died, or a write of
            its own failed, in this process or in a worker (a full disk, a denied write, a study
            storage or an MLflow store refusing writes: the message names the file or the
            store, and the worker).
        TrackingError: MLflow or the registry refused.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}", key="workers")
    stores = Stores()  # the study storage and MLflow's store, once known: named by faults
    try:
        return _run_sweep(
            project,
            experiment,
            stage=stage,
            overrides=overrides,
            workers=workers,
            platform=platform,
            on_progress=on_progress,
            stores=stores,
        )
    except MlinfraError as exc:
        if isinstance(exc, SweepError) or tracking_failure(exc) is None:
            raise
        raise SweepError(f"{STOPPED}{fault_text(exc, stores)}") from exc
    except Exception as exc:
        if not is_fault(exc):
            raise
        raise SweepError(f"{STOPPED}{fault_text(exc, stores)}") from exc


def _run_sweep(
    project: Project,
    experiment: str,
    *,
    stage: str | None,
    overrides: Sequence[str],
    workers: int,
    platform: str | None,
    on_progress: Callable[[Budget, Any], None] | None,
    stores: Stores,
) -> SweepResult:
    from mlinfra.core.platforms import detect_platform
    from mlinfra.registry import open_registry
    from mlinfra.tracking import track_hpo_sweep

    quiet_logs()
    where = platform or detect_platform(project.environ)
    with open_registry(project.root, project.config_dir, environ=project.environ) as registry:
        sweep = resolve(project, experiment, stage, overrides, platform=where, registry=registry)
        stores.storage_url, stores.tracking_uri = sweep.where.storage_url, sweep.target.tracking_uri
        hpo = sweep.where.hpo
        callbacks = backup_callbacks(sweep)  # a bad backup setup fails before anything starts
        sweep_params = {
            "study_name": sweep.where.study_name,
            "sampler": hpo.sampling.algorithm,
            "max_trials": hpo.sampling.max_trials,
            "metric": hpo.objective.metric,
            "direction": hpo.objective.direction,
        }
        with track_hpo_sweep(
            sweep.target,
            sweep.where.context,
            params=sweep_params,
            fingerprints=sweep.where.fingerprints,
            output_dir=sweep.where.study_dir,
            on_change="log_delta",
        ) as parent:
            study = open_study(sweep.where.storage_url, sweep.where.study_name, hpo)
            study.set_user_attr("study_key_hash", sweep.where.study_key_hash)
            study.set_user_attr("mlflow_parent_run_id", parent.run_id)
            before = len(study.get_trials(deepcopy=False))
            started = time.time()
            timeout = hpo.sampling.timeout_minutes
            limits = Limits(
                deadline=time.monotonic() + timeout * 60 if timeout else None,
                started=started,
                on_trial_error=hpo.on_trial_error,
                max_failed=hpo.max_failed_trials,
            )
            progress = None
            if on_progress is not None:

                def progress(state: Budget) -> None:
                    on_progress(state, study)

            stopped, dead = _run_trials(
                sweep, study, parent.run_id, limits, workers - 1, progress, callbacks
            )
            for callback in callbacks:
                callback.backup_now()
            refit_name = None
            if stopped is None and hpo.refit.enabled:
                refit_name = refit(sweep, study, parent.run_id)
            result = _summarise(sweep, study, before, parent, _experiment_name(sweep))
            result.refit_run_name = refit_name
            result.stopped = stopped or "; ".join(dead) or None
            parent.log_metrics(
                {
                    "finished_trials": result.finished,
                    **(
                        {f"best_{result.metric}": result.best_value}
                        if result.best_value is not None
                        else {}
                    ),
                }
            )
    if result.stopped and hpo.on_trial_error == "stop":
        raise SweepError(f"{STOPPED}{result.stopped}")
    return result


def _run_trials(
    sweep: Sweep,
    study: Any,
    parent_run_id: str,
    limits: Limits,
    extra: int,
    progress: Callable[[Budget], None] | None,
    callbacks: Sequence[Any],
) -> tuple[str | None, list[str]]:
    """Trials in this process and in ``extra`` worker processes until the budget is spent;
    returns why this process stopped early (if it did) and how each worker that died without a
    word ended (SIGKILL, say: its trial is retried once its heartbeat is stale).

    Raises:
        SweepError: a worker sent the error that ended it (a full disk, a denied write, a
            store refusing writes): this process stops before its next trial, the other
            workers after theirs, and the error names the worker and what failed.
    """
    crew = start_workers(sweep, parent_run_id, limits, extra)
    try:
        stopped = work(sweep, study, parent_run_id, limits, progress, callbacks, crew.failure)
    finally:
        dead = crew.stop()
    failure = crew.failure()
    if failure is not None:
        raise SweepError(f"{STOPPED}{failure}")
    return stopped, dead


def _experiment_name(sweep: Sweep) -> str:
    return build_mlflow_experiment_name(
        sweep.experiment,
        "hpo",
        sweep.where.model,
        include_backbone=sweep.where.resolved.experiment.naming.include_backbone_in_experiment,
    )
