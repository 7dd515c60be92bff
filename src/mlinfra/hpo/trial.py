"""One trial of a sweep (k-fold when enabled), and the refit of the best trial.

Each calls the user's objective with a :class:`TrialContext` under its own MLflow run. What the
objective raises or returns that is not a finite number fails the trial
(:class:`ObjectiveFailed`); a fault of the sweep's own bookkeeping stops the sweep
(:class:`SweepError`) and queues the trial again with its params.
"""

from __future__ import annotations

import math
import sys
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mlinfra.config import HpoSpec
from mlinfra.core.imports import require
from mlinfra.errors import add_note
from mlinfra.hpo.context import FoldInfo, TrialContext
from mlinfra.hpo.faults import (
    STOPPED,
    OverBudget,
    Stores,
    SweepError,
    fault_text,
    retry_later,
    storage_failure,
)
from mlinfra.hpo.setup import Sweep
from mlinfra.hpo.study import BUDGET_ATTR, FAILURE_ATTR, over_budget, suggest_params
from mlinfra.naming import NamingContext
from mlinfra.naming.keys import compute_trial_key_hash
from mlinfra.paths import build_output_path

__all__ = ["ObjectiveFailed", "OverBudget", "refit", "run_trial"]


class ObjectiveFailed(Exception):
    """A trial's objective raised or returned no usable number (the reason is recorded)."""


class _ObjectiveRaised(ObjectiveFailed):
    """The objective raised (its exception is the ``__cause__``)."""


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ObjectiveFailed(
            f"the objective returned {type(value).__name__} {value!r} for {what}; it must "
            "return a number (the metric)"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ObjectiveFailed(f"the objective returned {number} for {what}, not a finite number")
    return number


def _seed(hpo: HpoSpec, number: int | None) -> int:
    return (hpo.sampling.seed or 0) + (number or 0)


def _call(sweep: Sweep, ctx: TrialContext) -> Any:
    return sweep.objective(ctx)


def _objective(sweep: Sweep, ctx: TrialContext) -> Any:
    """Call the objective for a trial or a fold: what it raises (but pruning) is its failure."""
    optuna = require("optuna", feature="HPO sweeps")
    try:
        return _call(sweep, ctx)
    except optuna.TrialPruned:
        raise
    except Exception as exc:
        raise _ObjectiveRaised(f"{type(exc).__name__}: {exc}") from exc


def run_trial(
    sweep: Sweep, study: Any, trial: Any, parent_run_id: str, bound: Callable[[int], int]
) -> float:
    """One trial. A failure of the objective fails the trial (counted toward the budget); a
    fault of the sweep's own bookkeeping (tracking, metadata, the study storage: a full disk, a
    denied write) is not the objective's: it stops the sweep with a :class:`SweepError` naming
    what failed, the trial is not counted, and it is queued again with its params.

    ``bound(n)`` is at most how many trials before trial ``n`` count toward the budget.

    Raises:
        ObjectiveFailed: the objective raised or returned no finite number (recorded).
        OverBudget: other workers spent the budget before this trial started.
        optuna.TrialPruned: the pruner stopped the trial.
        SweepError: the sweep could not record its own work.
    """
    optuna = require("optuna", feature="HPO sweeps")
    try:
        return _trial(sweep, study, trial, parent_run_id, bound)
    except (optuna.TrialPruned, OverBudget):
        raise
    except ObjectiveFailed as exc:  # raised, or a result that is not a finite number
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
        note = None if storage_failure(exc) is not None else retry_later(study, trial)
        text = fault_text(exc, Stores(sweep.where.storage_url, sweep.target.tracking_uri))
        error = SweepError(f"{STOPPED}trial {trial.number}: {text}")
        if note is not None:
            add_note(error, note)
        raise error from exc


def _trial(
    sweep: Sweep, study: Any, trial: Any, parent_run_id: str, bound: Callable[[int], int]
) -> float:
    optuna = require("optuna", feature="HPO sweeps")
    from mlinfra.tracking import track_hpo_trial

    hpo = sweep.where.hpo
    max_trials = hpo.sampling.max_trials
    # bound(n): at most how many earlier trials count; the exact (costly) check is only made
    # when the budget could be spent
    if bound(trial.number) >= max_trials and over_budget(study, trial.number, max_trials):
        trial.set_user_attr(BUDGET_ATTR, True)
        raise OverBudget(trial.number)
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
    sweep: Sweep, trial: Any, trial_ctx: NamingContext, base: TrialContext, run_id: str
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


def refit(sweep: Sweep, study: Any, parent_run_id: str) -> str | None:
    """Retrain the best trial once (``refit.enabled``); the study remembers it was done.
    Returns the refit's run name (``None`` when no trial completed)."""
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
