"""Fault matrix of the SQLite registry: version reservation (``reserve_version`` /
``commit_version``) and the run index (``upsert_run``).

SQLite writes from C, below Python's ``os`` functions, so a full disk and a denied write are
injected at SQLite's own boundary: ``PRAGMA max_page_count`` makes the next page SQLite needs
fail with SQLITE_FULL ("database or disk is full"), and ``PRAGMA query_only`` makes every write
fail as on a read-only file (SQLITE_READONLY). Tests may run as root, where ``chmod`` stops
nothing, so no permission bits are used.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fault_helpers import Children, Clock, integrity, sigkill, wait_for
from sqlalchemy import event

from mlinfra.errors import RegistryError
from mlinfra.registry import RunIndexEntry, SqlRegistry

KEY = "resume-ner:hpo:study-abc:local"
URI = "sqlite:///mlruns.db"

# Reserve and commit versions, and index one run per version, in a loop; after each step write
# the step count to the progress file (atomically), so the parent picks the moment to SIGKILL.
_LOOP = r"""
import os, sys
from mlinfra.registry import RunIndexEntry, SqlRegistry
url, key, progress = sys.argv[1:]
registry = SqlRegistry(url)
step = 0
def done():
    global step
    step += 1
    with open(progress + ".tmp", "w") as handle:
        handle.write(str(step))
    os.replace(progress + ".tmp", progress)
while True:
    version = registry.reserve_version(key, f"loop-{step}")
    done()
    registry.commit_version(key, version, f"run-{version}")
    done()
    registry.upsert_run(RunIndexEntry(f"{version:064d}", f"run-{version}", "1", "sqlite:///m.db"))
    done()
"""


def _entry(n: int, run_id: str) -> RunIndexEntry:
    return RunIndexEntry(f"{n:064d}", run_id, "1", URI, run_name=f"name-{n}", stage="hpo")


def _no_duplicates(registry: SqlRegistry) -> list[int]:
    """Every allocated version is allocated once; the counter is past all of them."""
    versions = [a.version for a in registry.allocations(KEY)]
    assert [v for v, n in Counter(versions).items() if n > 1] == []
    committed = [a.run_id for a in registry.allocations(KEY) if a.status == "committed"]
    assert len(committed) == len(set(committed))
    assert registry.counter_values().get(KEY, 1) > max(versions, default=0)
    assert registry.check() == []
    return versions


def _limit(registry: SqlRegistry, pragma: str) -> None:
    """Every new connection of ``registry`` runs ``pragma`` (``{pages}``: its current size)."""

    @event.listens_for(registry.engine, "connect")
    def _connect(dbapi_connection: object, _record: object) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[attr-defined]
        dbapi_connection.execute(pragma.format(pages=pages))  # type: ignore[attr-defined]

    registry.engine.dispose()  # pooled connections were opened without it


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


# ---- SIGKILL ----------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [1, 2, 30, 100])
def test_sigkill_during_a_reserve_commit_index_loop_leaves_no_duplicate(
    db: Path, children: Children, tmp_path: Path, steps: int
) -> None:
    """Killed at a step (after reserve, after commit, after index: 1, 2, 30 = 0 mod 3, ...)."""
    url = f"sqlite:///{db}"
    progress = tmp_path / "progress"
    child = children.start(_LOOP, url, KEY, progress)
    wait_for(
        lambda: progress.exists() and int(progress.read_text() or 0) >= steps,
        f"{steps} steps",
        child,
    )
    sigkill(child)
    assert integrity(db) == ["ok"]
    registry = SqlRegistry(url, busy_timeout=5)  # the dead child holds no lock
    try:
        before = _no_duplicates(registry)
        runs = registry.list_runs()
        assert all(r.run_id == f"run-{int(r.run_key_hash)}" for r in runs)  # rows are whole
        committed = {a.version for a in registry.allocations(KEY) if a.status == "committed"}
        assert {int(r.run_key_hash) for r in runs} <= committed
        nxt = registry.reserve_version(KEY, "after-the-kill")
        assert nxt not in before and nxt == max(before) + 1
        registry.commit_version(KEY, nxt, "run-after")
        _no_duplicates(registry)
    finally:
        registry.close()


# ---- disk full and permission denied (SQLite's own boundary) ----------------------------------


def test_disk_full_during_reservations_is_a_clear_error_and_loses_nothing(db: Path) -> None:
    registry = SqlRegistry(f"sqlite:///{db}")
    try:
        for i in range(3):
            registry.commit_version(KEY, registry.reserve_version(KEY, f"o{i}"), f"run-{i}")
        _limit(registry, "PRAGMA max_page_count = {pages}")
        handed_out = []
        with pytest.raises(RegistryError) as info:
            for i in range(3, 5000):
                version = registry.reserve_version(KEY, f"o{i}")
                handed_out.append(version)
                registry.commit_version(KEY, version, f"run-{i}")
        assert str(db) in str(info.value) and "full" in str(info.value)
        versions = _no_duplicates(registry)
        assert set(handed_out) <= set(versions)
    finally:
        registry.close()
    assert integrity(db) == ["ok"]
    again = SqlRegistry(f"sqlite:///{db}")  # space is back
    try:
        nxt = again.reserve_version(KEY, "after")
        assert nxt not in versions and nxt == max(versions) + 1
        _no_duplicates(again)
    finally:
        again.close()


def test_disk_full_during_an_index_update_keeps_the_index_whole(db: Path) -> None:
    registry = SqlRegistry(f"sqlite:///{db}")
    try:
        registry.upsert_run(_entry(0, "run-0"))
        _limit(registry, "PRAGMA max_page_count = {pages}")
        done = 0
        with pytest.raises(RegistryError) as info:
            for n in range(1, 5000):
                registry.upsert_run(_entry(n, f"run-{n}"))
                done = n
        assert str(db) in str(info.value) and "full" in str(info.value)
        runs = registry.list_runs()
        assert sorted(int(r.run_key_hash) for r in runs) == list(range(done + 1))
        assert all(r.run_id == f"run-{int(r.run_key_hash)}" for r in runs)
        assert registry.check() == []
    finally:
        registry.close()
    assert integrity(db) == ["ok"]


@pytest.mark.parametrize("operation", ["reserve", "commit", "index"])
def test_a_read_only_database_is_a_clear_error_naming_it_and_changes_nothing(
    db: Path, operation: str
) -> None:
    registry = SqlRegistry(f"sqlite:///{db}")
    try:
        first = registry.reserve_version(KEY, "first")
        registry.upsert_run(_entry(1, "run-1"))
        before = (registry.allocations(), registry.counter_values(), registry.list_runs())
        _limit(registry, "PRAGMA query_only = ON")
        with pytest.raises(RegistryError) as info:
            if operation == "reserve":
                registry.reserve_version(KEY, "second")
            elif operation == "commit":
                registry.commit_version(KEY, first, "run-first")
            else:
                registry.upsert_run(_entry(1, "run-other"))
        assert str(db) in str(info.value) and "readonly" in str(info.value)
        assert (registry.allocations(), registry.counter_values(), registry.list_runs()) == before
    finally:
        registry.close()
    assert integrity(db) == ["ok"]


# ---- the clock steps back ---------------------------------------------------------------------


def test_clock_stepping_back_between_reservations_gives_no_duplicate(
    db: Path, clock: Clock
) -> None:
    registry = SqlRegistry(f"sqlite:///{db}")
    try:
        a = registry.reserve_version(KEY, "a")
        clock.step_back(1)
        b = registry.reserve_version(KEY, "b")
        assert registry.reserve_version(KEY, "a") == a  # a's reservation is still a's
        clock.step_back(1)
        c = registry.reserve_version(KEY, "c")
        for version, owner in ((a, "a"), (b, "b"), (c, "c")):
            registry.commit_version(KEY, version, f"run-{owner}")
        assert [a, b, c] == [1, 2, 3]
        _no_duplicates(registry)
        assert registry.expire_stale() == 0  # nothing committed goes back to the pool
        assert registry.reserve_version(KEY, "d") == 4
    finally:
        registry.close()


def test_clock_stepping_back_between_index_updates_keeps_the_latest_run(
    db: Path, clock: Clock
) -> None:
    registry = SqlRegistry(f"sqlite:///{db}")
    try:
        first = registry.upsert_run(_entry(1, "run-old"))
        clock.step_back(1)
        second = registry.upsert_run(_entry(1, "run-new"))
        assert second.run_id == "run-new"
        assert second.created_at == first.created_at  # the first sighting is kept
        found = registry.find_run(f"{1:064d}", URI)
        assert found is not None and found.run_id == "run-new"
        assert len(registry.list_runs()) == 1
    finally:
        registry.close()
    assert integrity(db) == ["ok"]
