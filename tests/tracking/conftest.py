"""Registry fixtures: every backend the contract is checked against (SQLite file, PostgreSQL).

PostgreSQL is the real server on 127.0.0.1:5432 (trust auth, database ``test``); each test gets a
fresh schema that is dropped afterwards. When the server does not answer, the tests fail with a
message naming ``scripts/ensure-postgres.sh``, except on a developer machine that sets
``MLINFRA_SKIP_POSTGRES`` (CI never skips).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlinfra.tracking.registry import SqlRegistry

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
