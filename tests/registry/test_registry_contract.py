"""Conformance of every registry backend to the contract in ``mlinfra.registry.base``.

Each test runs once on SQLite and once on PostgreSQL (the ``registry`` fixture).
"""

from __future__ import annotations

import datetime as dt
import gc
import sys
import threading
import time
import warnings
from typing import Any

import pytest
from sqlalchemy import update

from mlinfra.errors import RegistryError, RegistryTimeoutError
from mlinfra.registry import DEFAULT_LEASE, RunIndexEntry, SqlRegistry
from mlinfra.registry.schema import meta

UTC = dt.timezone.utc
KEY = "proj:hpo:abc:local"


def _status(registry: SqlRegistry, key: str, version: int) -> str:
    (alloc,) = [a for a in registry.allocations(key) if a.version == version]
    return alloc.status


def _assert_utc(moment: dt.datetime | None) -> None:
    assert moment is not None
    assert moment.tzinfo is not None
    assert moment.utcoffset() == dt.timedelta(0)


# ---- rule 2 and 3: reservation numbers ---------------------------------------------------------


def test_reserve_numbers_each_counter_key_from_one(registry: SqlRegistry) -> None:
    assert [registry.reserve_version(KEY, f"w{i}") for i in range(3)] == [1, 2, 3]
    assert [registry.reserve_version("other:key", f"w{i}") for i in range(2)] == [1, 2]
    assert registry.reserve_version(KEY, "w9") == 4
    assert registry.counter_values() == {KEY: 5, "other:key": 3}


def test_same_owner_gets_the_same_number_while_active(registry: SqlRegistry) -> None:
    first = registry.reserve_version(KEY, "owner-a")
    assert registry.reserve_version(KEY, "owner-a") == first
    assert registry.reserve_version(KEY, "owner-b") == first + 1
    assert registry.reserve_version(KEY, "owner-a") == first
    # the same owner on another counter key is a different reservation
    assert registry.reserve_version("k2", "owner-a") == 1
    assert len(registry.allocations(KEY)) == 2


def test_same_owner_gets_a_new_number_once_its_reservation_is_committed(
    registry: SqlRegistry,
) -> None:
    v1 = registry.reserve_version(KEY, "owner-a")
    registry.commit_version(KEY, v1, "run-1")
    assert registry.reserve_version(KEY, "owner-a") == v1 + 1


def test_allocation_records_owner_status_and_utc_times(registry: SqlRegistry) -> None:
    before = dt.datetime.now(UTC)
    version = registry.reserve_version(KEY, "owner-a", lease=dt.timedelta(minutes=5))
    (alloc,) = registry.allocations(KEY)
    assert (alloc.counter_key, alloc.version, alloc.owner) == (KEY, version, "owner-a")
    assert alloc.status == "reserved"
    assert alloc.run_id is None
    assert alloc.committed_at is None
    _assert_utc(alloc.reserved_at)
    _assert_utc(alloc.expires_at)
    assert before - dt.timedelta(seconds=5) <= alloc.reserved_at <= dt.datetime.now(UTC)
    assert alloc.expires_at - alloc.reserved_at == dt.timedelta(minutes=5)


def test_default_lease_is_thirty_minutes(registry: SqlRegistry) -> None:
    assert dt.timedelta(minutes=30) == DEFAULT_LEASE
    registry.reserve_version(KEY, "owner-a")
    (alloc,) = registry.allocations(KEY)
    assert alloc.expires_at - alloc.reserved_at == DEFAULT_LEASE


def test_allocations_lists_every_key_oldest_first(registry: SqlRegistry) -> None:
    registry.reserve_version("b", "x")
    registry.reserve_version("a", "x")
    registry.reserve_version("a", "y")
    assert [(a.counter_key, a.version) for a in registry.allocations()] == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
    ]
    assert [a.version for a in registry.allocations("a")] == [1, 2]
    assert registry.allocations("missing") == []


# ---- rule 5: commit ----------------------------------------------------------------------------


def test_commit_marks_the_version_used_and_is_idempotent(registry: SqlRegistry) -> None:
    version = registry.reserve_version(KEY, "owner-a")
    registry.commit_version(KEY, version, "run-1")
    (alloc,) = registry.allocations(KEY)
    assert (alloc.status, alloc.run_id) == ("committed", "run-1")
    _assert_utc(alloc.committed_at)
    registry.commit_version(KEY, version, "run-1")
    assert registry.allocations(KEY) == [alloc]  # nothing changed, not even committed_at


def test_commit_to_another_run_is_an_error(registry: SqlRegistry) -> None:
    version = registry.reserve_version(KEY, "owner-a")
    registry.commit_version(KEY, version, "run-1")
    with pytest.raises(RegistryError, match="run-1"):
        registry.commit_version(KEY, version, "run-2")
    (alloc,) = registry.allocations(KEY)
    assert alloc.run_id == "run-1"


def test_commit_of_a_version_never_reserved_is_an_error(registry: SqlRegistry) -> None:
    with pytest.raises(RegistryError, match="never reserved"):
        registry.commit_version(KEY, 1, "run-1")
    registry.reserve_version(KEY, "owner-a")
    with pytest.raises(RegistryError, match="never reserved"):
        registry.commit_version(KEY, 2, "run-1")
    with pytest.raises(RegistryError, match="never reserved"):
        registry.commit_version("other:key", 1, "run-1")
    assert [a.status for a in registry.allocations()] == ["reserved"]


def test_committed_numbers_are_one_to_n_when_nothing_fails(registry: SqlRegistry) -> None:
    for i in range(12):
        with registry.reserve(KEY, owner=f"w{i}") as r:
            r.commit(f"run-{i}")
    committed = [a.version for a in registry.allocations(KEY) if a.status == "committed"]
    assert committed == list(range(1, 13))


# ---- release -----------------------------------------------------------------------------------


def test_release_does_not_give_the_number_back(registry: SqlRegistry) -> None:
    v1 = registry.reserve_version(KEY, "owner-a")
    registry.release_version(KEY, v1, "owner-a")
    assert _status(registry, KEY, v1) == "released"
    v2 = registry.reserve_version(KEY, "owner-b")
    assert v2 == v1 + 1
    # the same owner, too, gets a new number after releasing
    assert registry.reserve_version(KEY, "owner-a") == v2 + 1


def test_release_is_idempotent_and_leaves_committed_versions_alone(
    registry: SqlRegistry,
) -> None:
    v1 = registry.reserve_version(KEY, "owner-a")
    registry.release_version(KEY, v1, "owner-a")
    registry.release_version(KEY, v1, "owner-a")
    assert _status(registry, KEY, v1) == "released"
    v2 = registry.reserve_version(KEY, "owner-b")
    registry.commit_version(KEY, v2, "run-2")
    registry.release_version(KEY, v2, "owner-b")
    assert _status(registry, KEY, v2) == "committed"


def test_release_by_another_owner_or_of_a_missing_version_is_an_error(
    registry: SqlRegistry,
) -> None:
    version = registry.reserve_version(KEY, "owner-a")
    with pytest.raises(RegistryError, match="owner-a"):
        registry.release_version(KEY, version, "owner-b")
    assert _status(registry, KEY, version) == "reserved"
    with pytest.raises(RegistryError, match="never reserved"):
        registry.release_version(KEY, version + 1, "owner-a")


# ---- the reserve() context manager -------------------------------------------------------------


def test_reserve_block_commit_inside_is_kept(registry: SqlRegistry) -> None:
    entered = 0
    with registry.reserve(KEY, owner="w1") as r:
        entered += 1
        assert (r.counter_key, r.owner, r.version) == (KEY, "w1", 1)
        assert _status(registry, KEY, 1) == "reserved"
        r.commit("run-1")
        r.commit("run-1")  # idempotent
    assert entered == 1
    assert r.committed and not r.released
    (alloc,) = registry.allocations(KEY)
    assert (alloc.status, alloc.run_id) == ("committed", "run-1")


class _Boom(Exception):
    pass


def test_reserve_block_releases_on_exception_and_reraises_it_unchanged(
    registry: SqlRegistry,
) -> None:
    error = _Boom("inside the block")
    entered = 0
    with pytest.raises(_Boom) as caught, registry.reserve(KEY, owner="w1") as r:
        entered += 1
        raise error
    assert caught.value is error
    assert caught.value.__context__ is None  # nothing was raised while handling it
    assert entered == 1
    assert r.released and not r.committed
    assert _status(registry, KEY, 1) == "released"
    # the released number is not reused
    with registry.reserve(KEY, owner="w1") as again:
        assert again.version == 2
        again.commit("run-2")


def test_reserve_block_releases_on_base_exceptions_too(registry: SqlRegistry) -> None:
    with pytest.raises(KeyboardInterrupt), registry.reserve(KEY, owner="w1"):
        raise KeyboardInterrupt
    assert _status(registry, KEY, 1) == "released"


def test_reserve_block_keeps_a_commit_made_before_the_exception(registry: SqlRegistry) -> None:
    with pytest.raises(_Boom), registry.reserve(KEY, owner="w1") as r:
        r.commit("run-1")
        raise _Boom
    assert _status(registry, KEY, 1) == "committed"


def test_reserve_block_is_entered_exactly_once_per_reservation(registry: SqlRegistry) -> None:
    # The reference implementation's context manager could yield a second time; contextlib
    # turns that into RuntimeError("generator didn't stop"), so a clean exit proves one yield.
    for i in range(1, 4):
        calls = []
        with registry.reserve(KEY, owner=f"w{i}") as r:
            calls.append(r.version)
            r.commit(f"run-{i}")
        assert calls == [i]
    with pytest.raises(_Boom), registry.reserve(KEY, owner="w9") as r:
        calls.append(r.version)
        raise _Boom
    assert calls == [3, 4]


def test_reserve_block_exception_survives_a_failing_release(
    registry: SqlRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_release(counter_key: str, version: int, owner: str) -> None:
        raise RegistryError("database unreachable")

    monkeypatch.setattr(registry, "release_version", broken_release)
    error = _Boom("the real problem")
    with pytest.raises(_Boom) as caught, registry.reserve(KEY, owner="w1"):
        raise error
    assert caught.value is error
    if sys.version_info >= (3, 11):
        assert any("database unreachable" in n for n in getattr(error, "__notes__", []))
    # the reservation was not released: it stays reserved until its lease runs out
    assert _status(registry, KEY, 1) == "reserved"


# ---- rule 4: leases ----------------------------------------------------------------------------


def test_lease_expiry_expires_and_never_hands_the_number_out_again(
    registry: SqlRegistry,
) -> None:
    v1 = registry.reserve_version(KEY, "owner-a", lease=dt.timedelta(milliseconds=50))
    time.sleep(0.12)
    assert registry.expire_stale() == 1
    assert _status(registry, KEY, v1) == "expired"
    assert registry.expire_stale() == 0
    # the same owner gets a new number, so does anyone else
    v2 = registry.reserve_version(KEY, "owner-a")
    assert v2 == v1 + 1
    assert registry.reserve_version(KEY, "owner-b") == v2 + 1
    assert _status(registry, KEY, v1) == "expired"


def test_reserve_itself_expires_a_lapsed_reservation_of_the_same_owner(
    registry: SqlRegistry,
) -> None:
    v1 = registry.reserve_version(KEY, "owner-a", lease=dt.timedelta(milliseconds=50))
    time.sleep(0.12)
    v2 = registry.reserve_version(KEY, "owner-a")
    assert v2 == v1 + 1
    assert _status(registry, KEY, v1) == "expired"


def test_expire_stale_with_a_future_now(registry: SqlRegistry) -> None:
    short = registry.reserve_version(KEY, "a", lease=dt.timedelta(minutes=1))
    long = registry.reserve_version(KEY, "b", lease=dt.timedelta(hours=2))
    done = registry.reserve_version(KEY, "c", lease=dt.timedelta(minutes=1))
    registry.commit_version(KEY, done, "run-c")
    now = dt.datetime.now(UTC)
    assert registry.expire_stale(now=now + dt.timedelta(seconds=30)) == 0
    assert registry.expire_stale(now=now + dt.timedelta(minutes=10)) == 1
    assert [_status(registry, KEY, v) for v in (short, long, done)] == [
        "expired",
        "reserved",
        "committed",
    ]
    # an aware non-UTC 'now' means the same instant
    plus_five = dt.timezone(dt.timedelta(hours=5))
    assert registry.expire_stale(now=(now + dt.timedelta(hours=3)).astimezone(plus_five)) == 1
    assert _status(registry, KEY, long) == "expired"
    assert registry.reserve_version(KEY, "a") == 4
    assert registry.reserve_version(KEY, "b") == 5


def test_renew_extends_the_lease(registry: SqlRegistry) -> None:
    with registry.reserve(KEY, owner="w1", lease=dt.timedelta(seconds=1)) as r:
        expires = r.renew(dt.timedelta(hours=1))
        _assert_utc(expires)
        assert expires > dt.datetime.now(UTC) + dt.timedelta(minutes=59)
        (alloc,) = registry.allocations(KEY)
        assert abs(alloc.expires_at - expires) < dt.timedelta(milliseconds=1)
        assert registry.expire_stale(now=dt.datetime.now(UTC) + dt.timedelta(minutes=30)) == 0
        r.commit("run-1")
    assert _status(registry, KEY, 1) == "committed"


def test_renew_refuses_expired_committed_released_and_other_owners(
    registry: SqlRegistry,
) -> None:
    lapsed = registry.reserve_version(KEY, "a", lease=dt.timedelta(milliseconds=50))
    time.sleep(0.12)
    with pytest.raises(RegistryError, match="expired"):  # lease passed, not yet swept
        registry.renew_version(KEY, lapsed, "a")
    registry.expire_stale()
    with pytest.raises(RegistryError, match="expired"):
        registry.renew_version(KEY, lapsed, "a")
    committed = registry.reserve_version(KEY, "b")
    registry.commit_version(KEY, committed, "run-b")
    with pytest.raises(RegistryError, match="committed"):
        registry.renew_version(KEY, committed, "b")
    released = registry.reserve_version(KEY, "c")
    registry.release_version(KEY, released, "c")
    with pytest.raises(RegistryError, match="released"):
        registry.renew_version(KEY, released, "c")
    active = registry.reserve_version(KEY, "d")
    with pytest.raises(RegistryError, match="'d'"):
        registry.renew_version(KEY, active, "intruder")
    registry.renew_version(KEY, active, "d")
    with pytest.raises(RegistryError, match="never reserved"):
        registry.renew_version(KEY, 99, "d")
    assert [a.status for a in registry.allocations(KEY)] == [
        "expired",
        "committed",
        "released",
        "reserved",
    ]


def test_expire_reserved_before_ignores_the_lease(registry: SqlRegistry) -> None:
    old = registry.reserve_version(KEY, "a", lease=dt.timedelta(days=1))
    done = registry.reserve_version(KEY, "b", lease=dt.timedelta(days=1))
    registry.commit_version(KEY, done, "run-b")
    time.sleep(0.02)
    cutoff = dt.datetime.now(UTC)
    time.sleep(0.02)
    new = registry.reserve_version(KEY, "c", lease=dt.timedelta(days=1))
    assert registry.expire_reserved_before(cutoff) == 1
    assert [_status(registry, KEY, v) for v in (old, done, new)] == [
        "expired",
        "committed",
        "reserved",
    ]
    assert registry.expire_reserved_before(cutoff) == 0
    assert registry.reserve_version(KEY, "a") == 4


def test_renew_by_another_owner_does_not_call_an_active_reservation_expired(
    registry: SqlRegistry,
) -> None:
    active = registry.reserve_version(KEY, "d")
    with pytest.raises(RegistryError) as caught:
        registry.renew_version(KEY, active, "intruder")
    assert "expired" not in str(caught.value)
    assert "reserved by 'd'" in str(caught.value)
    assert _status(registry, KEY, active) == "reserved"


# ---- rule 6: the run index ---------------------------------------------------------------------


def _entry(
    key: str = "h" * 64,
    uri: str = "sqlite:///mlruns.db",
    *,
    run_id: str = "run-1",
    experiment_id: str = "7",
    run_name: str | None = None,
    stage: str | None = None,
    created_at: dt.datetime | None = None,
    updated_at: dt.datetime | None = None,
) -> RunIndexEntry:
    return RunIndexEntry(key, run_id, experiment_id, uri, run_name, stage, created_at, updated_at)


def test_upsert_then_find(registry: SqlRegistry) -> None:
    stored = registry.upsert_run(_entry(run_name="hpo_distilbert_1", stage="hpo"))
    assert (stored.run_id, stored.experiment_id, stored.run_name, stored.stage) == (
        "run-1",
        "7",
        "hpo_distilbert_1",
        "hpo",
    )
    _assert_utc(stored.created_at)
    _assert_utc(stored.updated_at)
    assert stored.created_at == stored.updated_at
    assert registry.find_run("h" * 64, "sqlite:///mlruns.db") == stored
    assert registry.find_run("h" * 64, "http://other:5000") is None
    assert registry.find_run("x" * 64, "sqlite:///mlruns.db") is None


def test_upsert_updates_in_place_keeping_created_at(registry: SqlRegistry) -> None:
    first = registry.upsert_run(_entry(stage="hpo"))
    time.sleep(0.01)
    second = registry.upsert_run(_entry(run_id="run-2", experiment_id="8", stage="refit"))
    assert second.created_at == first.created_at
    assert second.updated_at is not None and first.updated_at is not None
    assert second.updated_at > first.updated_at
    assert (second.run_id, second.experiment_id, second.stage) == ("run-2", "8", "refit")
    assert registry.list_runs() == [second]


def test_entries_are_scoped_by_tracking_uri(registry: SqlRegistry) -> None:
    local = registry.upsert_run(_entry(uri="sqlite:///mlruns.db", run_id="local-run"))
    remote = registry.upsert_run(_entry(uri="azureml://ws", run_id="azure-run"))
    assert registry.find_run("h" * 64, "sqlite:///mlruns.db") == local
    assert registry.find_run("h" * 64, "azureml://ws") == remote
    assert len(registry.list_runs()) == 2
    assert registry.list_runs(tracking_uri="azureml://ws") == [remote]
    assert registry.remove_run("h" * 64, "azureml://ws") is True
    assert registry.find_run("h" * 64, "azureml://ws") is None
    assert registry.find_run("h" * 64, "sqlite:///mlruns.db") == local


def test_list_runs_newest_first_and_filtered(registry: SqlRegistry) -> None:
    a = registry.upsert_run(_entry("a" * 64, stage="hpo"))
    time.sleep(0.002)
    b = registry.upsert_run(_entry("b" * 64, stage="train", uri="http://mlflow:5000"))
    time.sleep(0.002)
    c = registry.upsert_run(_entry("c" * 64, stage="hpo"))
    assert registry.list_runs() == [c, b, a]
    assert registry.list_runs(stage="hpo") == [c, a]
    assert registry.list_runs(stage="hpo", tracking_uri="http://mlflow:5000") == []
    assert registry.list_runs(tracking_uri="http://mlflow:5000") == [b]
    assert registry.list_runs(stage="nothing") == []
    time.sleep(0.002)
    a2 = registry.upsert_run(_entry("a" * 64, run_id="run-9", stage="hpo"))
    assert registry.list_runs() == [a2, c, b]


def test_upsert_keeps_given_timestamps_as_utc(registry: SqlRegistry) -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    created = dt.datetime(2024, 3, 1, 12, 0, tzinfo=plus_two)
    updated = dt.datetime(2024, 3, 2, 12, 0, tzinfo=plus_two)
    stored = registry.upsert_run(_entry(created_at=created, updated_at=updated))
    assert stored.created_at == created
    assert stored.updated_at == updated
    _assert_utc(stored.created_at)
    assert stored.as_dict()["updated_at"] == "2024-03-02T10:00:00.000000Z"


def test_remove_run(registry: SqlRegistry) -> None:
    registry.upsert_run(_entry())
    assert registry.remove_run("h" * 64, "sqlite:///mlruns.db") is True
    assert registry.remove_run("h" * 64, "sqlite:///mlruns.db") is False
    assert registry.find_run("h" * 64, "sqlite:///mlruns.db") is None
    assert registry.list_runs() == []


# ---- input validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "owner"),
    [("", "w"), ("   ", "w"), (KEY, ""), (KEY, " \t"), ("k" * 513, "w"), (KEY, "o" * 256)],
    ids=["empty-key", "blank-key", "empty-owner", "blank-owner", "long-key", "long-owner"],
)
def test_reserve_rejects_bad_keys_and_owners(registry: SqlRegistry, key: str, owner: str) -> None:
    with pytest.raises(RegistryError):
        registry.reserve_version(key, owner)
    assert registry.allocations() == []


def test_reserve_accepts_the_longest_allowed_key_and_owner(registry: SqlRegistry) -> None:
    assert registry.reserve_version("k" * 512, "o" * 255) == 1


@pytest.mark.parametrize("lease", [dt.timedelta(0), dt.timedelta(seconds=-1)])
def test_reserve_rejects_non_positive_leases(registry: SqlRegistry, lease: dt.timedelta) -> None:
    with pytest.raises(RegistryError, match="lease"):
        registry.reserve_version(KEY, "w", lease=lease)
    assert registry.allocations() == []


@pytest.mark.parametrize("run_id", ["", "  ", "r" * 65])
def test_commit_rejects_bad_run_ids(registry: SqlRegistry, run_id: str) -> None:
    version = registry.reserve_version(KEY, "w")
    with pytest.raises(RegistryError):
        registry.commit_version(KEY, version, run_id)
    assert _status(registry, KEY, version) == "reserved"


@pytest.mark.parametrize(
    "bad",
    [
        {"key": ""},
        {"key": "  "},
        {"key": "h" * 65},
        {"run_id": ""},
        {"run_id": "r" * 65},
        {"experiment_id": ""},
        {"uri": ""},
        {"uri": "file:///" + "u" * 1017},
        {"run_name": "n" * 256},
        {"stage": "s" * 65},
        {"stage": ""},
    ],
    ids=lambda bad: "-".join(f"{k}:{len(v)}" for k, v in bad.items()),
)
def test_upsert_rejects_bad_fields_on_every_backend(
    registry: SqlRegistry, bad: dict[str, str]
) -> None:
    # the same checks on both backends: SQLite would store over-long text PostgreSQL refuses
    with pytest.raises(RegistryError):
        registry.upsert_run(_entry(**bad))  # type: ignore[arg-type]
    assert registry.list_runs() == []


def test_upsert_accepts_the_longest_allowed_fields(registry: SqlRegistry) -> None:
    entry = _entry(
        "h" * 64,
        "file:///" + "u" * 1016,
        run_id="r" * 64,
        experiment_id="e" * 64,
        run_name="n" * 255,
        stage="s" * 64,
    )
    stored = registry.upsert_run(entry)
    assert (stored.run_key_hash, stored.tracking_uri, stored.run_name) == (
        entry.run_key_hash,
        entry.tracking_uri,
        entry.run_name,
    )


# ---- opening -----------------------------------------------------------------------------------


def test_reopening_keeps_everything(registry_url: str) -> None:
    with SqlRegistry(registry_url) as first:
        v = first.reserve_version(KEY, "w")
        first.commit_version(KEY, v, "run-1")
        first.upsert_run(_entry())
    with SqlRegistry(registry_url) as second:
        assert [(a.version, a.status) for a in second.allocations()] == [(1, "committed")]
        assert second.find_run("h" * 64, "sqlite:///mlruns.db") is not None
        assert second.reserve_version(KEY, "w2") == 2


def test_schema_version_mismatch_is_refused_on_open(
    registry: SqlRegistry, registry_url: str
) -> None:
    with registry.engine.begin() as conn:
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="999"))
    with pytest.raises(RegistryError, match="schema version 999") as caught:
        SqlRegistry(registry_url)
    assert registry.location in str(caught.value)


def test_a_refused_open_leaves_no_connection_open(registry: SqlRegistry, registry_url: str) -> None:
    with registry.engine.begin() as conn:
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="999"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(RegistryError) as caught:
            SqlRegistry(registry_url)
        del caught
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.parametrize("url", ["mysql://x", "mssql+pyodbc://h/db", "not a url"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(RegistryError, match="unsupported"):
        SqlRegistry(url)


def test_location_hides_the_password(pg_schema: str) -> None:
    url = f"postgresql://postgres:s3cret@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"
    with SqlRegistry(url) as reg:
        assert "s3cret" not in reg.location
        assert "127.0.0.1" in reg.location
        assert reg.dialect == "postgresql"


def test_postgres_scheme_alias_is_accepted(pg_schema: str) -> None:
    with SqlRegistry(
        f"postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"
    ):
        pass


def test_check_reports_a_sound_store(registry: SqlRegistry) -> None:
    registry.reserve_version(KEY, "w")
    assert registry.check() == []


# ---- busy timeout ------------------------------------------------------------------------------


class _LockHolder:
    """Another connection holding the write lock (SQLite) or the counter row (PostgreSQL)."""

    def __init__(self, registry_url: str) -> None:
        if registry_url.startswith("sqlite"):
            import sqlite3

            self.conn: Any = sqlite3.connect(
                registry_url.removeprefix("sqlite:///"), isolation_level=None
            )
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            self.conn = psycopg.connect(registry_url)
            self.conn.execute(
                "SELECT * FROM mlinfra_counters WHERE counter_key = %s FOR UPDATE", (KEY,)
            )

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def test_a_writer_gives_up_after_the_busy_timeout(
    registry_url: str,
) -> None:
    with SqlRegistry(registry_url, busy_timeout=1.0) as reg:
        reg.reserve_version(KEY, "first")
        holder = _LockHolder(registry_url)
        outcome: list[object] = []

        def attempt() -> None:
            started = time.monotonic()
            try:
                outcome.append(reg.reserve_version(KEY, "second"))
            except Exception as exc:
                outcome.append(exc)
            outcome.append(time.monotonic() - started)

        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        try:
            worker.join(timeout=6)
            finished = not worker.is_alive()
        finally:
            holder.release()
            worker.join(timeout=30)
        assert finished, "the writer was still waiting 6 s into a 1 s busy timeout"
        assert isinstance(outcome[0], RegistryTimeoutError), outcome
        assert 0.5 <= outcome[1] < 5, f"gave up after {outcome[1]:.2f} s, not about 1 s"
        assert "locked" in str(outcome[0])
        assert reg.location in str(outcome[0])
        assert reg.reserve_version(KEY, "second") == 2


def test_a_released_version_cannot_be_committed(registry: SqlRegistry) -> None:
    version = registry.reserve_version(KEY, "gives-up")
    registry.release_version(KEY, version, "gives-up")
    with pytest.raises(RegistryError, match="was released"):
        registry.commit_version(KEY, version, "late-run")


def test_an_expired_version_can_still_be_committed_and_stays_unique(registry: SqlRegistry) -> None:
    slow = registry.reserve_version(KEY, "slow", lease=dt.timedelta(milliseconds=20))
    time.sleep(0.05)
    assert registry.expire_stale() == 1
    fast = registry.reserve_version(KEY, "fast")
    assert fast != slow
    registry.commit_version(KEY, slow, "slow-run")
    registry.commit_version(KEY, fast, "fast-run")
    committed = {a.version: a.run_id for a in registry.allocations(KEY) if a.status == "committed"}
    assert committed == {slow: "slow-run", fast: "fast-run"}
