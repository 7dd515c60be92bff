"""The worker loop of a sweep, and the extra ``--workers`` processes running it.

:func:`work` runs trials on the study until the budget is spent (counted across processes),
the timeout passes, too many trials failed or it is told to stop. :func:`start_workers` spawns
the extra processes, each resolving the sweep again from its arguments, and returns a
:class:`Crew` holding a pipe to each: a worker sends the error that ended it, the main process
tells it to stop before its next trial.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from mlinfra.config import Project
from mlinfra.core.imports import require
from mlinfra.errors import MlinfraError
from mlinfra.hpo.faults import STOPPED, Stores, fault_text, is_fault, quiet_logs
from mlinfra.hpo.setup import Sweep, backup_callbacks, resolve
from mlinfra.hpo.study import FAILURE_ATTR, Budget, budget, fail_stale_trials, open_study
from mlinfra.hpo.trial import ObjectiveFailed, OverBudget, run_trial

__all__ = ["TIMEOUT_REASON", "Crew", "Limits", "start_workers", "work"]

_POLL_SECONDS = 0.5
#: ``SweepResult.stopped`` when ``sampling.timeout_minutes`` ended the sweep (not a failure).
TIMEOUT_REASON = "the timeout (sampling.timeout_minutes) was reached"
#: What the main process sends a worker to make it stop before its next trial.
_STOP = "stop"


@dataclass
class Limits:
    """When a worker stops before the budget is spent."""

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


def _stop_reason(trials: Sequence[Any], limits: Limits) -> str | None:
    failed = _failed_since(trials, limits.started)
    if failed and limits.on_trial_error == "stop":
        return f"a trial failed and on_trial_error is 'stop' ({failed[0]})"
    if limits.max_failed is not None and len(failed) >= limits.max_failed:
        return (
            f"{len(failed)} trials failed (max_failed_trials {limits.max_failed}); "
            f"last: {failed[-1]}"
        )
    return None


def work(
    sweep: Sweep,
    study: Any,
    parent_run_id: str,
    limits: Limits,
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
        return run_trial(sweep, study, trial, parent_run_id, bound)

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
            catch=(ObjectiveFailed, OverBudget),
            callbacks=list(callbacks),
            gc_after_trial=False,
            show_progress_bar=False,
        )


def _worker_process(args: dict[str, Any], channel: Connection) -> None:
    """The entry point of a ``--workers`` process. It runs trials until the budget is spent or
    the main process sends :data:`_STOP` on ``channel``. An error that ends it is sent on
    ``channel`` in one line (the main process stops the sweep with it) and the process exits
    with status 1, with no traceback unless it is a bug (neither mlinfra's error nor a fault of
    the disk or of a store)."""
    stores = Stores()
    try:
        _worker_sweep(args, channel, stores)
    except Exception as exc:
        with contextlib.suppress(OSError):  # the main process may be gone
            channel.send(fault_text(exc, stores).removeprefix(STOPPED))
        if not isinstance(exc, MlinfraError) and not is_fault(exc):
            traceback.print_exc()
        raise SystemExit(1) from None


def _worker_sweep(args: dict[str, Any], channel: Connection, stores: Stores) -> None:
    quiet_logs()
    project = Project.discover(project=args["root"], config_dir=args["config_dir"])
    from mlinfra.registry import open_registry

    with open_registry(project.root, project.config_dir, environ=project.environ) as registry:
        sweep = resolve(
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
        limits = Limits(**args["limits"])
        if "timeout_left" in args:  # monotonic clocks are per process
            limits.deadline = time.monotonic() + float(args["timeout_left"])
        callbacks = backup_callbacks(sweep)
        work(sweep, study, args["parent_run_id"], limits, None, callbacks, _told(channel))


def _told(channel: Connection) -> Callable[[], str | None]:
    """Whether the main process told this worker to stop (a main process that is gone did
    not: the worker goes on to the end of the budget)."""

    def stop() -> str | None:
        with contextlib.suppress(EOFError, OSError):
            if channel.poll() and channel.recv() == _STOP:
                return "the main process stopped the sweep"
        return None

    return stop


@dataclass
class Crew:
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


def start_workers(sweep: Sweep, parent_run_id: str, limits: Limits, count: int) -> Crew:
    """Spawn ``count`` worker processes on the sweep (none when ``count`` is 0)."""
    crew = Crew()
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
