"""``mlinfra hpo``: a resumable, tracked, budgeted sweep of the user's objective.

One invocation:

1. composes the experiment stage, computes its fingerprints, the study key (data identity and
   content, HPO settings, training budget, model) and from it the study folder;
2. finds or creates the sweep's parent MLflow run (a rerun finds the same one) and opens the
   Optuna study in the study folder (``study.db``) or at the configured RDB URL;
3. runs trials in this process and ``workers - 1`` more until ``sampling.max_trials`` trials
   have finished, counted across every invocation, or ``sampling.timeout_minutes`` has passed.
   Each trial gets a child run named by the naming policy, its output folder, its fingerprints
   and params, the objective's metrics; a trial left running by a dead worker is re-queued with
   its parameters and finds its MLflow run again. A worker that fails (a full disk, a denied
   write, a store refusing writes) sends its error to this process, which stops the sweep with
   it (the other workers stop after their trial);
4. refits the best trial once when ``refit.enabled``, and returns a :class:`SweepResult`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import multiprocessing
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mlinfra.config import HpoSpec, Project, ResolvedConfig, compose_experiment
from mlinfra.core.imports import require
from mlinfra.core.redact import hide_password
from mlinfra.errors import ConfigError, MlinfraError
from mlinfra.fingerprints import Fingerprints, fingerprint_experiment
from mlinfra.hpo.context import FoldInfo, TrialContext
from mlinfra.hpo.study import (
    BUDGET_ATTR,
    FAILURE_ATTR,
    MAX_RETRIES,
    Budget,
    budget,
    fail_stale_trials,
    open_study,
    over_budget,
    quiet_experimental,
    study_storage_url,
    suggest_params,
)
from mlinfra.naming import NamingContext, create_naming_context
from mlinfra.naming.experiments import build_mlflow_experiment_name
from mlinfra.naming.keys import compute_study_key_hash, compute_trial_key_hash
from mlinfra.paths import build_output_path

__all__ = [
    "StudyLocation",
    "SweepError",
    "SweepResult",
    "load_entrypoint",
    "locate_study",
    "run_sweep",
    "trial_output_dir",
]

_POLL_SECONDS = 0.5
#: ``SweepResult.stopped`` when ``sampling.timeout_minutes`` ended the sweep (not a failure).
TIMEOUT_REASON = "the timeout (sampling.timeout_minutes) was reached"


class SweepError(MlinfraError, RuntimeError):
    """The sweep stopped: a trial failed with ``on_trial_error: stop``, too many trials failed,
    a worker process died, or the sweep could not record its own work (a full disk, a denied
    write, a study storage that refuses writes); the message names the file or storage."""


class _ObjectiveFailed(Exception):
    """A trial's objective raised or returned no usable number (the reason is recorded)."""


class _ObjectiveRaised(_ObjectiveFailed):
    """The objective raised (its exception is the ``__cause__``)."""


class _OverBudget(Exception):
    """A trial started after the budget was spent by other workers."""


# ---- faults of the sweep's own bookkeeping ---------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _database_reason(chain: Sequence[BaseException]) -> str | None:
    """The first line of the database's own error (``sqlite3.OperationalError: database or
    disk is full``) among ``chain``, if one is there."""
    sa_exc = require("sqlalchemy.exc")
    for e in chain:
        orig = getattr(e, "orig", None) if isinstance(e, sa_exc.DBAPIError) else None
        if orig is not None:
            return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return None


def _storage_failure(exc: BaseException) -> str | None:
    """Why the study storage failed, when that is what ``exc`` comes from (Optuna wraps the
    database's errors in ``StorageInternalError``; mlinfra, MLflow and the registry wrap theirs
    in their own errors); else ``None``."""
    exceptions = require("optuna.exceptions", feature="HPO sweeps")
    sa_exc = require("sqlalchemy.exc")
    chain = list(_chain(exc))
    if not (
        isinstance(exc, sa_exc.SQLAlchemyError)
        or any(isinstance(e, exceptions.StorageInternalError) for e in chain)
    ):
        return None
    return _database_reason(chain) or str(exc).strip() or type(exc).__name__


def _tracking_failure(exc: BaseException) -> str | None:
    """Why MLflow's own store failed, when ``exc`` comes from its database (MLflow wraps the
    database's errors in ``MlflowException``, mlinfra that in ``TrackingError``); else
    ``None``."""
    mlflow_exceptions = sys.modules.get("mlflow.exceptions")
    if mlflow_exceptions is None:  # MLflow was never used in this process
        return None
    chain = list(_chain(exc))
    if not any(isinstance(e, mlflow_exceptions.MlflowException) for e in chain):
        return None
    return _database_reason(chain)


@dataclass
class _Stores:
    """The stores a sweep's faults are named by, once known."""

    storage_url: str | None = None
    tracking_uri: str | None = None


def _fault_text(exc: BaseException, stores: _Stores) -> str:
    """``exc`` in one line naming what failed: the file, the study storage or MLflow's store."""
    tracking = _tracking_failure(exc)
    if tracking is not None:
        uri = f" {hide_password(stores.tracking_uri)}" if stores.tracking_uri else ""
        return f"MLflow's tracking store{uri} failed: {tracking}"
    if isinstance(exc, MlinfraError):
        return str(exc)
    if isinstance(exc, OSError):
        path = exc.filename2 if exc.filename2 is not None else exc.filename
        reason = exc.strerror or str(exc)
        return f"{path}: {reason}" if path is not None else reason
    failure = _storage_failure(exc)
    if failure is not None:
        url = stores.storage_url
        where = hide_password(url) if url else "the study storage"
        return f"the study storage {where} failed: {failure}"
    return f"{type(exc).__name__}: {exc}"


def _is_fault(exc: BaseException) -> bool:
    """A fault of the disk, of the study storage or of MLflow's store (not a bug, not the
    objective)."""
    return (
        isinstance(exc, OSError)
        or _storage_failure(exc) is not None
        or _tracking_failure(exc) is not None
    )


class _NoTracebackForStops(logging.Filter):
    """Optuna logs a trial that raised with its traceback; a sweep stopped by a fault of its own
    bookkeeping is one clear error (:class:`SweepError`), so its traceback is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], SweepError):
            record.exc_info = None
            record.exc_text = None
        return True


class _NoStoreErrorLog(logging.Filter):
    """MLflow logs a failure of its database (several lines of SQL and a traceback) and then
    raises it; the sweep reports that failure as one error line naming MLflow's store
    (:class:`SweepError`), so the log record is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        sa_exc = require("sqlalchemy.exc")
        return not (record.exc_info and isinstance(record.exc_info[1], sa_exc.DBAPIError))


def _retry_later(study: Any, trial: Any) -> str | None:
    """Queue a copy of ``trial`` with its params (as for a trial whose worker died), so the next
    run retries it and finds its MLflow run again; returns why that failed, if it did."""
    storages = require("optuna.storages", feature="HPO sweeps")
    try:
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        with quiet_experimental():
            retry = storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
        retry(study, frozen)
    except Exception as exc:
        return f"trial {trial.number} was not queued again: {type(exc).__name__}: {exc}"
    return None


# ---- resolving everything once ---------------------------------------------------------------


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


@dataclass
class _Sweep:
    """Everything a worker needs, resolved once per process."""

    project: Project
    experiment: str
    stage: str | None
    overrides: tuple[str, ...]
    where: StudyLocation  # config, HPO spec, model, fingerprints, study key, folder, storage
    objective: Callable[[TrialContext], Any]
    target: Any  # TrackingTarget
    platform: str


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


def _resolve(
    project: Project,
    experiment: str,
    stage: str | None,
    overrides: Sequence[str],
    *,
    platform: str,
    registry: Any,
) -> _Sweep:
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
    return _Sweep(
        project=project,
        experiment=experiment,
        stage=stage,
        overrides=tuple(overrides),
        where=where,
        objective=objective,
        target=target,
        platform=platform,
    )


# ---- one trial -------------------------------------------------------------------------------


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _ObjectiveFailed(
            f"the objective returned {type(value).__name__} {value!r} for {what}; it must "
            "return a number (the metric)"
        )
    number = float(value)
    if not math.isfinite(number):
        raise _ObjectiveFailed(f"the objective returned {number} for {what}, not a finite number")
    return number


def _seed(hpo: HpoSpec, number: int | None) -> int:
    return (hpo.sampling.seed or 0) + (number or 0)


def _call(sweep: _Sweep, ctx: TrialContext) -> Any:
    return sweep.objective(ctx)


def _objective(sweep: _Sweep, ctx: TrialContext) -> Any:
    """Call the objective for a trial or a fold: what it raises (but pruning) is its failure."""
    optuna = require("optuna", feature="HPO sweeps")
    try:
        return _call(sweep, ctx)
    except optuna.TrialPruned:
        raise
    except Exception as exc:
        raise _ObjectiveRaised(f"{type(exc).__name__}: {exc}") from exc


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):  # Python 3.11+
        exc.add_note(note)


def _run_trial(
    sweep: _Sweep, study: Any, trial: Any, parent_run_id: str, bound: Callable[[int], int]
) -> float:
    """One trial. A failure of the objective fails the trial (counted toward the budget); a
    fault of the sweep's own bookkeeping (tracking, metadata, the study storage: a full disk, a
    denied write) is not the objective's: it stops the sweep with a :class:`SweepError` naming
    what failed, the trial is not counted, and it is queued again with its params."""
    optuna = require("optuna", feature="HPO sweeps")
    try:
        return _trial(sweep, study, trial, parent_run_id, bound)
    except (optuna.TrialPruned, _OverBudget):
        raise
    except _ObjectiveFailed as exc:  # raised, or a result that is not a finite number
        reason = str(exc)
        trial.set_user_attr(FAILURE_ATTR, reason)
        cause = exc.__cause__ if isinstance(exc, _ObjectiveRaised) else None
        shown = ""
        if cause is not None:
            shown = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
        sys.stderr.write(f"trial {trial.number} failed: {reason}\n{shown}")
        raise
    except Exception as exc:
        # the study storage itself failing cannot take the retry either
        note = None if _storage_failure(exc) is not None else _retry_later(study, trial)
        text = _fault_text(exc, _Stores(sweep.where.storage_url, sweep.target.tracking_uri))
        error = SweepError(f"the sweep stopped: trial {trial.number}: {text}")
        if note is not None:
            _add_note(error, note)
        raise error from exc


def _trial(
    sweep: _Sweep, study: Any, trial: Any, parent_run_id: str, bound: Callable[[int], int]
) -> float:
    optuna = require("optuna", feature="HPO sweeps")
    from mlinfra.tracking import track_hpo_trial

    hpo = sweep.where.hpo
    max_trials = hpo.sampling.max_trials
    # bound(n): at most how many earlier trials count; the exact (costly) check is only made
    # when the budget could be spent
    if bound(trial.number) >= max_trials and over_budget(study, trial.number, max_trials):
        trial.set_user_attr(BUDGET_ATTR, True)
        raise _OverBudget(f"trial {trial.number} started after the budget was spent")
    params = suggest_params(trial, hpo.search_space)
    trial_ctx = sweep.where.context.with_(
        stage="hpo_trial",
        trial_number=trial.number,
        trial_key_hash=compute_trial_key_hash(sweep.where.study_key_hash, params),
    )
    trial_dir = build_output_path(
        sweep.project.root, trial_ctx, config_dir=sweep.project.config_dir
    )
    trial_dir.mkdir(parents=True, exist_ok=True)
    config = sweep.where.resolved.to_dict()
    metric = hpo.objective.metric
    pruned: BaseException | None = None
    with track_hpo_trial(
        sweep.target,
        trial_ctx,
        parent_run_id=parent_run_id,
        trial=trial,
        params=params,
        fingerprints=sweep.where.fingerprints,
        fingerprint_artifact=False,  # the sweep's run holds the record
        output_dir=trial_dir,
        on_change="log_delta",
    ) as run:
        base = TrialContext(
            params=dict(params),
            config=config,
            output_dir=trial_dir,
            project_root=sweep.project.root,
            config_dir=sweep.project.config_dir,
            trial_number=trial.number,
            run_id=run.run_id,
            seed=_seed(hpo, trial.number),
            _log_metrics=run.log_metrics,
        )
        try:
            if hpo.k_fold.enabled:
                value = _cross_validate(sweep, trial, trial_ctx, base, run.run_id)
            else:

                def report(step: int, value: float) -> None:
                    run.log_metric("intermediate", value, step)
                    trial.report(value, step)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned at step {step} ({value:g})")

                value = _number(_objective(sweep, replace(base, _report=report)), metric)
        except optuna.TrialPruned as exc:
            run.set_tags({"mlinfra.trial_state": "PRUNED"}, defer=True)
            pruned = exc
        else:
            run.log_metrics({metric: value})
            run.set_tags({"mlinfra.trial_state": "COMPLETE"}, defer=True)
    if pruned is not None:
        raise pruned
    return value


def _cross_validate(
    sweep: _Sweep, trial: Any, trial_ctx: NamingContext, base: TrialContext, run_id: str
) -> float:
    optuna = require("optuna", feature="HPO sweeps")
    from mlinfra.tracking import track_cv_fold

    spec = sweep.where.hpo.k_fold
    metric = sweep.where.hpo.objective.metric
    values: list[float] = []
    for index in range(spec.n_splits):
        fold = FoldInfo(index, spec.n_splits, spec.random_seed, spec.shuffle, spec.stratified)
        fold_dir = base.output_dir / f"fold-{index}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        with track_cv_fold(
            sweep.target,
            trial_ctx.with_(fold_idx=index),
            parent_run_id=run_id,
            params=base.params,
            on_change="log_delta",
        ) as fold_run:

            def report(step: int, value: float, _run: Any = fold_run) -> None:
                _run.log_metric("intermediate", value, step)

            ctx = replace(
                base,
                output_dir=fold_dir,
                fold=fold,
                run_id=fold_run.run_id,
                _report=report,
                _log_metrics=fold_run.log_metrics,
            )
            value = _number(_objective(sweep, ctx), f"{metric} of fold {index}")
            fold_run.log_metrics({metric: value})
        values.append(value)
        mean = sum(values) / len(values)
        trial.report(mean, index)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after fold {index} (mean {mean:g})")
    return sum(values) / len(values)


# ---- a worker --------------------------------------------------------------------------------


@dataclass
class _Limits:
    deadline: float | None
    started: float
    on_trial_error: str
    max_failed: int | None


def _failed_since(trials: Sequence[Any], started: float) -> list[str]:
    state = require("optuna.trial", feature="HPO sweeps").TrialState
    reasons = []
    for t in trials:
        if t.state != state.FAIL:
            continue
        started_at = t.datetime_start
        if FAILURE_ATTR in t.user_attrs and started_at and started_at.timestamp() >= started:
            reasons.append(f"trial {t.number}: {t.user_attrs[FAILURE_ATTR]}")
    return reasons


def _stop_reason(trials: Sequence[Any], limits: _Limits) -> str | None:
    failed = _failed_since(trials, limits.started)
    if failed and limits.on_trial_error == "stop":
        return f"a trial failed and on_trial_error is 'stop' ({failed[0]})"
    if limits.max_failed is not None and len(failed) >= limits.max_failed:
        return (
            f"{len(failed)} trials failed (max_failed_trials {limits.max_failed}); "
            f"last: {failed[-1]}"
        )
    return None


def _work(
    sweep: _Sweep,
    study: Any,
    parent_run_id: str,
    limits: _Limits,
    on_progress: Callable[[Budget], None] | None = None,
    callbacks: Sequence[Any] = (),
    interrupt: Callable[[], str | None] = lambda: None,
) -> str | None:
    """Run trials until the budget is spent; returns why it stopped early, if it did
    (``interrupt`` is asked before each trial: a reason to stop, or ``None``)."""
    max_trials = sweep.where.hpo.sampling.max_trials

    state_type = require("optuna.trial", feature="HPO sweeps").TrialState
    last = Budget(0, 0, 0, max_trials)
    newest, waiting = -1, 0

    def bound(number: int) -> int:
        # counted or running at the last snapshot, waiting ones that may have started since,
        # and every trial other workers created after the snapshot
        return last.finished + last.running + waiting + max(0, number - newest - 1)

    def objective(trial: Any) -> float:
        return _run_trial(sweep, study, trial, parent_run_id, bound)

    while True:
        trials = study.get_trials(deepcopy=False)
        state = last = budget(study, max_trials, trials=trials)
        newest = max((t.number for t in trials), default=-1)
        waiting = sum(1 for t in trials if t.state == state_type.WAITING)
        if on_progress is not None:
            on_progress(state)
        stop = _stop_reason(trials, limits) or interrupt()
        if stop is not None:  # before "done": the trial that filled the budget may have failed
            return stop
        if state.done:
            return None
        if limits.deadline is not None and time.monotonic() >= limits.deadline:
            return TIMEOUT_REASON
        if state.taken:
            # the last trials run in other workers: wait for them, or for their heartbeats to
            # stop (then they are failed and re-queued here; Optuna does it before each trial)
            time.sleep(_POLL_SECONDS)
            fail_stale_trials(study)
            continue
        study.optimize(
            objective,
            n_trials=1,
            catch=(_ObjectiveFailed, _OverBudget),
            callbacks=list(callbacks),
            gc_after_trial=False,
            show_progress_bar=False,
        )


#: What the main process sends a worker to make it stop before its next trial.
_STOP = "stop"
_STOPPED = "the sweep stopped: "


def _worker_process(args: dict[str, Any], channel: Connection) -> None:
    """The entry point of a ``--workers`` process. It runs trials until the budget is spent or
    the main process sends :data:`_STOP` on ``channel``. An error that ends it is sent on
    ``channel`` in one line (the main process stops the sweep with it) and the process exits
    with status 1, with no traceback unless it is a bug (neither mlinfra's error nor a fault of
    the disk or of a store)."""
    stores = _Stores()
    try:
        _worker_sweep(args, channel, stores)
    except Exception as exc:
        with contextlib.suppress(OSError):  # the main process may be gone
            channel.send(_fault_text(exc, stores).removeprefix(_STOPPED))
        if not isinstance(exc, MlinfraError) and not _is_fault(exc):
            traceback.print_exc()
        raise SystemExit(1) from None


def _worker_sweep(args: dict[str, Any], channel: Connection, stores: _Stores) -> None:
    _quiet_logs()
    project = Project.discover(project=args["root"], config_dir=args["config_dir"])
    from mlinfra.registry import open_registry

    with open_registry(project.root, project.config_dir, environ=project.environ) as registry:
        sweep = _resolve(
            project,
            args["experiment"],
            args["stage"],
            args["overrides"],
            platform=args["platform"],
            registry=registry,
        )
        stores.storage_url, stores.tracking_uri = sweep.where.storage_url, sweep.target.tracking_uri
        study = open_study(
            sweep.where.storage_url,
            sweep.where.study_name,
            sweep.where.hpo,
            worker=int(args["worker"]),
        )
        limits = _Limits(**args["limits"])
        if "timeout_left" in args:  # monotonic clocks are per process
            limits.deadline = time.monotonic() + float(args["timeout_left"])
        callbacks = _backup_callbacks(sweep)
        _work(sweep, study, args["parent_run_id"], limits, None, callbacks, _told(channel))


def _told(channel: Connection) -> Callable[[], str | None]:
    """Whether the main process told this worker to stop (a main process that is gone did
    not: the worker goes on to the end of the budget)."""

    def stop() -> str | None:
        with contextlib.suppress(EOFError, OSError):
            if channel.poll() and channel.recv() == _STOP:
                return "the main process stopped the sweep"
        return None

    return stop


def _quiet_logs() -> None:
    optuna = require("optuna", feature="HPO sweeps")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the loggers that report failed trials and MLflow's database errors (a filter acts where
    # the record is made)
    for name, kind in (
        ("optuna.study._optimize", _NoTracebackForStops),
        ("mlflow.store.db.utils", _NoStoreErrorLog),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())


def _backup_callbacks(sweep: _Sweep) -> list[Any]:
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


# ---- the sweep -------------------------------------------------------------------------------


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
    sweep: _Sweep, study: Any, before: int, parent: Any, experiment_name: str
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


def _refit(sweep: _Sweep, study: Any, parent_run_id: str) -> str | None:
    """Retrain the best trial once (``refit.enabled``); the study remembers it was done."""
    from mlinfra.tracking import track_refit

    state = require("optuna.trial", feature="HPO sweeps").TrialState
    if not any(t.state == state.COMPLETE for t in study.get_trials(deepcopy=False)):
        return None
    best = study.best_trial
    if study.user_attrs.get("mlinfra_refit_of") == best.number:
        return str(study.user_attrs.get("mlinfra_refit_run_name") or "") or None
    trial_ctx = sweep.where.context.with_(
        stage="hpo_trial",
        trial_number=best.number,
        trial_key_hash=compute_trial_key_hash(sweep.where.study_key_hash, best.params),
    )
    refit_ctx = trial_ctx.with_(process_type="hpo_refit", stage="refit")
    folder = build_output_path(sweep.project.root, refit_ctx, config_dir=sweep.project.config_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with track_refit(
        sweep.target,
        refit_ctx,
        parent_run_id=parent_run_id,
        trial_run_id=str(best.user_attrs.get("mlflow_run_id", "")),
        params=dict(best.params),
        fingerprints=sweep.where.fingerprints,
        output_dir=folder,
        on_change="log_delta",
    ) as run:
        ctx = TrialContext(
            params=dict(best.params),
            config=sweep.where.resolved.to_dict(),
            output_dir=folder,
            project_root=sweep.project.root,
            config_dir=sweep.project.config_dir,
            refit=True,
            run_id=run.run_id,
            seed=_seed(sweep.where.hpo, best.number),
            _log_metrics=run.log_metrics,
            _report=lambda step, value: run.log_metric("intermediate", value, step),
        )
        value = _number(_call(sweep, ctx), f"{sweep.where.hpo.objective.metric} of the refit")
        run.log_metrics({sweep.where.hpo.objective.metric: value})
    study.set_user_attr("mlinfra_refit_of", best.number)
    study.set_user_attr("mlinfra_refit_run_name", run.run_name)
    return run.run_name


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
    stores = _Stores()  # the study storage and MLflow's store, once known: named by faults
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
        if isinstance(exc, SweepError) or _tracking_failure(exc) is None:
            raise
        raise SweepError(f"{_STOPPED}{_fault_text(exc, stores)}") from exc
    except Exception as exc:
        if not _is_fault(exc):
            raise
        raise SweepError(f"{_STOPPED}{_fault_text(exc, stores)}") from exc


def _run_sweep(
    project: Project,
    experiment: str,
    *,
    stage: str | None,
    overrides: Sequence[str],
    workers: int,
    platform: str | None,
    on_progress: Callable[[Budget, Any], None] | None,
    stores: _Stores,
) -> SweepResult:
    from mlinfra.core.platforms import detect_platform
    from mlinfra.registry import open_registry
    from mlinfra.tracking import track_hpo_sweep

    _quiet_logs()
    where = platform or detect_platform(project.environ)
    with open_registry(project.root, project.config_dir, environ=project.environ) as registry:
        sweep = _resolve(project, experiment, stage, overrides, platform=where, registry=registry)
        stores.storage_url, stores.tracking_uri = sweep.where.storage_url, sweep.target.tracking_uri
        hpo = sweep.where.hpo
        callbacks = _backup_callbacks(sweep)  # a bad backup setup fails before anything starts
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
            limits = _Limits(
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
                refit_name = _refit(sweep, study, parent.run_id)
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
        raise SweepError(f"{_STOPPED}{result.stopped}")
    return result


def _run_trials(
    sweep: _Sweep,
    study: Any,
    parent_run_id: str,
    limits: _Limits,
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
    crew = _start_workers(sweep, parent_run_id, limits, extra)
    try:
        stopped = _work(sweep, study, parent_run_id, limits, progress, callbacks, crew.failure)
    finally:
        dead = crew.stop()
    failure = crew.failure()
    if failure is not None:
        raise SweepError(f"{_STOPPED}{failure}")
    return stopped, dead


def _experiment_name(sweep: _Sweep) -> str:
    return build_mlflow_experiment_name(
        sweep.experiment,
        "hpo",
        sweep.where.model,
        include_backbone=sweep.where.resolved.experiment.naming.include_backbone_in_experiment,
    )


@dataclass
class _Crew:
    """The extra ``--workers`` processes and a pipe to each: a worker sends the error that
    ended it; this process sends :data:`_STOP`."""

    procs: list[multiprocessing.process.BaseProcess] = field(default_factory=list)
    channels: list[Connection] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)  # worker number → its error

    def failure(self) -> str | None:
        """The error of the first worker that sent one (read without waiting), if any."""
        for number, channel in enumerate(self.channels, 1):
            self._receive(number, channel)
        if not self.errors:
            return None
        number = min(self.errors)
        return f"worker process {number}: {self.errors[number]}"

    def stop(self) -> list[str]:
        """Tell every worker to stop before its next trial and wait for them; how each one
        that failed without sending its error ended."""
        for channel in self.channels:
            with contextlib.suppress(OSError):  # closed, or the worker is gone
                channel.send(_STOP)
        dead = []
        for number, (proc, channel) in enumerate(zip(self.procs, self.channels, strict=True), 1):
            proc.join()
            self._receive(number, channel)
            channel.close()
            if proc.exitcode and number not in self.errors:
                dead.append(_death(number, proc.exitcode))
        return dead

    def _receive(self, number: int, channel: Connection) -> None:
        if channel.closed or number in self.errors:
            return
        try:
            if channel.poll():
                self.errors[number] = str(channel.recv())
        except (EOFError, OSError):  # it exited without a word
            channel.close()


def _death(number: int, exitcode: int) -> str:
    if exitcode < 0:
        try:
            how = f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exit status {exitcode}"
    return f"worker process {number} died ({how})"


def _start_workers(sweep: _Sweep, parent_run_id: str, limits: _Limits, count: int) -> _Crew:
    crew = _Crew()
    if count <= 0:
        return crew
    ctx = multiprocessing.get_context("spawn")
    args: dict[str, Any] = {
        "root": str(sweep.project.root),
        "config_dir": str(sweep.project.config_dir),
        "experiment": sweep.experiment,
        "stage": sweep.stage,
        "overrides": list(sweep.overrides),
        "platform": sweep.platform,
        "parent_run_id": parent_run_id,
        "limits": {
            "deadline": None,
            "started": limits.started,
            "on_trial_error": limits.on_trial_error,
            "max_failed": limits.max_failed,
        },
    }
    if limits.deadline is not None:
        args["timeout_left"] = limits.deadline - time.monotonic()
    for index in range(count):
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=_worker_process, args=({**args, "worker": index + 1}, theirs), daemon=False
        )
        proc.start()
        theirs.close()  # the worker holds its end: when it exits, this end reads EOF
        crew.procs.append(proc)
        crew.channels.append(mine)
    return crew
