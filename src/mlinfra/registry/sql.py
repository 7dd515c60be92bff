"""The registry on a SQL database through SQLAlchemy: SQLite on local disk, or PostgreSQL.

SQLite: WAL journal, a busy timeout, and write transactions that take the write lock before they
read (``BEGIN IMMEDIATE``), so read-modify-write sequences cannot interleave. PostgreSQL: the
counter row is locked with ``SELECT ... FOR UPDATE`` inside the transaction. Either way a crashed
process holds no lock: the database drops it with the connection.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, update
from sqlalchemy.exc import DBAPIError

from mlinfra.core.imports import require
from mlinfra.core.redact import hide_password
from mlinfra.core.timeutil import format_utc, parse_utc, utc_now
from mlinfra.errors import RegistryCorruptError, RegistryError, RegistryTimeoutError
from mlinfra.registry.base import (
    DEFAULT_LEASE,
    OUTPUT_FILTERS,
    Allocation,
    OutputEntry,
    RunIndexEntry,
    RunRegistry,
)
from mlinfra.registry.schema import (
    SCHEMA_VERSION,
    counters,
    meta,
    metadata,
    outputs,
    runs,
    versions,
)

__all__ = ["SqlRegistry"]

_SQLITE_HEADER = b"SQLite format 3\x00"
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child must not use its parent's connections: give it fresh pools."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)
_PG_INIT_LOCK = 0x6D6C696E  # advisory lock id for schema creation ("mlin")


def _iso(moment: _dt.datetime) -> str:
    return format_utc(moment)


def _repair_command(path: str) -> str:
    return f"mlinfra index repair --path {path}"


class SqlRegistry(RunRegistry):
    """A :class:`RunRegistry` in SQLite (a local file) or PostgreSQL (a URL).

    Args:
        url: A SQLAlchemy URL: ``sqlite:///abs/path.db`` or ``postgresql://user@host/db``
            (``postgresql://`` uses the psycopg 3 driver, from the ``postgres`` extra).
        busy_timeout: Seconds a writer waits for another writer before giving up.
    """

    def __init__(self, url: str, *, busy_timeout: float = 60.0) -> None:
        self.url = _normalise_url(url)
        self.dialect = self.url.split(":", 1)[0].split("+", 1)[0]
        self.busy_timeout = busy_timeout
        self.path: Path | None = None
        if self.dialect == "sqlite":
            self.path = Path(self.url.removeprefix("sqlite:///"))
            self.location = str(self.path)
            _check_sqlite_file(self.path)
            self.engine = self._sqlite_engine()
        elif self.dialect == "postgresql":
            self.location = hide_password(self.url)
            require("psycopg", extra="postgres", feature="a PostgreSQL registry")
            self.engine = self._postgres_engine()
        else:
            raise RegistryError(
                f"unsupported registry database {self.dialect!r}: use sqlite:///<file> or "
                "postgresql://..."
            )
        self._writer = self.engine.execution_options(mlinfra_write=True)
        try:
            self._init_schema()
        except BaseException:
            self.engine.dispose()
            raise

    # ---- engine and transactions -------------------------------------------------------

    def _sqlite_engine(self) -> Engine:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A small pool keeps connections (and so the WAL) open between transactions, which
        # makes a lookup about 3x faster than a connection per transaction.
        engine = create_engine(
            f"sqlite:///{self.path}",
            connect_args={"timeout": self.busy_timeout},
            pool_size=2,
            max_overflow=4,
        )
        _ENGINES.add(engine)
        timeout_ms = int(self.busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("mlinfra_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _postgres_engine(self) -> Engine:
        engine = create_engine(self.url, pool_pre_ping=True)
        _ENGINES.add(engine)
        timeout_ms = int(self.busy_timeout * 1000)

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # the busy timeout bounds how long a writer waits for a locked counter row
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {timeout_ms}")

        return engine

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        engine = self._writer if write else self.engine
        try:
            with engine.begin() as conn:
                yield conn
        except DBAPIError as exc:  # OperationalError included
            raise self._translate(exc) from exc

    def _translate(self, exc: DBAPIError) -> RegistryError:
        text = str(exc.orig or exc).lower()
        if "locked" in text or "busy" in text or "lock timeout" in text:
            return RegistryTimeoutError(
                f"registry {self.location} stayed locked for over {self.busy_timeout:.0f} s "
                "by other writers; retry, or raise the busy timeout"
            )
        if self.path is not None and ("malformed" in text or "not a database" in text):
            return RegistryCorruptError(
                f"the registry database is damaged ({exc.orig})",
                path=str(self.path),
                repair=_repair_command(str(self.path)),
            )
        return RegistryError(f"registry {self.location}: {exc.orig or exc}")

    def _schema_ready(self) -> bool:
        """True when every table exists with this schema version (a read: no write lock)."""
        ours = {t.name for t in metadata.sorted_tables}
        with self._tx(write=False) as conn:
            if not ours <= set(inspect(conn).get_table_names()):
                return False
            row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
        if row is not None and row[0] != SCHEMA_VERSION:
            raise RegistryError(
                f"registry {self.location} has schema version {row[0]}, this mlinfra reads "
                f"{SCHEMA_VERSION}; upgrade mlinfra, or export and import the registry"
            )
        return row is not None

    def _init_schema(self) -> None:
        if self._schema_ready():
            return
        with self._tx(write=True) as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_INIT_LOCK})")
            tables = set(inspect(conn).get_table_names())
            ours = {t.name for t in metadata.sorted_tables}
            if not ours <= tables:
                metadata.create_all(conn, checkfirst=True)
            row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
            if row is None:
                conn.execute(meta.insert().values(key="schema_version", value=SCHEMA_VERSION))
            elif row[0] != SCHEMA_VERSION:
                raise RegistryError(
                    f"registry {self.location} has schema version {row[0]}, this mlinfra reads "
                    f"{SCHEMA_VERSION}; upgrade mlinfra, or export and import the registry"
                )

    def close(self) -> None:
        self.engine.dispose()

    # ---- run index ----------------------------------------------------------------------

    def upsert_run(self, entry: RunIndexEntry) -> RunIndexEntry:
        for name, limit in (
            ("run_key_hash", 64),
            ("run_id", 64),
            ("experiment_id", 64),
            ("tracking_uri", 1024),
        ):
            _check_text(getattr(entry, name), name, limit)
        for name, limit in (("run_name", 255), ("stage", 64)):
            value = getattr(entry, name)
            if value is not None:
                _check_text(value, name, limit)
        now = _iso(utc_now())
        key = (runs.c.tracking_uri == entry.tracking_uri) & (
            runs.c.run_key_hash == entry.run_key_hash
        )
        values = {
            "run_id": entry.run_id,
            "experiment_id": entry.experiment_id,
            "run_name": entry.run_name,
            "stage": entry.stage,
            "updated_at": _iso(entry.updated_at) if entry.updated_at else now,
        }
        created = _iso(entry.created_at) if entry.created_at else values["updated_at"]
        with self._tx(write=True) as conn:
            # insert-if-absent then update: race-free on both backends, keeps created_at
            conn.execute(
                _insert_ignore(self.dialect, runs).values(
                    tracking_uri=entry.tracking_uri,
                    run_key_hash=entry.run_key_hash,
                    created_at=created,
                    **values,
                )
            )
            conn.execute(update(runs).where(key).values(**values))
            row = conn.execute(select(runs).where(key)).one()
        return _entry(row._mapping)

    def find_run(self, run_key_hash: str, tracking_uri: str) -> RunIndexEntry | None:
        with self._tx(write=False) as conn:
            row = conn.execute(
                select(runs).where(
                    (runs.c.tracking_uri == tracking_uri) & (runs.c.run_key_hash == run_key_hash)
                )
            ).first()
        return None if row is None else _entry(row._mapping)

    def list_runs(
        self, *, stage: str | None = None, tracking_uri: str | None = None
    ) -> list[RunIndexEntry]:
        query = select(runs).order_by(runs.c.updated_at.desc())
        if stage is not None:
            query = query.where(runs.c.stage == stage)
        if tracking_uri is not None:
            query = query.where(runs.c.tracking_uri == tracking_uri)
        with self._tx(write=False) as conn:
            return [_entry(r._mapping) for r in conn.execute(query)]

    def remove_run(self, run_key_hash: str, tracking_uri: str) -> bool:
        with self._tx(write=True) as conn:
            result = conn.execute(
                runs.delete().where(
                    (runs.c.tracking_uri == tracking_uri) & (runs.c.run_key_hash == run_key_hash)
                )
            )
        return bool(result.rowcount)

    # ---- metadata index ---------------------------------------------------------------------

    def upsert_output(self, entry: OutputEntry) -> OutputEntry:
        _check_text(entry.path, "path", 1024)
        for name, limit in _OUTPUT_TEXT_LIMITS:
            value = getattr(entry, name)
            if value is not None:
                _check_text(value, name, limit)
        if entry.variant is not None and (
            isinstance(entry.variant, bool) or not isinstance(entry.variant, int)
        ):
            raise RegistryError(f"variant must be an integer or None, got {entry.variant!r}")
        updated = _iso(entry.updated_at) if entry.updated_at else _iso(utc_now())
        values: dict[str, Any] = {
            name: getattr(entry, name) for name, _limit in _OUTPUT_TEXT_LIMITS
        }
        values["variant"] = entry.variant
        values["status"] = json.dumps(entry.status or {}, sort_keys=True, ensure_ascii=False)
        values["updated_at"] = updated
        key = outputs.c.path == entry.path
        with self._tx(write=True) as conn:
            conn.execute(
                _insert_ignore(self.dialect, outputs).values(
                    path=entry.path,
                    created_at=_iso(entry.created_at) if entry.created_at else updated,
                    **values,
                )
            )
            # an older view of the folder (a rebuild racing a writer) never replaces a newer one
            if entry.created_at is not None:
                values["created_at"] = _iso(entry.created_at)
            conn.execute(
                update(outputs).where(key & (outputs.c.updated_at <= updated)).values(**values)
            )
            row = conn.execute(select(outputs).where(key)).one()
        return _output(row._mapping)

    def find_outputs(self, *, limit: int | None = None, **filters: Any) -> list[OutputEntry]:
        unknown = sorted(set(filters) - set(OUTPUT_FILTERS))
        if unknown:
            raise RegistryError(
                f"unknown output filter(s) {', '.join(unknown)}; use: {', '.join(OUTPUT_FILTERS)}"
            )
        query = select(outputs).order_by(outputs.c.updated_at.desc(), outputs.c.path)
        for name, value in filters.items():
            if value is not None:
                query = query.where(outputs.c[name] == value)
        if limit is not None:
            query = query.limit(limit)
        with self._tx(write=False) as conn:
            return [_output(r._mapping) for r in conn.execute(query)]

    def remove_output(self, path: str) -> bool:
        with self._tx(write=True) as conn:
            result = conn.execute(outputs.delete().where(outputs.c.path == path))
        return bool(result.rowcount)

    # ---- versions -------------------------------------------------------------------------

    def _lock_counter(self, conn: Connection, counter_key: str) -> int:
        """Lock the counter row (creating it) and return its next version."""
        insert = _insert_ignore(self.dialect, counters).values(
            counter_key=counter_key, next_version=1
        )
        conn.execute(insert)
        query = select(counters.c.next_version).where(counters.c.counter_key == counter_key)
        if self.dialect == "postgresql":
            query = query.with_for_update()
        return int(conn.execute(query).scalar_one())

    def reserve_version(
        self, counter_key: str, owner: str, *, lease: _dt.timedelta = DEFAULT_LEASE
    ) -> int:
        _check_text(counter_key, "counter_key", 512)
        _check_text(owner, "owner", 255)
        if lease.total_seconds() <= 0:
            raise RegistryError(f"a lease must be positive, got {lease}")
        now = utc_now()
        with self._tx(write=True) as conn:
            next_version = self._lock_counter(conn, counter_key)
            conn.execute(
                update(versions)
                .where(
                    (versions.c.counter_key == counter_key)
                    & (versions.c.status == "reserved")
                    & (versions.c.expires_at <= _iso(now))
                )
                .values(status="expired")
            )
            mine = conn.execute(
                select(versions.c.version)
                .where(
                    (versions.c.counter_key == counter_key)
                    & (versions.c.owner == owner)
                    & (versions.c.status == "reserved")
                )
                .order_by(versions.c.version)
            ).first()
            if mine is not None:
                return int(mine[0])
            conn.execute(
                update(counters)
                .where(counters.c.counter_key == counter_key)
                .values(next_version=next_version + 1)
            )
            conn.execute(
                versions.insert().values(
                    counter_key=counter_key,
                    version=next_version,
                    owner=owner,
                    status="reserved",
                    run_id=None,
                    reserved_at=_iso(now),
                    expires_at=_iso(now + lease),
                    committed_at=None,
                )
            )
        return next_version

    def _get(self, conn: Connection, counter_key: str, version: int) -> Any:
        row = conn.execute(
            select(versions).where(
                (versions.c.counter_key == counter_key) & (versions.c.version == version)
            )
        ).first()
        if row is None:
            raise RegistryError(
                f"version {version} of counter {counter_key!r} was never reserved in "
                f"{self.location}"
            )
        return row

    def commit_version(self, counter_key: str, version: int, run_id: str) -> None:
        _check_text(run_id, "run_id", 64)
        with self._tx(write=True) as conn:
            row = self._get(conn, counter_key, version)
            if row.status == "committed":
                if row.run_id == run_id:
                    return
                raise RegistryError(
                    f"version {version} of {counter_key!r} is already committed to run "
                    f"{row.run_id}, not {run_id}"
                )
            if row.status == "released":
                raise RegistryError(
                    f"version {version} of {counter_key!r} was released by {row.owner!r} and "
                    "cannot be used any more; reserve a new version"
                )
            # an expired reservation may still be committed: its number was never handed out
            # again, so the name stays unique (the process was only slower than its lease)
            conn.execute(
                update(versions)
                .where((versions.c.counter_key == counter_key) & (versions.c.version == version))
                .values(status="committed", run_id=run_id, committed_at=_iso(utc_now()))
            )

    def release_version(self, counter_key: str, version: int, owner: str) -> None:
        with self._tx(write=True) as conn:
            row = self._get(conn, counter_key, version)
            if row.status != "reserved":
                return
            if row.owner != owner:
                raise RegistryError(
                    f"version {version} of {counter_key!r} is reserved by {row.owner!r}, "
                    f"not {owner!r}"
                )
            conn.execute(
                update(versions)
                .where((versions.c.counter_key == counter_key) & (versions.c.version == version))
                .values(status="released")
            )

    def renew_version(
        self, counter_key: str, version: int, owner: str, *, lease: _dt.timedelta = DEFAULT_LEASE
    ) -> _dt.datetime:
        now = utc_now()
        expires = now + lease
        with self._tx(write=True) as conn:
            row = self._get(conn, counter_key, version)
            active = row.status == "reserved" and row.expires_at > _iso(now)
            if not active or row.owner != owner:
                if active:
                    state = f"reserved by {row.owner!r}"
                else:
                    state = "expired" if row.status == "reserved" else row.status
                    state = f"{state} (owner {row.owner!r})"
                raise RegistryError(
                    f"version {version} of {counter_key!r} cannot be renewed by {owner!r}: it "
                    f"is {state}"
                )
            conn.execute(
                update(versions)
                .where((versions.c.counter_key == counter_key) & (versions.c.version == version))
                .values(expires_at=_iso(expires))
            )
        return expires

    def expire_stale(self, *, now: _dt.datetime | None = None) -> int:
        moment = _iso(now or utc_now())
        with self._tx(write=True) as conn:
            result = conn.execute(
                update(versions)
                .where((versions.c.status == "reserved") & (versions.c.expires_at <= moment))
                .values(status="expired")
            )
        return int(result.rowcount or 0)

    def expire_reserved_before(self, moment: _dt.datetime) -> int:
        with self._tx(write=True) as conn:
            result = conn.execute(
                update(versions)
                .where((versions.c.status == "reserved") & (versions.c.reserved_at < _iso(moment)))
                .values(status="expired")
            )
        return int(result.rowcount or 0)

    def allocations(self, counter_key: str | None = None) -> list[Allocation]:
        query = select(versions).order_by(versions.c.counter_key, versions.c.version)
        if counter_key is not None:
            query = query.where(versions.c.counter_key == counter_key)
        with self._tx(write=False) as conn:
            return [_allocation(r._mapping) for r in conn.execute(query)]

    def counter_values(self) -> dict[str, int]:
        """Each counter key's next version (for export and checks)."""
        with self._tx(write=False) as conn:
            return {r.counter_key: int(r.next_version) for r in conn.execute(select(counters))}

    def check(self) -> list[str]:
        """Problems found by SQLite's integrity check (empty when sound; PostgreSQL: empty)."""
        if self.dialect != "sqlite":
            return []
        with self._tx(write=False) as conn:
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows


def _insert_ignore(dialect: str, table: Any) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


def _entry(row: Any) -> RunIndexEntry:
    return RunIndexEntry(
        run_key_hash=row["run_key_hash"],
        run_id=row["run_id"],
        experiment_id=row["experiment_id"],
        tracking_uri=row["tracking_uri"],
        run_name=row["run_name"],
        stage=row["stage"],
        created_at=parse_utc(row["created_at"]),
        updated_at=parse_utc(row["updated_at"]),
    )


_OUTPUT_TEXT_LIMITS = (
    ("process_type", 64),
    ("model", 255),
    ("environment", 64),
    ("spec_fp", 64),
    ("exec_fp", 64),
    ("conv_fp", 64),
    ("trial_id", 255),
    ("parent_training_id", 255),
    ("run_id", 64),
)


def _output(row: Any) -> OutputEntry:
    status = json.loads(row["status"] or "{}")
    return OutputEntry(
        path=row["path"],
        process_type=row["process_type"],
        model=row["model"],
        environment=row["environment"],
        spec_fp=row["spec_fp"],
        exec_fp=row["exec_fp"],
        conv_fp=row["conv_fp"],
        variant=int(row["variant"]) if row["variant"] is not None else None,
        trial_id=row["trial_id"],
        parent_training_id=row["parent_training_id"],
        status=status if isinstance(status, dict) else {},
        run_id=row["run_id"],
        created_at=parse_utc(row["created_at"]),
        updated_at=parse_utc(row["updated_at"]),
    )


def _allocation(row: Any) -> Allocation:
    return Allocation(
        counter_key=row["counter_key"],
        version=int(row["version"]),
        owner=row["owner"],
        status=row["status"],
        run_id=row["run_id"],
        reserved_at=parse_utc(row["reserved_at"]),
        expires_at=parse_utc(row["expires_at"]),
        committed_at=parse_utc(row["committed_at"]) if row["committed_at"] else None,
    )


def _check_text(value: str, name: str, limit: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > limit:
        raise RegistryError(f"{name} is {len(value)} characters long, over the limit of {limit}")


def _normalise_url(url: str) -> str:
    text = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    return text


def _check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not an SQLite database before SQLite touches it."""
    if not path.exists():
        return
    if path.is_dir():
        raise RegistryCorruptError(
            "this is a folder, not a registry database file",
            path=str(path),
            repair="point the registry at a file path",
        )
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise RegistryError(f"cannot read the registry {path}: {exc.strerror}") from exc
    if header and header != _SQLITE_HEADER:
        raise RegistryCorruptError(
            "this file is not an SQLite database (it may be an old JSON index, or damaged)",
            path=str(path),
            repair=_repair_command(str(path)),
        )
    if not header:
        return
    # Another program's database is refused before anything (even a PRAGMA) writes to it.
    try:
        probe = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            tables = {
                r[0] for r in probe.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        raise RegistryCorruptError(
            f"the registry database cannot be read ({exc})",
            path=str(path),
            repair=_repair_command(str(path)),
        ) from exc
    if tables and meta.name not in tables:
        raise RegistryCorruptError(
            "this SQLite file belongs to another program (tables: "
            f"{', '.join(sorted(tables))}), not an mlinfra registry",
            path=str(path),
            repair="move it away, or point the registry elsewhere (MLINFRA_REGISTRY_URL)",
        )
