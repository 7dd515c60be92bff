"""Fault matrix of the sweep, continued: a fault inside an extra ``--workers`` process, and
MLflow's own store full or read-only in the middle of a sweep.

Every sweep is real: a copy of ``examples/resume_ner`` (stage ``smoke``) with a tiny objective,
Optuna on ``study.db``, MLflow on an SQLite file (rewritten with 512-byte pages, so a full
database is met soon), the project's SQLite registry.

* Worker processes are started with multiprocessing's ``spawn``: a monkeypatch of the test does
  not reach them. The fault is injected by a ``sitecustomize`` module the test puts first on
  ``PYTHONPATH``; it acts only in a spawned child (``--multiprocessing-fork`` in its argv) and
  only when ``FAULT_WORKERS_FAULT`` names a fault, so the main process (this one, running the CLI
  through ``mlinfra.cli.main.main``) never sees it. ``ENOSPC``/``EACCES`` at ``os.replace`` of
  the worker's first trial's ``metadata.json``, or ``PRAGMA query_only`` (SQLITE_READONLY) on
  the worker's connections to ``study.db`` once its first objective has started.
* The objective writes a marker (``<pid>-trial-<n>``) as it starts, the fault one
  (``<pid>-fault``) as it fires, and waits until two processes have left one: the main process
  cannot spend the whole budget before the worker (slower to start) has had its trial.
* SIGKILL of the worker: ``mlinfra hpo --workers 2`` in a real subprocess; the worker's
  objective hangs (``FAULT_WORKERS_HANG``, in a spawned child only) and the test SIGKILLs it by
  the pid in its marker.
* MLflow's store: ``PRAGMA max_page_count`` (SQLITE_FULL) or ``PRAGMA query_only``
  (SQLITE_READONLY) on the connections to ``mlflow.db``, armed after trial 1 (trial 2 cannot
  create its run) or inside trial 2's objective (its run cannot be ended: it stays RUNNING).

Invariants after the fault: exit status 1, one ``error:`` line naming the worker and the file
or store with the reason, no traceback, nothing half-written. After the rerun (one process, the
fault gone): the budget is exact, study integrity ok, one parent run, one run per run identity
and per finished trial (a trial's run is found again, never doubled), unique names, no run left
RUNNING, every ``metadata.json`` parses (:func:`fault_helpers.check_sweep`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import optuna
import pytest
from fault_helpers import (
    FAULTS,
    HEARTBEAT,
    TRACKING_ENV,
    SqliteFault,
    Sweeps,
    after_trial,
    all_json_parses,
    check_sweep,
    copy_example,
    inside_trial,
    integrity,
    small_pages,
    tracking_free_environ,
)

from mlinfra.hpo.study import BUDGET_ATTR, FAILURE_ATTR

MODULE = "fault_worker_objectives"
MAX_TRIALS = 4
HERE = Path(__file__).resolve().parent
MLINFRA = Path(sys.executable).parent / "mlinfra"
State = optuna.trial.TrialState

OBJECTIVES = '''\
"""The objective of tests/reliability/test_fault_sweep_workers.py."""

import json
import multiprocessing
import os
import time
from pathlib import Path


def mark(folder, name, **info):
    """Write the marker <pid>-<name> (atomically: readers skip names starting with a dot)."""
    tmp = folder / f".{os.getpid()}-{name}"
    tmp.write_text(json.dumps({"pid": os.getpid(), **info}), encoding="utf-8")
    os.rename(tmp, folder / f"{os.getpid()}-{name}")


def processes(folder):
    return {p.name.split("-")[0] for p in folder.iterdir() if not p.name.startswith(".")}


def fast(ctx):
    """Maximised; different for every learning rate. With FAULT_WORKERS_MARKERS set, marks its
    start there and waits (up to 60 s) for a second process to leave a marker; in a worker
    process with FAULT_WORKERS_HANG set, it then waits to be killed. Logs a loss curve."""
    markers = os.environ.get("FAULT_WORKERS_MARKERS")
    if markers and not ctx.refit:
        folder = Path(markers)
        worker = multiprocessing.parent_process() is not None
        mark(folder, f"trial-{ctx.trial_number}", params=ctx.params, worker=worker)
        deadline = time.monotonic() + 60
        while len(processes(folder)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        if worker and os.environ.get("FAULT_WORKERS_HANG"):
            time.sleep(300)
    for step in range(20):  # a training curve: sent to MLflow as the run ends
        ctx.log_metrics({"loss": 1.0 / (step + 1)}, step)
    value = ctx.params["learning_rate"] * 1e4
    (ctx.output_dir / "result.json").write_text(json.dumps({"pid": os.getpid()}), "utf-8")
    return value
'''

# Put first on PYTHONPATH (with this folder): every Python process started with it imports this
# module; a spawned worker of the sweep with FAULT_WORKERS_FAULT set gets the fault.
SITECUSTOMIZE = '''\
"""The fault of tests/reliability/test_fault_sweep_workers.py, in a sweep's worker process."""

import os
import sys

_FAULT = os.environ.get("FAULT_WORKERS_FAULT")

if _FAULT and "--multiprocessing-fork" in sys.argv:  # a spawned child: the worker
    import json
    from pathlib import Path

    import fault_helpers as fh

    _site, _kind = _FAULT.split(":")
    _markers = Path(os.environ["FAULT_WORKERS_MARKERS"])

    def _fired(path):
        tmp = _markers / f".{os.getpid()}-fault"
        tmp.write_text(json.dumps({"pid": os.getpid(), "path": path}), encoding="utf-8")
        os.rename(tmp, _markers / f"{os.getpid()}-fault")

    if _site == "trial-metadata-replace":

        class _Replace(fh.ReplaceFault):
            def error(self, *args):
                if not self.paths[:-1]:
                    _fired(self.paths[-1])
                return super().error(*args)

        os.replace = _Replace(os.replace, fh.FAULTS[_kind], 1, fh.trial_metadata)
    elif _site == "study-db":

        class _StudyDb(fh.SqliteFault):
            def active(self):  # once this worker's first objective has started
                return any(_markers.glob(f"{os.getpid()}-trial-*"))

        fh.listen_sqlite(_StudyDb(_kind, "study.db"))
'''


@pytest.fixture(autouse=True)
def _no_tracking_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith((*TRACKING_ENV, "FAULT_WORKERS_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def mlflow_small(mlflow_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The empty MLflow database with 512-byte pages: a full database is met within a trial."""
    path = tmp_path_factory.mktemp("mlflow-small") / "mlflow.db"
    path.write_bytes(mlflow_template.read_bytes())
    small_pages(path)
    return path


@dataclass
class WorkerProject(Sweeps):
    """A copy of the example project with the objective above, and its marker folder."""

    module: ClassVar[str] = MODULE
    max_trials: ClassVar[int] = MAX_TRIALS
    markers: Path

    def marked(self) -> dict[str, dict[str, Any]]:
        """The markers written so far (name → content)."""
        return {
            p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(self.markers.iterdir())
            if not p.name.startswith(".")
        }


@pytest.fixture
def project(
    tmp_path: Path, mlflow_small: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerProject]:
    root = tmp_path / "proj"
    copy_example(root, MODULE, OBJECTIVES, mlflow_small)
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.chdir(root)
    yield WorkerProject(root, markers)
    sys.modules.pop(MODULE, None)  # each project has its own copy
    if str(root) in sys.path:
        sys.path.remove(str(root))


def _error_line(err: str) -> str:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def _nothing_half_written(project: WorkerProject) -> None:
    outputs = project.root / "outputs"
    all_json_parses(outputs)
    assert sorted(p.name for p in outputs.rglob("*.tmp")) == []
    assert sorted(p.name for p in outputs.rglob(".metadata.json.*")) == []


def _rerun_finishes(project: WorkerProject, *extra: str) -> dict[str, Any]:
    """The same sweep in this process, the fault gone: it completes, with the invariants of
    :func:`fault_helpers.check_sweep`, no run doubled, and a second rerun adds nothing."""
    again = project.sweep(*extra)
    assert again.stopped is None
    assert (again.finished, again.completed, again.failed) == (MAX_TRIALS, MAX_TRIALS, 0)
    checked = check_sweep(project, *extra)
    assert len(checked["runs"]) == 1 + MAX_TRIALS  # a trial's run was found again, not doubled
    assert project.sweep(*extra).new_trials == 0
    return checked


# ---- a fault inside an extra worker process ----------------------------------------------------

#: site, fault: what the worker's first trial meets.
WORKER_FAULTS = [
    ("trial-metadata-replace", "disk-full"),  # its metadata.json as its run starts
    ("trial-metadata-replace", "permission-denied"),
    ("study-db", "permission-denied"),  # study.db read-only once its objective started
]


@pytest.mark.parametrize(("site", "fault"), WORKER_FAULTS)
def test_a_write_fault_in_a_worker_process_stops_the_sweep_naming_it_and_a_rerun_finishes(
    project: WorkerProject,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    site: str,
    fault: str,
) -> None:
    hook = project.root.parent / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    extra = HEARTBEAT if site == "study-db" else ()  # a trial left RUNNING is retried soon
    with monkeypatch.context() as mp:  # inherited by the spawned worker, not the rerun
        mp.setenv("PYTHONPATH", os.pathsep.join([str(hook), str(HERE)]))
        mp.setenv("FAULT_WORKERS_FAULT", f"{site}:{fault}")
        mp.setenv("FAULT_WORKERS_MARKERS", str(project.markers))
        code, err = project.cli(*extra, capfd=capfd, options=["--workers", "2"])

    marked = project.marked()
    main_pid = str(os.getpid())
    worker_pids = {name.split("-")[0] for name in marked} - {main_pid}
    assert len(worker_pids) == 1, marked  # the worker ran (or began) a trial
    where = project.locate(*extra)
    assert code == 1, err
    error = _error_line(err)
    assert "the sweep stopped: worker process 1: " in error, error
    if site == "study-db":  # Optuna could not record the trial's result
        assert str(where.study_dir / "study.db") in error and "readonly" in error, error
    else:
        (fired,) = [info for name, info in marked.items() if name.endswith("-fault")]
        assert "worker process 1: trial " in error, error
        assert f"{fired['path']}: {os.strerror(FAULTS[fault])}" in error, error
        assert Path(fired["path"]).name == "metadata.json"
    _nothing_half_written(project)
    assert integrity(where.study_dir / "study.db") == ["ok"]
    statuses = {r.info.run_name: r.info.status for r in project.runs()}
    assert "RUNNING" not in statuses.values(), statuses  # the sweep's run ended FAILED
    trials = project.study(where).get_trials()
    assert not [t.number for t in trials if FAILURE_ATTR in t.user_attrs]  # none counted
    if site != "study-db":  # the worker's trial was queued again with its params
        failed = [t for t in trials if t.state == State.FAIL and BUDGET_ATTR not in t.user_attrs]
        assert len(failed) == 1, [t.state for t in trials]
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number]
        assert len(retries) == 1 and retries[0].params == failed[0].params

    _rerun_finishes(project, *extra)


@pytest.mark.slow  # about 8 s: the CLI and its worker start, the killed trial goes stale
def test_sigkill_of_a_worker_process_then_a_rerun_keeps_the_budget_exact(
    project: WorkerProject,
) -> None:
    env = {
        **tracking_free_environ(),
        "FAULT_WORKERS_MARKERS": str(project.markers),
        "FAULT_WORKERS_HANG": "1",
    }
    argv = [str(MLINFRA), "hpo", "--no-progress", "--workers", "2", "--project", str(project.root)]
    proc = subprocess.Popen(
        [*argv, *project.args(*HEARTBEAT)],
        cwd=project.root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its worker too is killed if the test fails
    )
    try:
        hung = _wait_for_worker_trial(project, proc)
        os.kill(hung["pid"], signal.SIGKILL)  # the worker, in the middle of its trial
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    # the main process finished the budget, retrying the killed trial once it was stale
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err, err
    assert "worker process 1 died (killed by SIGKILL)" in out, out

    checked = _rerun_finishes(project, *HEARTBEAT)
    trials = checked["trials"]
    killed = next(t for t in trials if t.params == hung["params"] and t.state == State.FAIL)
    assert FAILURE_ATTR not in killed.user_attrs  # failed by its heartbeat, not counted
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.state == State.COMPLETE and retry.params == hung["params"]
    assert retry.user_attrs["mlflow_run_id"] == killed.user_attrs["mlflow_run_id"]


def _wait_for_worker_trial(
    project: WorkerProject, proc: subprocess.Popen[str], timeout: float = 60
) -> dict[str, Any]:
    """The marker of the worker's trial (written by a process other than ``proc``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            info
            for name, info in project.marked().items()
            if "-trial-" in name and info["worker"] and info["pid"] != proc.pid
        ]
        if found:
            return found[0]
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"mlinfra hpo exited ({proc.returncode}) first:\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"no trial of the worker after {timeout:.0f} s")
        time.sleep(0.01)


# ---- MLflow's own store full or read-only --------------------------------------------------------


def _arm(moment: str, db: SqliteFault, mp: pytest.MonkeyPatch) -> None:
    """Turn the fault on: after trial 1 (``run-start``: trial 2 cannot create its run) or
    inside trial 2's objective (``run-end``: its run cannot be ended)."""

    def on() -> None:
        db.on = True

    if moment == "run-start":
        after_trial(mp, 1, on)
    else:
        inside_trial(mp, 2, on)


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("moment", ["run-start", "run-end"])
def test_mlflow_store_full_or_read_only_stops_the_sweep_and_a_rerun_finishes(
    project: WorkerProject,
    capfd: pytest.CaptureFixture[str],
    mlflow_db_fault: Callable[[str], SqliteFault],
    moment: str,
    fault: str,
) -> None:
    db = mlflow_db_fault(fault)
    with pytest.MonkeyPatch.context() as mp:
        _arm(moment, db, mp)
        code, err = project.cli(capfd=capfd)
    assert db.on, "the fault was never armed"
    db.on = False  # the fault is gone (MLflow's pooled connections get their limits back)

    assert code == 1, err
    error = _error_line(err)
    reason = "full" if fault == "disk-full" else "readonly"
    assert f"trial 2: MLflow's tracking store {project.tracking_uri} failed: " in error, error
    assert reason in error, error
    _nothing_half_written(project)
    where = project.locate()
    assert integrity(where.study_dir / "study.db") == ["ok"]
    study = project.study(where)
    trials = study.get_trials()
    # not counted, nothing RUNNING in the study: failed, and queued again with its params
    assert [t.state for t in trials] == [State.COMPLETE, State.COMPLETE, State.FAIL, State.WAITING]
    assert not [t.number for t in trials if FAILURE_ATTR in t.user_attrs]
    assert trials[3].system_attrs["failed_trial"] == 2 and trials[3].params == trials[2].params
    # a run MLflow could not end stays RUNNING: the sweep's, and trial 2's once it had started
    parent = study.user_attrs["mlflow_parent_run_id"]
    ended = {parent, trials[2].user_attrs.get("mlflow_run_id")}
    running = {r.info.run_id for r in project.runs() if r.info.status == "RUNNING"}
    assert running <= ended, running
    if moment == "run-end":
        assert trials[2].user_attrs["mlflow_run_id"] in running

    checked = _rerun_finishes(project)  # no duplicate: the rerun found those runs again
    assert checked["parent"] == parent
    if moment == "run-end":
        retry = checked["trials"][3]
        assert retry.user_attrs["mlflow_run_id"] == trials[2].user_attrs["mlflow_run_id"]
