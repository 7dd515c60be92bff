"""Shared fixtures.

* ``example_project`` / ``config_dir``: a private copy of the example project for every test that
  changes files.
* ``pg_schema`` / ``registry_url`` / ``registry``: every registry backend (SQLite file,
  PostgreSQL). PostgreSQL is the real server on 127.0.0.1:5432 (trust auth, database ``test``);
  each test gets a fresh schema that is dropped afterwards. When the server does not answer, the
  tests fail with a message naming ``scripts/ensure-postgres.sh``, except on a developer machine
  that sets ``MLINFRA_SKIP_POSTGRES`` (CI never skips).
* ``mlflow_server``: a real ``mlflow server`` on loopback (SQLite and PostgreSQL backends).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_helpers import Children
from hypothesis import HealthCheck, settings

from mlinfra.registry import SqlRegistry

# Property tests: `ci` (the default: 150 examples each, derandomised so a CI failure reproduces)
# and `fuzz` (`make fuzz`: 5,000 random examples each). Pick one with HYPOTHESIS_PROFILE.
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "resume_ner"


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A fresh copy of examples/resume_ner; returns its root (holding ``config/``)."""
    target = tmp_path / "resume_ner"
    shutil.copytree(
        EXAMPLE, target, ignore=shutil.ignore_patterns("outputs", "mlruns", "__pycache__")
    )
    return target


@pytest.fixture
def config_dir(example_project: Path) -> Path:
    """The config folder of a fresh copy of the example project."""
    return example_project / "config"


# ---- registry backends ----------------------------------------------------------------------

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgresql"]


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("MLINFRA_SKIP_POSTGRES") and not os.environ.get("CI"):
        pytest.skip(f"PostgreSQL unavailable and MLINFRA_SKIP_POSTGRES is set: {reason}")
    pytest.fail(
        f"PostgreSQL is not answering on 127.0.0.1:5432 ({reason}); start it with "
        "scripts/ensure-postgres.sh (trust auth, database 'test'), or set MLINFRA_SKIP_POSTGRES=1 "
        "to skip the PostgreSQL cases on a developer machine (CI never skips them)",
        pytrace=False,
    )


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty schema in the ``test`` database; dropped (CASCADE) at teardown."""
    import psycopg

    schema = f"mlinfra_t_{uuid.uuid4().hex}"
    try:
        with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        _postgres_unavailable(str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__)
    try:
        yield schema
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as conn:
            # a child killed inside a transaction may still be being reaped by the server
            conn.execute("SET lock_timeout = '30s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def pg_url(schema: str) -> str:
    return f"{PG_SERVER}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty registry location: an SQLite file path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    schema = request.getfixturevalue("pg_schema")
    return pg_url(schema)


@pytest.fixture
def registry(registry_url: str) -> Iterator[SqlRegistry]:
    """An open registry on ``registry_url``, closed at teardown."""
    reg = SqlRegistry(registry_url)
    try:
        yield reg
    finally:
        reg.close()


# ---- a real `mlflow server` (tests/tracking/test_server_tracking.py) ---------------------------

SERVER_BACKENDS = ["sqlite", "postgresql"]
SERVER_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server`` on loopback.

    Attributes:
        url: ``http://127.0.0.1:<port>``, the tracking URI to give clients.
        backend: ``sqlite`` or ``postgresql``.
        backend_store_uri: What the server stores runs in.
        log: The server's combined stdout and stderr.
    """

    url: str
    backend: str
    backend_store_uri: str
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mlflow_command() -> list[str]:
    script = Path(sys.executable).parent / "mlflow"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlflow"]


def _log_tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (the CLI, uvicorn), then SIGKILL what is left."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    with suppress(ProcessLookupError):  # uvicorn may outlive the CLI process that started it
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=15)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:  # refused, reset, timed out, HTTP errors
        return False


def _start_server(
    backend_store_uri: str, folder: Path, backend: str
) -> tuple[subprocess.Popen[bytes], MlflowServer]:
    """Start ``mlflow server`` in its own process group and wait for ``/health``."""
    env = dict(os.environ)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    # The server's job runner (seven huey consumers) is for GenAI jobs: not needed, and heavy
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    last = ""
    for _attempt in range(3):  # the free port may be taken between the probe and the bind
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = folder / f"server-{port}.log"
        # MLflow 3.17: --workers defaults to 4 (one is plenty here); the default security
        # middleware accepts loopback Host headers, so no --allowed-hosts is needed
        argv = [
            *_mlflow_command(),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            backend_store_uri,
            "--artifacts-destination",
            str(folder / "artifacts"),
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one at teardown
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if _healthy(url):
                return proc, MlflowServer(url, backend, backend_store_uri, log)
            time.sleep(0.25)
        _stop_group(proc)
        last = _log_tail(log)
        if "address already in use" not in last.lower():
            break
    pytest.fail(
        f"mlflow server ({backend}) did not answer {url}/health within "
        f"{SERVER_START_TIMEOUT:.0f} s; its log ends:\n{last}",
        pytrace=False,
    )


@contextmanager
def _server_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one server; dropped (with its connections) at exit."""
    import psycopg

    name = f"mlinfra_srv_{uuid.uuid4().hex}"
    try:
        with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _postgres_unavailable(str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=SERVER_BACKENDS)
def mlflow_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on 127.0.0.1 and a free port, one per backend per session:
    SQLite (a file in a temporary folder) or PostgreSQL (a fresh database, dropped afterwards).
    One uvicorn worker, no job runner; artifacts served from a temporary folder. The process
    group is stopped at teardown."""
    backend = str(request.param)
    folder = tmp_path_factory.mktemp(f"mlflow-server-{backend}")
    with ExitStack() as stack:
        if backend == "sqlite":
            store = f"sqlite:///{folder / 'mlflow.db'}"
        else:
            store = stack.enter_context(_server_database())
        proc, server = _start_server(store, folder, backend)
        stack.callback(_stop_group, proc)  # runs before the database is dropped
        yield server


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    """Child processes of one test (``fault_helpers.Children``), killed at its end."""
    group = Children(tmp_path)
    try:
        yield group
    finally:
        group.kill_all()
