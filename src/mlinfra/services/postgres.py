"""The system's PostgreSQL: make sure it answers, create a database, probe a URL.

Only psycopg 3 (the ``postgres`` extra) is used; URLs are shown with their password hidden.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mlinfra.core.imports import require
from mlinfra.core.redact import hide_password
from mlinfra.errors import MlinfraError

__all__ = ["ServicesError", "database_url", "ensure_database", "ensure_postgres", "probe_database"]

_CLUSTERS = Path("/etc/postgresql")


class ServicesError(MlinfraError, RuntimeError):
    """A local service cannot be started, reached or stopped (the message says why and what
    to do)."""


def _conninfo(url: str) -> str:
    """A libpq URL (psycopg does not know SQLAlchemy's ``+driver`` part)."""
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


def database_url(server_url: str, name: str) -> str:
    """``server_url`` pointing at database ``name`` (same host, port, user, options)."""
    parts = urlsplit(_conninfo(server_url))
    return urlunsplit(parts._replace(path=f"/{name}"))


def probe_database(url: str, timeout: float = 3.0) -> str | None:
    """Why the database at ``url`` does not answer, or ``None`` when it does."""
    psycopg = require("psycopg", extra="postgres", feature="PostgreSQL")
    try:
        with psycopg.connect(_conninfo(url), connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    return None


def ensure_postgres(server_url: str, *, wait: float = 30.0) -> str:
    """Make sure the server of ``server_url`` answers; start the system cluster if it is stopped.

    Returns what was done (``"running"`` or ``"started <version>/main"``).

    Raises:
        MlinfraError: it does not answer and cannot be started here.
    """
    if probe_database(server_url) is None:
        return "running"
    parts = urlsplit(_conninfo(server_url))
    local = parts.hostname in ("127.0.0.1", "localhost", "::1", None)
    ctl = shutil.which("pg_ctlcluster")
    if not local or ctl is None or not _CLUSTERS.is_dir():
        raise ServicesError(
            f"PostgreSQL does not answer at {hide_password(server_url)} "
            f"({probe_database(server_url)}); start it (scripts/ensure-postgres.sh on this "
            "project's machines, or your system's service manager), or pass another --admin-url"
        )
    version = sorted(p.name for p in _CLUSTERS.iterdir())[-1]
    subprocess.run(
        [ctl, "--skip-systemctl-redirect", version, "main", "start"],
        check=False,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if probe_database(server_url) is None:
            return f"started {version}/main"
        time.sleep(0.5)
    raise ServicesError(
        f"started PostgreSQL {version}/main, but {hide_password(server_url)} still does not "
        f"answer after {wait:.0f} s ({probe_database(server_url)})"
    )


def ensure_database(server_url: str, name: str) -> bool:
    """Create database ``name`` on the server of ``server_url`` unless it exists.

    Returns whether it was created.

    Raises:
        MlinfraError: the server refused (no right to create databases, a bad name).
    """
    psycopg = require("psycopg", extra="postgres", feature="PostgreSQL")
    sql = require("psycopg.sql", extra="postgres", feature="PostgreSQL")
    try:
        with psycopg.connect(_conninfo(server_url), autocommit=True, connect_timeout=5) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found is not None:
                return False
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:  # created by another `up` just now
                return False
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServicesError(
            f"cannot create database {name!r} at {hide_password(server_url)}: {first}"
        ) from exc
    return True
