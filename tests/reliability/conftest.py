"""Fixtures of the fault matrix: a clock that can step back, SQLite faults, and an empty MLflow
database for sweeps (``children``, processes to SIGKILL, is in the top-level conftest)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_helpers import Clock, SqliteFault, listen_sqlite

if sys.platform == "win32":  # pragma: no cover - SIGKILL and fork-free children are POSIX
    collect_ignore_glob = ["test_fault_*.py"]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """``mlinfra.core.timeutil.utc_now`` (and so every timestamp mlinfra writes) reads this."""
    from mlinfra.core import timeutil

    fake = Clock()
    monkeypatch.setattr(timeutil, "_dt", fake.module)
    return fake


@pytest.fixture(scope="module")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite database with MLflow's tables (created once: about 2 s)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def _sqlite_faults(name: str) -> Iterator[Callable[[str], SqliteFault]]:
    """A factory of SQLite faults on the database file ``name``, each listening until the end
    of the test (a store keeps its connections, so a rerun's get their limits lifted too)."""
    removers: list[Callable[[], None]] = []

    def make(kind: str) -> SqliteFault:
        fault = SqliteFault(kind, name)
        removers.append(listen_sqlite(fault))
        return fault

    yield make
    for remove in removers:
        remove()


@pytest.fixture
def study_db_fault() -> Iterator[Callable[[str], SqliteFault]]:
    """SQLite faults on the study database (see :class:`fault_helpers.SqliteFault`)."""
    yield from _sqlite_faults("study.db")


@pytest.fixture
def mlflow_db_fault() -> Iterator[Callable[[str], SqliteFault]]:
    """SQLite faults on MLflow's database (see :class:`fault_helpers.SqliteFault`)."""
    yield from _sqlite_faults("mlflow.db")
