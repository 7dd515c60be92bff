"""Fault matrix of the sweep (``mlinfra hpo`` / ``mlinfra.hpo.runner.run_sweep``): SIGKILL at the
points other than mid-trial (tests/hpo/test_sweep_crash.py), disk full and permission denied at
the sweep's write boundaries, and the clock stepping back.

Every sweep is real: a copy of ``examples/resume_ner`` (stage ``smoke``) with a tiny objective,
Optuna on ``study.db``, MLflow on an SQLite file, the project's SQLite registry.

* SIGKILL: a child process runs ``mlinfra hpo``; a monkeypatch in the child (or the objective,
  for the refit) writes a marker file at the chosen point and waits there; the test SIGKILLs the
  child and reruns the same sweep in a new process. Children are forked from a fork server that
  imported MLflow, Optuna and mlinfra once (a fresh interpreter takes about 2 s to get there).
* Disk full / permission denied: ``ENOSPC`` / ``EACCES`` raised at ``os.open``, ``os.fsync`` or
  ``os.replace`` of the sweep's metadata and backup writes, from a chosen call on, until the fault
  is cleared (a full disk stays full). The study database gets its faults from SQLite itself:
  ``PRAGMA max_page_count`` (SQLITE_FULL, with 512-byte pages so the next trials need pages) and
  ``PRAGMA query_only`` (SQLITE_READONLY), set on the connections of the sweep's own thread
  (Optuna's heartbeat thread is left alone: an error there would only be logged). The CLI runs
  in this process (``mlinfra.cli.main.main``) so the faults can be injected; its standard error
  is read at the file-descriptor level, with what Optuna's logger printed.
* The clock: ``mlinfra.core.timeutil.utc_now`` stepped back an hour between trials and inside one.

Invariants after the fault and a rerun: the budget is exact (finished == ``max_trials``, nothing
running or waiting), ``PRAGMA integrity_check`` of the study is ok, one parent run, one run per
run identity (``run_key_hash``) and per finished trial, unique run names, no run left RUNNING,
every ``metadata.json`` parses and no temporary file is left.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import optuna
import pytest
from fault_helpers import (
    FAULTS,
    HEARTBEAT,
    TRACKING_ENV,
    Clock,
    Fault,
    FsyncFault,
    OpenFault,
    ReplaceFault,
    SqliteFault,
    Sweeps,
    after_trial,
    all_json_parses,
    check_sweep,
    copy_example,
    inside_trial,
    integrity,
    sweep_metadata,
    trial_metadata,
)

from mlinfra.hpo.runner import StudyLocation, trial_output_dir
from mlinfra.hpo.study import FAILURE_ATTR

MAX_TRIALS = 4
MODULE = "fault_sweep_objectives"
State = optuna.trial.TrialState

OBJECTIVES = '''\
"""The objective of tests/reliability/test_fault_sweep.py."""

import json
import os
import time
from pathlib import Path


def fast(ctx):
    """Maximised; different for every learning rate. With FAULT_SWEEP_HANG_REFIT set, the refit
    writes that marker file and waits (to be killed)."""
    value = ctx.params["learning_rate"] * 1e4
    record = {"trial": ctx.trial_number, "refit": ctx.refit, "run_id": ctx.run_id}
    (ctx.output_dir / "result.json").write_text(json.dumps(record), encoding="utf-8")
    marker = os.environ.get("FAULT_SWEEP_HANG_REFIT")
    if ctx.refit and marker:
        tmp = Path(marker + ".tmp")
        tmp.write_text(json.dumps({"run_id": ctx.run_id, "pid": os.getpid()}), encoding="utf-8")
        os.replace(tmp, marker)
        time.sleep(300)
    return value
'''

# The child: `mlinfra hpo --project ROOT ARGS`, stopped at POINT (it writes the marker file
# MARKERS/POINT, then waits to be killed). POINT "none" runs the sweep through.
_CHILD = r"""
import json, os, sys, time
from pathlib import Path

root, markers, point, *args = sys.argv[1:]
markers = Path(markers)


def hang(**info):
    tmp = markers / f".{point}.tmp"
    tmp.write_text(json.dumps({"pid": os.getpid(), **info}), encoding="utf-8")
    os.replace(tmp, markers / point)
    time.sleep(300)


from mlinfra.hpo import runner, workers

if point == "study-created":  # the study exists, no trial yet (nor the study's attributes)
    open_study = runner.open_study

    def opened(*a, **k):
        study = open_study(*a, **k)
        hang(trials=len(study.get_trials(deepcopy=False)))
        return study

    runner.open_study = opened
elif point == "run-closed":  # trial 1: MLflow run ended, metadata written; Optuna not told yet
    run_trial = workers.run_trial  # looked up there by the worker loop

    def closed(sweep, study, trial, *a):
        value = run_trial(sweep, study, trial, *a)
        if trial.number == 1:
            hang(trial=trial.number, params=trial.params)
        return value

    workers.run_trial = closed
elif point == "trial-told":  # trial 1 is COMPLETE in the study; the sweep's callbacks not run
    backup_callbacks = runner.backup_callbacks  # looked up there by the sweep

    def callbacks(sweep):
        def told(study, trial):
            if trial.number == 1:
                hang(trial=trial.number, state=trial.state.name)

        return [told, *backup_callbacks(sweep)]

    runner.backup_callbacks = callbacks
elif point == "final-backup":  # the end-of-sweep backup: study snapshot taken, nothing copied
    from mlinfra.storage import base

    snapshot = base.snapshot_sqlite
    taken = []

    def snapped(src, dst):
        snapshot(src, dst)
        taken.append(dst)
        if len(taken) == 2:  # the first backup followed trial 2 (every_n_trials=3)
            hang(snapshot=str(dst))

    base.snapshot_sqlite = snapped
elif point == "refit":  # the refit's objective is running (its run started)
    os.environ["FAULT_SWEEP_HANG_REFIT"] = str(markers / point)

from mlinfra.cli.main import main

main(["hpo", "--no-progress", "--project", root, *args])
"""

# Children are forked from a fork server that has imported MLflow, Optuna and mlinfra once:
# each is a new process (SIGKILLed for real) that starts with those modules imported and nothing
# run. Their output goes to a log file; the environment loses MLFLOW_*/MLINFRA_*.
_PRELUDE = """
import os, sys
log = os.open(LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.dup2(log, 1)
os.dup2(log, 2)
for name in [n for n in os.environ if n.startswith(("MLFLOW_", "MLINFRA_"))]:
    del os.environ[name]
sys.argv = ARGV
"""
_PRELOAD = [
    "mlflow",
    "mlflow.store.db.utils",
    "mlflow.store.tracking.sqlalchemy_store",
    "optuna",
    "sqlalchemy",
    "mlinfra.cli.main",
    "mlinfra.cli.hpo_cmd",
    "mlinfra.hpo.runner",
    "mlinfra.registry",
    "mlinfra.storage",
    "mlinfra.tracking",
]


@pytest.fixture(scope="module")
def launcher() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)  # no effect if the server already runs
    return context


class Child:
    """A child process running ``mlinfra hpo`` through :data:`_CHILD`."""

    def __init__(self, launcher: Any, log: Path, argv: list[str]) -> None:
        self.log = log
        self.proc = launcher.Process(
            target=exec,
            args=(_PRELUDE + _CHILD, {"__name__": "__child__", "LOG": str(log), "ARGV": argv}),
            daemon=True,
        )
        self.proc.start()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def wait_for(self, marker: Path, timeout: float = 60) -> None:
        """Until the child writes ``marker`` (it then waits there)."""
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if not self.proc.is_alive():
                pytest.fail(f"the child exited ({self.proc.exitcode}) first:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {marker.name} after {timeout:.0f} s:\n{self.output()}")
            time.sleep(0.005)

    def sigkill(self) -> None:
        self.proc.kill()
        self.proc.join(30)
        assert self.proc.exitcode == -signal.SIGKILL

    def finish(self, timeout: float = 120) -> None:
        """Until the child exits; it must succeed."""
        self.proc.join(timeout)
        if self.proc.exitcode is None:
            self.proc.kill()
            self.proc.join(30)
            pytest.fail(f"the child did not finish in {timeout:.0f} s:\n{self.output()}")
        assert self.proc.exitcode == 0, f"exit {self.proc.exitcode}:\n{self.output()}"

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(30)


@pytest.fixture(autouse=True)
def _no_tracking_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith((*TRACKING_ENV, "FAULT_SWEEP_")):
            monkeypatch.delenv(name)


@dataclass
class SweepProject(Sweeps):
    """A copy of the example project with the objective above; helpers to sweep it, to run it
    in a child process stopped at a point, and to check it."""

    module: ClassVar[str] = MODULE
    max_trials: ClassVar[int] = MAX_TRIALS
    markers: Path
    drive: Path
    launcher: Any
    started: list[Child] = field(default_factory=list)

    def child(self, point: str, *extra: str) -> Child:
        """``mlinfra hpo`` in a new process, stopped at ``point`` (``none``: run through)."""
        argv = ["-c", str(self.root), str(self.markers), point, *self.args(*extra)]
        child = Child(self.launcher, self.markers.parent / f"{point}-{len(self.started)}.log", argv)
        self.started.append(child)
        return child


@pytest.fixture
def project(
    tmp_path: Path, mlflow_template: Path, launcher: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SweepProject]:
    root = tmp_path / "proj"
    copy_example(root, MODULE, OBJECTIVES, mlflow_template)
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.chdir(root)
    made = SweepProject(root, markers, tmp_path / "MyDrive" / "proj", launcher)
    yield made
    for child in made.started:
        child.stop()
    sys.modules.pop(MODULE, None)  # each project has its own copy
    if str(root) in sys.path:
        sys.path.remove(str(root))


# ---- SIGKILL ----------------------------------------------------------------------------------

#: Overrides of each kill point: heartbeats for the trial left RUNNING, a backup, a refit.
POINTS: dict[str, tuple[str, ...]] = {
    "study-created": (),
    "run-closed": HEARTBEAT,
    "trial-told": (),
    "final-backup": ("+hpo.backup.enabled=true", "+hpo.backup.every_n_trials=3"),
    "refit": ("hpo.refit.enabled=true",),
}


def _restore_backup(project: SweepProject, where: StudyLocation, into: Path) -> Path:
    """Restore the study folder's backup into a copy of the project; the restored study.db."""
    from mlinfra.storage import DriveBackupStore

    clone = into / "proj"
    local = clone / where.study_dir.relative_to(project.root)
    local.parent.mkdir(parents=True)
    DriveBackupStore(clone, project.drive).restore(local).raise_for_error()
    assert not [p.name for p in local.iterdir() if "mlinfra-snap" in p.name]
    assert integrity(local / "study.db") == ["ok"]
    return local / "study.db"


def _complete_in(db: Path) -> int:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()
        return int(row[0])
    finally:
        conn.close()


@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_at_a_sweep_point_then_a_rerun_keeps_the_budget_exact(
    project: SweepProject, tmp_path: Path, point: str
) -> None:
    extra = POINTS[point]
    if point == "final-backup":
        extra = (*extra, f"+hpo.backup.root={project.drive}")
    child = project.child(point, *extra)
    marker = project.markers / point
    child.wait_for(marker)
    child.sigkill()
    info = json.loads(marker.read_text(encoding="utf-8"))

    # where the kill left the sweep
    where = project.locate(*extra)
    assert integrity(where.study_dir / "study.db") == ["ok"]
    study = project.study(where)
    states = [t.state for t in study.get_trials()]
    runs = {r.info.run_id: r for r in project.runs()}
    if point == "study-created":
        assert info["trials"] == 0 and states == []
        assert [r.info.status for r in runs.values()] == ["RUNNING"]  # the parent
    elif point == "run-closed":
        assert states == [State.COMPLETE, State.RUNNING]
        run = runs[study.get_trials()[1].user_attrs["mlflow_run_id"]]
        assert run.info.status == "FINISHED"
    elif point == "trial-told":
        assert states == [State.COMPLETE, State.COMPLETE]
    else:
        assert states == [State.COMPLETE] * MAX_TRIALS
    if point == "final-backup":
        before = _restore_backup(project, where, tmp_path / "before")
        assert _complete_in(before) == 3  # the backup after trial 2 is whole
    if point == "refit":
        assert runs[info["run_id"]].info.status == "RUNNING"

    project.child("none", *extra).finish()  # the same sweep, in a new process
    checked = check_sweep(project, *extra)

    trials = checked["trials"]
    parents = [r for r in checked["runs"] if "mlflow.parentRunId" not in r.data.tags]
    assert parents[0].info.status == "FINISHED"
    if point == "run-closed":  # the trial left running is failed, retried once, run found again
        killed = trials[1]
        assert killed.state == State.FAIL and FAILURE_ATTR not in killed.user_attrs
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
        assert len(retries) == 1 and retries[0].params == info["params"]
        assert retries[0].user_attrs["mlflow_run_id"] == killed.user_attrs["mlflow_run_id"]
        assert len(trials) == MAX_TRIALS + 1
    else:
        assert len(trials) == MAX_TRIALS  # no trial was lost or run twice
    if point == "final-backup":
        after = _restore_backup(project, where, tmp_path / "after")
        assert _complete_in(after) == MAX_TRIALS
    if point == "refit":  # the refit's run is found again and finished: one refit run
        refits = [r for r in checked["runs"] if r.info.run_id == info["run_id"]]
        assert len(refits) == 1 and refits[0].info.status == "FINISHED"
        assert len(checked["runs"]) == 1 + MAX_TRIALS + 1
        assert checked["study"].user_attrs["mlinfra_refit_of"] == checked["study"].best_trial.number


# ---- disk full and permission denied ------------------------------------------------------------


#: Where the fault hits: what is injected, from which call, and the path the error must name.
SITES = [
    "sweep-metadata-open",  # the sweep folder's first metadata.json, before the study opens
    "trial-metadata-replace",  # trial 1's metadata.json as its run starts (3rd trial write)
    "trial-metadata-fsync",  # trial 1's metadata.json as its run ends (4th trial write)
    "backup-fsync",  # the backup of the study folder after trial 1 (its 2nd backup)
    "study-db",  # the study database, from the trial after trial 1
]


def _inject(
    site: str,
    code: int,
    project: SweepProject,
    mp: pytest.MonkeyPatch,
    study_db_fault: Callable[[str], SqliteFault],
    fault_name: str,
) -> tuple[Callable[[], list[str]], Callable[[], None]]:
    """Inject the fault (undone with ``mp``); returns what tells the paths it was raised for,
    and what clears the database fault."""

    if site == "study-db":
        db = study_db_fault(fault_name)

        def activate() -> None:
            db.on = True

        def clear() -> None:
            db.on = False

        if fault_name == "disk-full":  # trial 2 finds no page for its params: it fails
            after_trial(mp, 1, activate)
        else:  # trial 2's objective runs, then Optuna cannot record it: it is left RUNNING
            inside_trial(mp, 2, activate)
        return (lambda: ["study.db"] if db.on else []), clear
    if site == "sweep-metadata-open":
        fault: Fault = OpenFault(os.open, code, 1, sweep_metadata)
        mp.setattr(os, "open", fault)
    elif site == "trial-metadata-replace":
        fault = ReplaceFault(os.replace, code, 3, trial_metadata)
        mp.setattr(os, "replace", fault)
    elif site == "trial-metadata-fsync":
        fault = FsyncFault(os.fsync, code, 4, trial_metadata)
        mp.setattr(os, "fsync", fault)
    else:
        drive = str(project.drive)
        fault = FsyncFault(os.fsync, code, 10**9, lambda p: p.startswith(drive))
        mp.setattr(os, "fsync", fault)

        def arm() -> None:  # the next fsync in the backup folder fails, and every one after
            fault.start = fault.calls + 1

        after_trial(mp, 1, arm)
    return (lambda: fault.paths), lambda: None


_QUEUED_AGAIN = [State.COMPLETE, State.FAIL, State.WAITING]
#: The study's trials when the sweep stopped.
STOPPED_AT = {
    ("trial-metadata-replace", "disk-full"): _QUEUED_AGAIN,
    ("trial-metadata-replace", "permission-denied"): _QUEUED_AGAIN,
    ("trial-metadata-fsync", "disk-full"): _QUEUED_AGAIN,
    ("trial-metadata-fsync", "permission-denied"): _QUEUED_AGAIN,
    # trial 1 counted, its backup failed
    ("backup-fsync", "disk-full"): [State.COMPLETE, State.COMPLETE],
    ("backup-fsync", "permission-denied"): [State.COMPLETE, State.COMPLETE],
    # trial 2 could not record its params; Optuna could record its failure
    ("study-db", "disk-full"): [State.COMPLETE, State.COMPLETE, State.FAIL],
    # trial 2 ran, Optuna could not record it: left RUNNING, retried once it is stale
    ("study-db", "permission-denied"): [State.COMPLETE, State.COMPLETE, State.RUNNING],
}


def _site_overrides(site: str, project: SweepProject) -> tuple[str, ...]:
    if site == "backup-fsync":
        return ("+hpo.backup.enabled=true", f"+hpo.backup.root={project.drive}")
    if site == "study-db":
        return HEARTBEAT  # a trial the fault left RUNNING is retried soon after
    return ()


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("site", SITES)
def test_write_fault_stops_the_sweep_with_a_clear_error_and_a_rerun_finishes(
    project: SweepProject,
    capfd: pytest.CaptureFixture[str],
    study_db_fault: Callable[[str], SqliteFault],
    site: str,
    fault: str,
) -> None:
    extra = _site_overrides(site, project)
    where = project.locate(*extra)
    with pytest.MonkeyPatch.context() as mp:
        fired, clear = _inject(site, FAULTS[fault], project, mp, study_db_fault, fault)
        code, err = project.cli(*extra, capfd=capfd)
        paths = fired()
    clear()  # the fault is gone

    assert paths, "the fault was never injected"
    assert code == 1, err
    assert "Traceback" not in err, err
    error = [line for line in err.splitlines() if line.startswith("error: ")]
    assert error, err
    if site == "backup-fsync":
        named = str(where.study_dir)  # the folder being backed up (the kernel names no file)
    elif site == "study-db":
        named = str(where.study_dir / "study.db")
    else:
        named = str(Path(paths[0]).parent)  # the folder of the metadata.json
    assert named in error[0], error[0]
    if site.startswith("trial-metadata"):
        assert "metadata.json" in error[0], error[0]
    reason = os.strerror(FAULTS[fault])
    if site == "study-db":
        reason = "full" if fault == "disk-full" else "readonly"
    assert reason in error[0], error[0]
    # nothing half-written, no run left RUNNING (the sweep's run ended FAILED)
    outputs = project.root / "outputs"
    all_json_parses(outputs)
    assert sorted(p.name for p in outputs.rglob("*.tmp")) == []
    if project.drive.exists():
        all_json_parses(project.drive)
    statuses = {r.info.run_name: r.info.status for r in project.runs()}
    assert "RUNNING" not in statuses.values(), statuses
    study_db = where.study_dir / "study.db"
    if site == "sweep-metadata-open":  # before the study was opened
        assert not study_db.exists() and list(statuses.values()) == ["FAILED"]
    else:
        assert integrity(study_db) == ["ok"]
        trials = project.study(where).get_trials()
        assert [t.state for t in trials] == STOPPED_AT[site, fault]
        assert not [t.number for t in trials if FAILURE_ATTR in t.user_attrs]  # none counted
    if site.startswith("trial-metadata"):  # not the objective's failure: queued again
        retry = trials[2]
        assert retry.system_attrs["failed_trial"] == 1 and retry.params == trials[1].params

    again = project.sweep(*extra)
    assert again.stopped is None
    assert (again.finished, again.completed, again.failed) == (MAX_TRIALS, MAX_TRIALS, 0)
    checked = check_sweep(project, *extra)
    assert len(checked["runs"]) == 1 + MAX_TRIALS  # a trial's run was found again, not doubled
    assert project.sweep(*extra).new_trials == 0


# ---- the clock --------------------------------------------------------------------------------


def _metadata(project: SweepProject, where: StudyLocation, trial: Any) -> dict[str, Any]:
    folder = trial_output_dir(project.project(), where, trial)
    meta: dict[str, Any] = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    return meta


def test_clock_stepping_back_between_and_inside_trials_keeps_the_sweep_exact(
    project: SweepProject, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside: list[int] = []

    def step_back_inside() -> None:
        clock.step_back(1)  # inside a trial: its run started an hour "later" than it ends
        inside.append(2)

    inside_trial(monkeypatch, 2, step_back_inside)

    def step_back(state: Any, _study: Any) -> None:
        if 0 < state.finished < MAX_TRIALS:
            clock.step_back(1)  # between trials

    refit = "hpo.refit.enabled=true"
    first = project.sweep(refit, on_progress=step_back)
    assert inside == [2], "the clock never stepped back inside a trial"
    assert clock.offset.total_seconds() <= -4 * 3600  # three between trials, one inside
    assert (first.finished, first.completed, first.new_trials) == (MAX_TRIALS, MAX_TRIALS, 4)
    assert first.refit_run_name
    checked = check_sweep(project, refit)  # stamps of one file never go backwards
    runs = checked["runs"]
    assert len(runs) == 1 + MAX_TRIALS + 1  # parent, trials, refit
    # the stepped clock was used: trial 3 started "before" trial 0
    started = [_metadata(project, checked["where"], t)["status"]["hpo"] for t in checked["trials"]]
    assert started[3]["started_at"] < started[0]["started_at"]
    assert all(s["state"] == "finished" for s in started)

    clock.step_back(1)
    again = project.sweep(refit)
    assert again.new_trials == 0
    assert again.parent_run_id == first.parent_run_id
    assert again.refit_run_name == first.refit_run_name
    assert {r.info.run_id for r in project.runs()} == {r.info.run_id for r in runs}
    assert len(project.study(checked["where"]).get_trials()) == MAX_TRIALS
