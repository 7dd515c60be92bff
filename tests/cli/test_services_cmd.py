"""``mlinfra services up|status|down`` end to end: the system PostgreSQL, a unique database,
a real ``mlflow server`` in the background; idempotent; the databases are dropped at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlinfra.cli.services_cmd import services

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def database() -> Iterator[str]:
    import psycopg

    name = f"mlinfra_svc_{uuid.uuid4().hex[:10]}"
    try:
        psycopg.connect(ADMIN, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("MLINFRA_SKIP_POSTGRES") and not os.environ.get("CI"):
            pytest.skip(f"PostgreSQL unavailable: {exc}")
        raise
    try:
        yield name
    finally:
        with psycopg.connect(ADMIN, autocommit=True, connect_timeout=5) as conn:
            for db in (name, f"{name}_mlflow"):
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(services, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.slow
def test_up_status_down(tmp_path: Path, database: str) -> None:
    where = ["--project", str(tmp_path)]
    db = ["--admin-url", ADMIN, "--database", database]
    try:
        code, out, err = _run("up", *where, *db)
        assert code == 0, err
        lines = out.splitlines()
        assert (
            lines[0]
            == f"export MLINFRA_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/{database}"
        )
        assert lines[1].startswith("export MLFLOW_TRACKING_URI=http://127.0.0.1:")
        assert f"database {database}: created" in err and "started at" in err
        state = tmp_path / ".mlinfra" / "services"
        assert (state / "mlflow-server.json").is_file() and (state / "env.sh").is_file()

        code, again, err = _run("up", *where, *db)  # idempotent: the same server
        assert code == 0 and again == out, err
        assert "already running" in err and f"database {database}: exists" in err

        code, out, _ = _run("status", *where, *db)
        assert code == 0, out
        assert "answers" in out.splitlines()[0] and "answers" in out.splitlines()[1]
    finally:
        code, out, _ = _run("down", *where)
    assert code == 0 and "stopped" in out
    code, out, _ = _run("down", *where)
    assert code == 0 and "not running" in out
    code, out, _ = _run("status", *where, *db)
    assert code == 1 and "not running" in out


def test_a_taken_port_is_a_clear_error(tmp_path: Path, database: str) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = CliRunner().invoke(
            services,
            [
                "up",
                "--project",
                str(tmp_path),
                "--admin-url",
                ADMIN,
                "--database",
                database,
                "--port",
                str(port),
            ],
        )
    assert result.exit_code != 0
    assert f"port {port} on 127.0.0.1 is taken" in result.output


def test_a_bad_database_name_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        services, ["up", "--project", str(tmp_path), "--database", "x; drop"]
    )
    assert result.exit_code != 0
    assert "database name" in result.output
