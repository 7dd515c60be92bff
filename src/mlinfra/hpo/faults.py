"""Faults of a sweep's own bookkeeping, told apart from the objective's failures.

A full disk, a denied write, a study storage or an MLflow store refusing writes is not the
objective's doing: it stops the sweep with one :class:`SweepError` naming what failed
(:func:`fault_text`), never a failed trial. The log filters keep that one line from being
buried under Optuna's and MLflow's tracebacks.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mlinfra.core.imports import require
from mlinfra.core.redact import hide_password
from mlinfra.errors import MlinfraError
from mlinfra.hpo.study import MAX_RETRIES, quiet_experimental

__all__ = [
    "STOPPED",
    "OverBudget",
    "Stores",
    "SweepError",
    "fault_text",
    "is_fault",
    "quiet_logs",
    "retry_later",
    "storage_failure",
    "tracking_failure",
]

#: How the message of a :class:`SweepError` begins.
STOPPED = "the sweep stopped: "


class SweepError(MlinfraError, RuntimeError):
    """The sweep stopped: a trial failed with ``on_trial_error: stop``, too many trials failed,
    a worker process died, or the sweep could not record its own work (a full disk, a denied
    write, a study storage that refuses writes); the message names the file or storage."""


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


def storage_failure(exc: BaseException) -> str | None:
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


def tracking_failure(exc: BaseException) -> str | None:
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
class Stores:
    """The stores a sweep's faults are named by, once known."""

    storage_url: str | None = None
    tracking_uri: str | None = None


def fault_text(exc: BaseException, stores: Stores) -> str:
    """``exc`` in one line naming what failed: the file, the study storage or MLflow's store."""
    tracking = tracking_failure(exc)
    if tracking is not None:
        uri = f" {hide_password(stores.tracking_uri)}" if stores.tracking_uri else ""
        return f"MLflow's tracking store{uri} failed: {tracking}"
    if isinstance(exc, MlinfraError):
        return str(exc)
    if isinstance(exc, OSError):
        path = exc.filename2 if exc.filename2 is not None else exc.filename
        reason = exc.strerror or str(exc)
        return f"{path}: {reason}" if path is not None else reason
    failure = storage_failure(exc)
    if failure is not None:
        url = stores.storage_url
        where = hide_password(url) if url else "the study storage"
        return f"the study storage {where} failed: {failure}"
    return f"{type(exc).__name__}: {exc}"


def is_fault(exc: BaseException) -> bool:
    """A fault of the disk, of the study storage or of MLflow's store (not a bug, not the
    objective)."""
    return (
        isinstance(exc, OSError)
        or storage_failure(exc) is not None
        or tracking_failure(exc) is not None
    )


class OverBudget(Exception):
    """A trial started after the budget was spent by other workers: it is marked and never
    counted, and it is not a failure to report."""

    def __init__(self, number: int) -> None:
        super().__init__(f"trial {number} started after the budget was spent")
        self.number = number


class _NoTracebackForStops(logging.Filter):
    """Optuna logs a trial that raised with its traceback. A sweep stopped by a fault of its own
    bookkeeping is one clear error (:class:`SweepError`), so its traceback is left out; a trial
    that started after the budget was spent (:class:`OverBudget`, a race between workers at
    the end of a sweep) is no failure, so both of Optuna's warnings about it are dropped."""

    def __init__(self) -> None:
        super().__init__()
        self._over_budget: set[str] = set()  # "Trial N failed with value": still to drop

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, OverBudget):
            self._over_budget.add(f"Trial {error.number} failed with value")
            return False
        if isinstance(error, SweepError):
            record.exc_info = None
            record.exc_text = None
        elif self._over_budget:
            message = record.getMessage()
            for prefix in self._over_budget:
                if message.startswith(prefix):
                    self._over_budget.discard(prefix)
                    return False
        return True


class _NoStoreErrorLog(logging.Filter):
    """MLflow logs a failure of its database (several lines of SQL and a traceback) and then
    raises it; the sweep reports that failure as one error line naming MLflow's store
    (:class:`SweepError`), so the log record is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        sa_exc = require("sqlalchemy.exc")
        return not (record.exc_info and isinstance(record.exc_info[1], sa_exc.DBAPIError))


def quiet_logs() -> None:
    """Optuna at warnings only, and the log filters above on (once per process)."""
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


def retry_later(study: Any, trial: Any) -> str | None:
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
