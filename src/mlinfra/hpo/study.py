"""The Optuna side of a sweep: storage, sampler, pruner, search space and the budget.

* Storage: ``study.db`` (SQLite) in the study folder by default, refused on network and FUSE
  mounts; any RDB URL (PostgreSQL) for several machines. Each running trial sends a heartbeat;
  a trial whose worker stopped sending one (SIGKILL, a lost VM) is failed by the next worker and
  re-queued with its parameters (Optuna's ``RetryFailedTrialCallback``).
* The budget (``sampling.max_trials``) counts *finished* trials across restarts: completed and
  pruned ones, and failures of the objective. A trial failed because its worker died does not
  count (its re-queued copy does), nor does one that found the budget already taken.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlinfra.config.models import EarlyTermination, HpoSpec, ParamSpec
from mlinfra.core.imports import require
from mlinfra.errors import ConfigError

__all__ = [
    "BUDGET_ATTR",
    "FAILURE_ATTR",
    "MAX_RETRIES",
    "Budget",
    "budget",
    "fail_stale_trials",
    "make_pruner",
    "make_sampler",
    "open_study",
    "over_budget",
    "quiet_experimental",
    "study_storage_url",
    "suggest_params",
]

#: User attribute of a trial failed by the objective: the reason (counts toward the budget).
FAILURE_ATTR = "mlinfra_failure"
#: User attribute of a trial that started after the budget was spent (never counted).
BUDGET_ATTR = "mlinfra_over_budget"
#: How many times a trial that did not finish (its worker died, or the sweep stopped on a fault
#: of its own bookkeeping) is queued again with its parameters.
MAX_RETRIES = 3


def suggest_params(trial: Any, space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Sample one value per search-space parameter (enqueued values are reused as given)."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.type == "choice":
            assert spec.values is not None
            params[name] = trial.suggest_categorical(name, spec.values)
            continue
        assert spec.min is not None and spec.max is not None
        if spec.type in ("int", "logint"):
            step = int(spec.step) if spec.step and spec.type == "int" else 1
            params[name] = trial.suggest_int(
                name, int(spec.min), int(spec.max), step=step, log=spec.type == "logint"
            )
        else:
            params[name] = trial.suggest_float(
                name,
                spec.min,
                spec.max,
                log=spec.type == "loguniform",
                step=spec.step if spec.type == "uniform" else None,
            )
    return params


def make_sampler(hpo: HpoSpec, *, offset: int = 0) -> Any:
    """TPE or random sampling, seeded by ``sampling.seed`` when set.

    ``offset`` moves the seed on (:func:`open_study` passes the number of trials the study
    already has, and each worker its index), so a resumed sweep or a second worker does not
    sample the same parameters again, while a fresh sweep stays reproducible.
    """
    samplers = require("optuna.samplers", feature="HPO sweeps")
    seed = hpo.sampling.seed
    if seed is not None:
        seed = (seed + offset) % (2**32)
    if hpo.sampling.algorithm == "random":
        return samplers.RandomSampler(seed=seed)
    return samplers.TPESampler(seed=seed)


def make_pruner(policy: EarlyTermination) -> Any:
    """The pruner of ``early_termination``: ``none``, ``median`` or ``hyperband``.

    ``median`` reads ``evaluation_interval`` (default 1), ``delay_evaluation`` (warm-up steps,
    default 0) and ``startup_trials`` (default 5).

    Raises:
        ConfigError: ``bandit`` (AzureML's policy, which Optuna has no equivalent of).
    """
    pruners = require("optuna.pruners", feature="HPO sweeps")
    extra = policy.model_extra or {}
    if policy.policy == "none":
        return pruners.NopPruner()
    if policy.policy == "median":
        return pruners.MedianPruner(
            n_startup_trials=int(extra.get("startup_trials", 5)),
            n_warmup_steps=int(extra.get("delay_evaluation", 0)),
            interval_steps=int(extra.get("evaluation_interval", 1)),
        )
    if policy.policy == "hyperband":
        return pruners.HyperbandPruner()
    raise ConfigError(
        f"early_termination.policy {policy.policy!r} is AzureML's bandit policy, which Optuna "
        "does not have; use 'median' or 'hyperband' (or 'none')",
        key="hpo.early_termination.policy",
    )


def study_storage_url(
    hpo: HpoSpec,
    study_dir: Path,
    environ: Mapping[str, str],
    *,
    shared_database: str | None = None,
) -> str:
    """Where the study lives, first found of:

    ``$MLINFRA_HPO_STORAGE`` > ``$MLINFRA_DATABASE_URL`` (the shared database) >
    ``storage.url`` of the HPO config > ``shared_database`` (``shared.database`` in
    ``mlflow.yaml``) > ``sqlite:///<study folder>/study.db``. The environment beats files;
    within one source the specific setting beats the shared one. ``postgresql://`` URLs get the
    psycopg 3 driver (:func:`~mlinfra.registry.location.sqlalchemy_url`).

    Raises:
        UnsafeStorageError: the SQLite file would be on a network or FUSE mount.
    """
    from mlinfra.registry.location import DATABASE_ENV, check_local_disk, sqlalchemy_url

    url = (
        environ.get("MLINFRA_HPO_STORAGE")
        or environ.get(DATABASE_ENV)
        or hpo.storage.url
        or shared_database
    )
    if url:
        return sqlalchemy_url(url)
    path = study_dir / "study.db"
    check_local_disk(path, what="study storage")
    return f"sqlite:///{path}"


def open_study(url: str, name: str, hpo: HpoSpec, *, worker: int = 0) -> Any:
    """Create or load the study ``name`` at ``url`` with heartbeats and retry of dead trials.

    ``worker`` (0 for the first process) keeps seeded workers from sampling alike.

    Raises:
        ConfigError: the study exists with the other direction.
    """
    optuna = require("optuna", feature="HPO sweeps")
    storages = require("optuna.storages", feature="HPO sweeps")
    heartbeat = hpo.storage.heartbeat_seconds
    grace = hpo.storage.grace_seconds or max(3 * heartbeat, 2.0)
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # several workers write one file: wait for the lock instead of failing at once
        engine = {"connect_args": {"timeout": 60}}
    with quiet_experimental():  # heartbeats have been "experimental" since Optuna 2.9
        storage = storages.RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=max(1, math.ceil(heartbeat)),
            grace_period=max(1, math.ceil(grace)),
            heartbeat_stale_trial_callback=storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRIES
            ),
        )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=hpo.objective.direction,
        sampler=make_sampler(hpo),
        pruner=make_pruner(hpo.early_termination),
        load_if_exists=True,
    )
    existing = len(study.get_trials(deepcopy=False))
    if hpo.sampling.seed is not None and (existing or worker):
        # the seed's sequence restarts in every process: move it on past what was sampled
        study.sampler = make_sampler(hpo, offset=existing + 7919 * worker)
    wanted = optuna.study.StudyDirection.MAXIMIZE
    if hpo.objective.direction == "minimize":
        wanted = optuna.study.StudyDirection.MINIMIZE
    if study.direction != wanted:
        raise ConfigError(
            f"study {name!r} in {url} optimises the other direction ({study.direction.name}); "
            "use another study name or storage",
            key="hpo.objective.direction",
        )
    return study


@contextmanager
def quiet_experimental() -> Iterator[None]:
    """Silence Optuna's ``ExperimentalWarning`` for the features mlinfra relies on on purpose."""
    exceptions = require("optuna.exceptions", feature="HPO sweeps")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", exceptions.ExperimentalWarning)
        yield


def fail_stale_trials(study: Any) -> None:
    """Fail (and re-queue) the trials whose worker stopped sending heartbeats."""
    storages = require("optuna.storages", feature="HPO sweeps")
    with quiet_experimental():
        storages.fail_stale_trials(study)


class Budget:
    """How much of ``max_trials`` is spent, read from the study's trials."""

    def __init__(self, finished: int, running: int, failed: int, max_trials: int) -> None:
        self.finished = finished
        self.running = running
        self.failed = failed
        self.max_trials = max_trials

    @property
    def done(self) -> bool:
        """Every trial of the budget has finished."""
        return self.finished >= self.max_trials

    @property
    def taken(self) -> bool:
        """Every trial of the budget has finished or is running."""
        return self.finished + self.running >= self.max_trials


def _counts(trial: Any, state: Any) -> bool:
    if trial.state in (state.COMPLETE, state.PRUNED):
        return True
    return bool(trial.state == state.FAIL and FAILURE_ATTR in trial.user_attrs)


def budget(study: Any, max_trials: int, *, trials: Sequence[Any] | None = None) -> Budget:
    """The budget as the study's storage has it now (or as ``trials``, read just before)."""
    state = require("optuna.trial", feature="HPO sweeps").TrialState
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    finished = sum(1 for t in trials if _counts(t, state))
    running = sum(1 for t in trials if t.state == state.RUNNING)
    failed = sum(1 for t in trials if t.state == state.FAIL and FAILURE_ATTR in t.user_attrs)
    return Budget(finished, running, failed, max_trials)


def over_budget(study: Any, number: int, max_trials: int) -> bool:
    """Whether trial ``number`` started after the budget was spent: at least ``max_trials``
    earlier trials have finished or are running (so concurrent workers never overshoot)."""
    state = require("optuna.trial", feature="HPO sweeps").TrialState
    earlier = 0
    for t in study.get_trials(deepcopy=False):
        if t.number < number and (_counts(t, state) or t.state == state.RUNNING):
            earlier += 1
    return earlier >= max_trials
