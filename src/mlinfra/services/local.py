"""``services up|down|status``: the system's PostgreSQL plus an ``mlflow server`` on loopback.

Two databases on the server of ``admin_url``: ``<database>`` holds the Optuna studies and the
registry (``MLINFRA_DATABASE_URL``), ``<database>_mlflow`` the MLflow server's own tables (MLflow
and Optuna both keep an ``alembic_version`` table, so they cannot share one database).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlinfra.core.atomic import atomic_write_text
from mlinfra.core.redact import hide_password
from mlinfra.services.postgres import (
    ServicesError,
    database_url,
    ensure_database,
    ensure_postgres,
    probe_database,
)
from mlinfra.services.server import ServerState, healthy, read_state, start_server, stop_server

__all__ = [
    "DEFAULT_ADMIN_URL",
    "DEFAULT_DATABASE",
    "ServicesError",
    "ServicesStatus",
    "services_down",
    "services_status",
    "services_up",
    "state_dir",
]

#: The system's PostgreSQL as this project's machines run it (trust auth on loopback).
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DATABASE = "mlinfra"
ENV_FILE = "env.sh"


def state_dir(root: Path) -> Path:
    """Where the services keep their state: ``<root>/.mlinfra/services`` (git-ignored)."""
    return Path(os.path.abspath(root)) / ".mlinfra" / "services"


@dataclass(frozen=True)
class ServicesStatus:
    """What answers.

    Attributes:
        database_url: The shared database (studies and registry), password included.
        database_error: Why it does not answer (``None``: it does).
        server: The running server's state (``None``: not running).
        server_healthy: Whether its ``/health`` answers.
        actions: What :func:`services_up` did, one line each.
    """

    database_url: str
    database_error: str | None
    server: ServerState | None
    server_healthy: bool
    actions: tuple[str, ...] = ()

    @property
    def tracking_uri(self) -> str | None:
        """The server's URL, when it runs."""
        return self.server.url if self.server is not None else None

    def exports(self, *, hide: bool = True) -> list[str]:
        """``export NAME=value`` lines for a shell (passwords hidden unless ``hide`` is off)."""
        shown = hide_password(self.database_url) if hide else self.database_url
        lines = [f"export MLINFRA_DATABASE_URL={shown}"]
        if self.tracking_uri:
            lines.append(f"export MLFLOW_TRACKING_URI={self.tracking_uri}")
        return lines


def _names(database: str) -> tuple[str, str]:
    if not database.replace("_", "").isalnum() or not database[0].isalpha():
        raise ServicesError(
            f"database name {database!r}: use letters, digits and underscores, starting with a "
            "letter"
        )
    return database, f"{database}_mlflow"


def services_up(
    root: Path,
    *,
    admin_url: str = DEFAULT_ADMIN_URL,
    database: str = DEFAULT_DATABASE,
    port: int = 0,
    workers: int = 2,
) -> ServicesStatus:
    """Start what is missing (idempotent): PostgreSQL, the two databases, the server.

    Raises:
        ServicesError: PostgreSQL cannot be reached or started, a database cannot be created,
            the port is taken, or the server does not become healthy.
    """
    shared, tracking = _names(database)
    folder = state_dir(root)
    actions = [f"PostgreSQL: {ensure_postgres(admin_url)}"]
    for name in (shared, tracking):
        made = ensure_database(admin_url, name)
        actions.append(f"database {name}: {'created' if made else 'exists'}")
    state = read_state(folder)
    if state is not None and healthy(state.url):
        actions.append(f"mlflow server: already running at {state.url} (pid {state.pid})")
    else:
        if state is not None:  # running but not answering: replace it
            stop_server(folder)
            actions.append(f"mlflow server: stopped pid {state.pid}, which did not answer")
        backend = database_url(admin_url, tracking).replace(
            "postgresql://", "postgresql+psycopg://", 1
        )
        state = start_server(folder, backend, port=port, workers=workers)
        actions.append(f"mlflow server: started at {state.url} (pid {state.pid})")
    status = ServicesStatus(database_url(admin_url, shared), None, state, True, tuple(actions))
    # the real values, for `. .mlinfra/services/env.sh` (owner-only: it may hold a password)
    atomic_write_text(folder / ENV_FILE, "\n".join(status.exports(hide=False)) + "\n", mode=0o600)
    return status


def services_status(
    root: Path, *, admin_url: str = DEFAULT_ADMIN_URL, database: str = DEFAULT_DATABASE
) -> ServicesStatus:
    """What answers now; nothing is started."""
    shared, _ = _names(database)
    url = database_url(admin_url, shared)
    state = read_state(state_dir(root))
    return ServicesStatus(url, probe_database(url), state, state is not None and healthy(state.url))


def services_down(root: Path) -> ServerState | None:
    """Stop the server (its process group); the databases stay. ``None``: none was running."""
    folder = state_dir(root)
    state = stop_server(folder)
    (folder / ENV_FILE).unlink(missing_ok=True)
    return state
