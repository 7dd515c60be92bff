"""Local shared services for trying multi-worker sweeps on one machine.

``mlinfra services up`` makes sure the system's PostgreSQL answers, creates a database for the
Optuna studies and the registry (and one for the MLflow server's own tables), and starts an
``mlflow server`` on loopback in the background; ``down`` stops the server and keeps the
databases; ``status`` says what answers. State (pid, port, log) lives in
``<project>/.mlinfra/services/``.
"""

from __future__ import annotations

from mlinfra.services.local import (
    DEFAULT_ADMIN_URL,
    DEFAULT_DATABASE,
    ServicesError,
    ServicesStatus,
    services_down,
    services_status,
    services_up,
    state_dir,
)
from mlinfra.services.postgres import database_url, ensure_database, ensure_postgres, probe_database

__all__ = [
    "DEFAULT_ADMIN_URL",
    "DEFAULT_DATABASE",
    "ServicesError",
    "ServicesStatus",
    "database_url",
    "ensure_database",
    "ensure_postgres",
    "probe_database",
    "services_down",
    "services_status",
    "services_up",
    "state_dir",
]
