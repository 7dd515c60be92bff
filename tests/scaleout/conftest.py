"""Fixtures of the scale-out tests: real PostgreSQL, a real ``mlflow server``, real processes.

* ``scaleout_server``: one ``mlflow server`` per session on 127.0.0.1 (started by
  :func:`mlinfra.services.server.start_server`, the code ``mlinfra services up`` uses), backed by
  a fresh PostgreSQL database; stopped (process group) and dropped at the end.
* ``shared_db``: a fresh PostgreSQL database per test for the Optuna study and the registry
  (``MLINFRA_DATABASE_URL``), dropped with its connections at teardown.
* ``scaleout_project``: a copy of the example project with test objectives, and helpers to start
  ``mlinfra hpo`` processes against both. Each test adds a unique
  ``++hpo.early_termination.scaleout_test`` key (part of the study key), so its study, parent run
  and run names are its own on the shared server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from scaleout_support import dispose_opened

from mlinfra.config import Project
from mlinfra.hpo.runner import StudyLocation, locate_study

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "resume_ner"
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
EXPERIMENT = "resume_ner_baseline"
STAGE = "smoke"
MLINFRA = Path(sys.executable).parent / "mlinfra"

OBJECTIVES = '''\
"""Objectives of the scale-out tests (written by tests/scaleout/conftest.py)."""

import json
import os
import time
from pathlib import Path


def _done(ctx):
    value = ctx.params["learning_rate"] * 1e4
    (ctx.output_dir / "result.json").write_text(
        json.dumps({"trial": ctx.trial_number, "run_id": ctx.run_id, "pid": os.getpid()}),
        encoding="utf-8",
    )
    return value


def short(ctx):
    """50 ms of work."""
    time.sleep(0.05)
    return _done(ctx)


def hang_once(ctx):
    """The first trial to get here writes markers/hung (its pid) and hangs (to be killed)."""
    markers = Path(ctx.project_root) / "markers"
    markers.mkdir(exist_ok=True)
    try:
        fd = os.open(markers / "hung", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        time.sleep(0.2)
        return _done(ctx)
    os.write(fd, json.dumps({"pid": os.getpid(), "trial": ctx.trial_number}).encode())
    os.close(fd)
    time.sleep(100)
    return _done(ctx)


def paced(ctx):
    """0.3 s per trial, and markers/trial-<n> when it starts (a test pauses the server)."""
    markers = Path(ctx.project_root) / "markers"
    markers.mkdir(exist_ok=True)
    (markers / f"trial-{ctx.trial_number}").write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(0.3)
    return _done(ctx)
'''


def _postgres_or_fail() -> Any:
    import psycopg

    try:
        psycopg.connect(ADMIN, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("MLINFRA_SKIP_POSTGRES") and not os.environ.get("CI"):
            pytest.skip(f"PostgreSQL unavailable and MLINFRA_SKIP_POSTGRES is set: {exc}")
        pytest.fail(
            f"PostgreSQL is not answering on 127.0.0.1:5432 ({exc}); start it with "
            "scripts/ensure-postgres.sh",
            pytrace=False,
        )
    return psycopg


def create_database(prefix: str) -> str:
    psycopg = _postgres_or_fail()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def db_url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


@dataclass(frozen=True)
class ScaleoutServer:
    url: str
    pid: int
    folder: Path


@pytest.fixture(scope="session")
def scaleout_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleoutServer]:
    """A real ``mlflow server`` on loopback, backed by a fresh PostgreSQL database."""
    from mlinfra.services.server import start_server, stop_server

    name = create_database("mlinfra_so_srv")
    folder = tmp_path_factory.mktemp("scaleout-server")
    try:
        backend = db_url(name).replace("postgresql://", "postgresql+psycopg://")
        state = start_server(folder, backend, workers=2)
        try:
            yield ScaleoutServer(state.url, state.pid, folder)
        finally:
            os.killpg(state.pid, signal.SIGCONT)  # in case a test left it stopped
            stop_server(folder)
    finally:
        drop_database(name)


@pytest.fixture
def shared_db() -> Iterator[str]:
    """A fresh database (URL as a user writes it: ``postgresql://``), dropped afterwards."""
    name = create_database("mlinfra_so")
    try:
        yield db_url(name)
    finally:
        drop_database(name)


@dataclass
class ScaleoutProject:
    root: Path
    database_url: str
    tracking_uri: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLINFRA_"))}
        env.update(MLINFRA_DATABASE_URL=self.database_url, MLFLOW_TRACKING_URI=self.tracking_uri)
        env.update(extra)
        return env

    def overrides(self, objective: str, max_trials: int, *extra: str) -> list[str]:
        return [
            f"++hpo.objective.entrypoint=sweep_objectives:{objective}",
            f"hpo.sampling.max_trials={max_trials}",
            f"++hpo.early_termination.scaleout_test={self.tag}",
            *extra,
        ]

    def start(
        self, objective: str, max_trials: int, *extra: str, workers: int = 1
    ) -> subprocess.Popen[str]:
        """``mlinfra hpo`` in the background (its own process group), output to a log."""
        log = (self.root / f"hpo-{len(self.procs)}.log").open("w", encoding="utf-8")
        argv = [str(MLINFRA), "hpo", "--no-progress", "-e", EXPERIMENT, "-s", STAGE]
        argv += ["--workers", str(workers), *self.overrides(objective, max_trials, *extra)]
        proc = subprocess.Popen(
            argv,
            cwd=self.root,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def wait(self, proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str]:
        index = self.procs.index(proc)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = -9
        return code, (self.root / f"hpo-{index}.log").read_text(encoding="utf-8")

    def locate(self, objective: str, max_trials: int, *extra: str) -> StudyLocation:
        project = Project.discover(project=self.root, environ=self.env())
        return locate_study(
            project,
            EXPERIMENT,
            stage=STAGE,
            overrides=self.overrides(objective, max_trials, *extra),
            platform="local",
        )

    def sweep_runs(self, where: StudyLocation) -> tuple[list[Any], list[Any]]:
        """``(parents, children)``: the runs of this test's study on the server."""
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri)
        ids = [e.experiment_id for e in client.search_experiments()]
        runs = list(client.search_runs(ids, max_results=5000)) if ids else []
        mine = [r for r in runs if f"study-{where.study_key_hash[:8]}" in r.info.run_name]
        parents = [r for r in mine if "mlflow.parentRunId" not in r.data.tags]
        parent_ids = {r.info.run_id for r in parents}
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in parent_ids]
        return parents, children

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def scaleout_project(
    tmp_path: Path, shared_db: str, scaleout_server: ScaleoutServer
) -> Iterator[ScaleoutProject]:
    root = tmp_path / "proj"
    shutil.copytree(
        EXAMPLE,
        root,
        ignore=shutil.ignore_patterns("outputs", "mlruns", "__pycache__", ".mypy_cache", "dataset"),
    )
    (root / "sweep_objectives.py").write_text(OBJECTIVES, encoding="utf-8")
    project = ScaleoutProject(root, shared_db, scaleout_server.url)
    try:
        yield project
    finally:
        project.stop_all()  # before the database is dropped
        dispose_opened()
