"""Helpers of the fault-matrix tests (imported as a plain module): fault injectors at the OS
boundary and in SQLite, a clock that steps back, child processes killed with SIGKILL, sweeps of
a copy of the example project, and invariant checks."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import errno
import io
import json
import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

FAULTS = {
    "disk-full": errno.ENOSPC,
    "permission-denied": errno.EACCES,
}


def os_error(code: int, filename: str | None = None, filename2: str | None = None) -> OSError:
    """The error the kernel gives (``PermissionError`` for EACCES), as the OS call raises it."""
    if filename2 is not None:
        return OSError(code, os.strerror(code), filename, None, filename2)
    if filename is not None:
        return OSError(code, os.strerror(code), filename)
    return OSError(code, os.strerror(code))


class FailAt:
    """Wraps an OS function: the ``nth`` call for which ``when(*args)`` holds raises ``error``
    (built by ``make_error(*args)``); every other call goes through."""

    def __init__(
        self,
        real: Callable[..., Any],
        nth: int,
        make_error: Callable[..., OSError],
        when: Callable[..., bool] = lambda *a, **k: True,
    ) -> None:
        self.real, self.nth, self.make_error, self.when = real, nth, make_error, when
        self.calls = 0
        self.fired = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.when(*args, **kwargs):
            self.calls += 1
            if self.calls == self.nth:
                self.fired = True
                raise self.make_error(*args, **kwargs)
        return self.real(*args, **kwargs)


def regular_fd(fd: int, *_: Any, **__: Any) -> bool:
    """Whether ``fd`` is a regular file (``fsync`` of folders is best effort in mlinfra)."""
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def inject_fsync(monkeypatch: pytest.MonkeyPatch, code: int, nth: int = 1) -> FailAt:
    """``os.fsync`` of the ``nth`` regular file raises ``code`` (as the kernel does: no path)."""
    fail = FailAt(os.fsync, nth, lambda fd: os_error(code), regular_fd)
    monkeypatch.setattr(os, "fsync", fail)
    return fail


# ---- the clock --------------------------------------------------------------------------------


class Clock:
    """Replaces the ``datetime`` module that :func:`mlinfra.core.timeutil.utc_now` reads: the
    time it gives is the real time plus ``offset`` (set ``offset`` negative to step back)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)
        clock = self

        class _Shifted(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> Any:
                return dt.datetime.now(tz) + clock.offset

        self.module = types.SimpleNamespace(
            datetime=_Shifted, timezone=dt.timezone, timedelta=dt.timedelta
        )

    def step_back(self, hours: float = 1.0) -> None:
        self.offset -= dt.timedelta(hours=hours)


# ---- child processes --------------------------------------------------------------------------


class Children:
    """Child processes of one test; whatever still runs at the end is killed (by its pid)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, script: str, *args: object) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.folder,
        )
        self.procs.append(proc)
        return proc

    def finish(self, proc: subprocess.Popen[str], timeout: float) -> str:
        """Wait for a child to exit successfully; return its standard output."""
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
            pytest.fail(f"child {proc.pid} did not finish within {timeout} s:\n{err[-3000:]}")
        assert proc.returncode == 0, f"child {proc.pid} failed ({proc.returncode}):\n{err[-3000:]}"
        return out

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=10)


def wait_for(
    condition: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[str] | None = None,
    timeout: float = 60,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"the child exited ({proc.returncode}) before {what}:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def sigkill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the child and reap it."""
    import signal

    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


# ---- invariants -------------------------------------------------------------------------------


def integrity(path: Path) -> list[str]:
    """``PRAGMA integrity_check`` of an SQLite file, read-only."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def tree(root: Path, *, internal: bool = True) -> dict[str, bytes]:
    """Every file below ``root`` (relative POSIX path → content); without the store's own
    files (``.<name>.mlinfra*``) unless ``internal``."""
    if not root.exists():
        return {}
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file():
            continue
        if not internal and any(part.startswith(".") and ".mlinfra" in part for part in p.parts):
            continue
        out[rel] = p.read_bytes()
    return out


def all_json_parses(root: Path) -> None:
    """Every ``*.json`` file below ``root`` is whole JSON (temporaries are ``*.tmp``)."""
    for path in root.rglob("*.json"):
        json.loads(path.read_bytes())


def leftovers(folder: Path) -> list[str]:
    """Temporary files of atomic writes left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---- faults from a chosen call on (sweeps) --------------------------------------------------


def fd_path(fd: int) -> str:
    """The path of an open file descriptor ("" when the platform cannot tell)."""
    try:
        return str(Path(f"/proc/self/fd/{fd}").readlink())
    except OSError:
        import fcntl

        get_path = getattr(fcntl, "F_GETPATH", None)
        if get_path is None:
            return ""
        return os.fsdecode(fcntl.fcntl(fd, get_path, bytes(1024)).rstrip(b"\0"))


class Fault:
    """Wraps an OS function: from the ``start``-th call for which ``when(path)`` holds, every
    such call raises ``code`` (a full disk stays full) until the test clears the fault."""

    def __init__(
        self, real: Callable[..., Any], code: int, start: int, when: Callable[[str], bool]
    ) -> None:
        self.real, self.code, self.start, self.when = real, code, start, when
        self.calls = 0
        self.paths: list[str] = []

    def path_of(self, *args: Any) -> str:
        raise NotImplementedError

    def error(self, *args: Any) -> OSError:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        path = self.path_of(*args)
        if self.when(path):
            self.calls += 1
            if self.calls >= self.start:
                self.paths.append(path)
                raise self.error(*args)
        return self.real(*args, **kwargs)


class OpenFault(Fault):
    def path_of(self, *args: Any) -> str:
        return os.fsdecode(args[0])

    def error(self, *args: Any) -> OSError:
        return os_error(self.code, os.fsdecode(args[0]))


class FsyncFault(Fault):
    def path_of(self, *args: Any) -> str:
        return fd_path(args[0])

    def error(self, *args: Any) -> OSError:
        return os_error(self.code)  # the kernel's error names no file


class ReplaceFault(Fault):
    def path_of(self, *args: Any) -> str:
        return os.fsdecode(args[1])

    def error(self, *args: Any) -> OSError:
        return os_error(self.code, os.fsdecode(args[0]), os.fsdecode(args[1]))


def trial_metadata(path: str) -> bool:
    """A trial's ``metadata.json`` or its temporary file."""
    return "/trial-" in path and Path(path).name.startswith((".metadata.json.", "metadata.json"))


def sweep_metadata(path: str) -> bool:
    """The temporary file of the sweep folder's ``metadata.json``."""
    return "/study-" in path and "/trial-" not in path and ".metadata.json." in path


class SqliteFault:
    """SQLite faults on one database (the file whose name ends with ``name``), from SQLite
    itself: on every connection the chosen thread (the main one) checks out while
    :meth:`active`, ``PRAGMA max_page_count`` (no page more: SQLITE_FULL, ``kind``
    ``disk-full``) or ``PRAGMA query_only`` (SQLITE_READONLY, ``permission-denied``). A new
    database gets 512-byte pages, so every trial soon needs a new one. Install it with
    :func:`listen_sqlite`."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        self.on = False
        self.thread = threading.main_thread()

    def active(self) -> bool:
        return self.on

    def on_connect(self, dbapi: Any, _record: Any) -> None:
        if self._is_mine(dbapi):
            dbapi.execute("PRAGMA page_size = 512")  # a no-op once the file has tables

    def on_checkout(self, dbapi: Any, _record: Any, _proxy: Any) -> None:
        if not self._is_mine(dbapi):
            return
        limited = threading.current_thread() is self.thread and self.active()
        if self.kind == "disk-full":
            dbapi.execute(f"PRAGMA max_page_count = {1 if limited else 2**30}")
        else:
            dbapi.execute(f"PRAGMA query_only = {int(limited)}")

    def _is_mine(self, dbapi: Any) -> bool:
        rows = dbapi.execute("PRAGMA database_list").fetchall()
        return any(str(row[2]).endswith(self.name) for row in rows)


def listen_sqlite(fault: SqliteFault) -> Callable[[], None]:
    """Apply ``fault`` to every SQLAlchemy pool (existing and new); returns what removes it."""
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    event.listen(Pool, "connect", fault.on_connect)
    event.listen(Pool, "checkout", fault.on_checkout)

    def remove() -> None:
        event.remove(Pool, "connect", fault.on_connect)
        event.remove(Pool, "checkout", fault.on_checkout)

    return remove


def small_pages(db: Path) -> None:
    """Rewrite an SQLite file with 512-byte pages (so that SQLITE_FULL comes soon)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA page_size = 512")
        conn.execute("VACUUM")
    finally:
        conn.close()


# ---- sweeps of the example project --------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "resume_ner"
EXPERIMENT, STAGE = "resume_ner_baseline", "smoke"
TRACKING_ENV = ("MLFLOW_", "MLINFRA_")
#: Heartbeats fast enough for a trial a dead process left RUNNING to be failed soon.
HEARTBEAT = ("+hpo.storage.heartbeat_seconds=1", "+hpo.storage.grace_seconds=2")


def tracking_free_environ() -> dict[str, str]:
    """``os.environ`` without ``MLFLOW_*`` and ``MLINFRA_*``."""
    return {k: v for k, v in os.environ.items() if not k.startswith(TRACKING_ENV)}


def copy_example(root: Path, module: str, source: str, mlflow_db: Path) -> None:
    """A copy of the example project at ``root`` with the objective module ``module`` and an
    empty MLflow database (a copy of ``mlflow_db``) at ``mlruns/mlflow.db``."""
    shutil.copytree(
        EXAMPLE,
        root,
        ignore=shutil.ignore_patterns("outputs", "mlruns", "__pycache__", ".mypy_cache", "dataset"),
    )
    (root / f"{module}.py").write_text(source, encoding="utf-8")
    (root / "mlruns").mkdir()
    shutil.copyfile(mlflow_db, root / "mlruns" / "mlflow.db")


@dataclass
class Sweeps:
    """A copy of the example project (stage ``smoke``) whose objective is ``<module>:fast``:
    run its sweep (in this process, or the CLI) and read its stores."""

    root: Path
    module: ClassVar[str]
    max_trials: ClassVar[int] = 4

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlruns' / 'mlflow.db'}"

    def overrides(self, *extra: str, max_trials: int | None = None) -> list[str]:
        return [
            f"++hpo.objective.entrypoint={self.module}:fast",
            f"hpo.sampling.max_trials={max_trials or self.max_trials}",
            *extra,
        ]

    def args(self, *extra: str, max_trials: int | None = None) -> list[str]:
        return ["-e", EXPERIMENT, "-s", STAGE, *self.overrides(*extra, max_trials=max_trials)]

    def project(self) -> Any:
        from mlinfra.config import Project

        return Project.discover(project=self.root, environ=tracking_free_environ())

    def sweep(self, *extra: str, max_trials: int | None = None, **kwargs: Any) -> Any:
        """``run_sweep`` in this process."""
        from mlinfra.hpo.runner import run_sweep

        return run_sweep(
            self.project(),
            EXPERIMENT,
            stage=STAGE,
            overrides=self.overrides(*extra, max_trials=max_trials),
            platform="local",
            **kwargs,
        )

    def cli(
        self, *extra: str, capfd: pytest.CaptureFixture[str], options: Sequence[str] = ()
    ) -> tuple[int, str]:
        """``mlinfra hpo [OPTIONS]`` in this process: its exit status and standard error (of
        its worker processes too), with what Optuna logged (its handler holds the
        ``sys.stderr`` of its first import, which ``capfd`` does not see)."""
        from mlinfra.cli.main import main

        logged = io.StringIO()
        handler = logging.StreamHandler(logged)
        optuna_logger = logging.getLogger("optuna")
        optuna_logger.addHandler(handler)
        capfd.readouterr()
        argv = ["hpo", "--no-progress", *options, "--project", str(self.root), *self.args(*extra)]
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:
            code = 0
        finally:
            optuna_logger.removeHandler(handler)
        return code, capfd.readouterr().err + logged.getvalue()

    def locate(self, *extra: str) -> Any:
        from mlinfra.hpo.runner import locate_study

        return locate_study(
            self.project(), EXPERIMENT, stage=STAGE, overrides=self.overrides(*extra)
        )

    def study(self, where: Any) -> Any:
        import optuna

        return optuna.load_study(study_name=where.study_name, storage=where.storage_url)

    def runs(self) -> list[Any]:
        """Every MLflow run of the project's tracking store."""
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri)
        ids = [e.experiment_id for e in client.search_experiments()]
        return list(client.search_runs(ids, max_results=1000)) if ids else []


def check_sweep(project: Sweeps, *extra: str) -> dict[str, Any]:
    """The invariants of a sweep whose budget should be spent (the objective never fails):
    finished == ``max_trials`` with nothing running or waiting, study integrity ok, one parent
    run, one run per identity and per finished trial (finished, a child of the parent), unique
    run names, no run left RUNNING, a trial run of no finished trial FAILED, every
    ``metadata.json`` parses, no temporary file. Returns what was checked."""
    import optuna

    from mlinfra.hpo.study import budget

    state = optuna.trial.TrialState
    max_trials = project.max_trials
    where = project.locate(*extra)
    assert integrity(where.study_dir / "study.db") == ["ok"]
    study = project.study(where)
    trials = study.get_trials()
    left = budget(study, max_trials)
    assert (left.finished, left.running) == (max_trials, 0), [t.state for t in trials]
    assert not [t.number for t in trials if t.state in (state.RUNNING, state.WAITING)]
    complete = [t for t in trials if t.state == state.COMPLETE]
    assert len(complete) == max_trials  # the objective never fails here

    runs = project.runs()
    by_id = {r.info.run_id: r for r in runs}
    parent_id = study.user_attrs["mlflow_parent_run_id"]
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in parents] == [parent_id]
    # one run per identity, unique names, nothing left running
    keys = collections.Counter(r.data.tags["code.run_key_hash"] for r in runs)
    assert [k for k, n in keys.items() if n > 1] == []
    assert len({r.info.run_name for r in runs}) == len(runs)
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    # each finished trial has its own run, finished, a child of the parent
    trial_runs = [by_id[t.user_attrs["mlflow_run_id"]] for t in complete]
    assert len({r.info.run_id for r in trial_runs}) == max_trials
    assert all(r.info.status == "FINISHED" for r in trial_runs)
    assert all(r.data.tags["mlflow.parentRunId"] == parent_id for r in trial_runs)
    # a trial run of no finished trial is one the sweep stopped, marked FAILED
    finished_ids = {r.info.run_id for r in trial_runs}
    others = [
        r
        for r in runs
        if r.data.tags.get("code.run_type") == "trial" and r.info.run_id not in finished_ids
    ]
    assert all(r.info.status == "FAILED" for r in others), [r.info.status for r in others]

    outputs = project.root / "outputs"
    all_json_parses(outputs)
    assert sorted(p.name for p in outputs.rglob("*.tmp")) == []
    metadata = list(outputs.rglob("metadata.json"))
    assert len(metadata) >= max_trials + 1  # the sweep's folder and each trial's
    for path in metadata:
        meta = json.loads(path.read_text(encoding="utf-8"))
        assert meta["created_at"] <= meta["last_updated"]
    return {"where": where, "study": study, "trials": trials, "runs": runs, "parent": parent_id}


# ---- moments inside a sweep ------------------------------------------------------------------


def after_trial(mp: pytest.MonkeyPatch, number: int, action: Callable[[], None]) -> None:
    """Call ``action`` once trial ``number`` has finished (an Optuna callback placed before the
    sweep's backup callbacks, through ``runner.backup_callbacks``, where the sweep looks it up)."""
    from mlinfra.hpo import runner

    real = runner.backup_callbacks

    def callbacks(sweep: Any) -> list[Any]:
        def arm(_study: Any, trial: Any) -> None:
            if trial.number == number:
                action()

        return [arm, *real(sweep)]

    mp.setattr(runner, "backup_callbacks", callbacks)


def inside_trial(mp: pytest.MonkeyPatch, number: int, action: Callable[[], None]) -> None:
    """Call ``action`` just before trial ``number``'s objective runs (through
    ``mlinfra.hpo.trial._call``, where every call of the objective is looked up)."""
    from mlinfra.hpo import trial as hpo_trial

    real = hpo_trial._call

    def call(sweep: Any, ctx: Any) -> Any:
        if ctx.trial_number == number:
            action()
        return real(sweep, ctx)

    mp.setattr(hpo_trial, "_call", call)
