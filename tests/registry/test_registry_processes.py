"""The registry under real processes: contention, and processes killed with SIGKILL.

Children are ``sys.executable -c <script>`` processes; every wait is bounded, and every child
still running when a test ends is killed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import Children, sigkill, wait_for

from mlinfra.core.timeutil import utc_now
from mlinfra.registry import RunIndexEntry, SqlRegistry

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

KEY = "resume-ner:hpo:study-abc:local"

# Open the registry and reserve-and-commit ``count`` versions once the ``go`` file appears (opening
# is part of the race); print the versions.
RESERVER = r"""
import json, os, sys, time
url, key, count, tag, ready, go, timeout = sys.argv[1:]
from mlinfra.registry import SqlRegistry
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go signal within 60 s")
    time.sleep(0.005)
registry = SqlRegistry(url, busy_timeout=float(timeout))
got = []
for i in range(int(count)):
    owner = f"{tag}-{i}"
    version = registry.reserve_version(key, owner)
    registry.commit_version(key, version, f"run-{tag}-{i}")
    got.append(version)
registry.close()
print(json.dumps(got))
"""

# Reserve one version with a short lease, report it, then hang (to be killed).
HOLDER = r"""
import datetime, sys, time
url, key, owner, lease, ready = sys.argv[1:]
from mlinfra.registry import SqlRegistry
registry = SqlRegistry(url)
version = registry.reserve_version(key, owner, lease=datetime.timedelta(seconds=float(lease)))
with open(ready + ".tmp", "w") as handle:
    handle.write(str(version))
import os
os.replace(ready + ".tmp", ready)
time.sleep(300)
"""

# Open a write transaction by hand, change things inside it, then hang (to be killed).
SQLITE_WRITER = r"""
import os, sqlite3, sys, time
path, key, ready = sys.argv[1:]
conn = sqlite3.connect(path, isolation_level=None, timeout=30)
conn.execute("PRAGMA cache_size = 5")  # spill uncommitted pages into the WAL file
conn.execute("BEGIN IMMEDIATE")
conn.execute(
    "UPDATE mlinfra_counters SET next_version = next_version + 1000 WHERE counter_key = ?", (key,)
)
for i in range(3000):
    conn.execute(
        "INSERT INTO mlinfra_runs (tracking_uri, run_key_hash, run_id, experiment_id, run_name,"
        " stage, created_at, updated_at) VALUES ('ghost://', ?, 'ghost', '0', ?, 'ghost',"
        " '2000-01-01T00:00:00.000000Z', '2000-01-01T00:00:00.000000Z')",
        (f"{i:064d}", "x" * 200),
    )
open(ready, "w").close()
time.sleep(300)
"""

PG_WRITER = r"""
import sys, time
import psycopg
url, key, ready = sys.argv[1:]
conn = psycopg.connect(url)
conn.execute("SELECT next_version FROM mlinfra_counters WHERE counter_key = %s FOR UPDATE", (key,))
conn.execute(
    "UPDATE mlinfra_counters SET next_version = next_version + 1000 WHERE counter_key = %s", (key,)
)
for i in range(200):
    conn.execute(
        "INSERT INTO mlinfra_runs (tracking_uri, run_key_hash, run_id, experiment_id, run_name,"
        " stage, created_at, updated_at) VALUES ('ghost://', %s, 'ghost', '0', 'g', 'ghost',"
        " '2000-01-01T00:00:00.000000Z', '2000-01-01T00:00:00.000000Z')",
        (f"{i:064d}",),
    )
open(ready, "w").close()
time.sleep(300)
"""


def _start_reservers(
    children: Children, tmp_path: Path, url: str, processes: int, each: int, go: Path
) -> list[subprocess.Popen[str]]:
    procs = []
    for n in range(processes):
        ready = tmp_path / f"ready-{n}"
        procs.append(children.start(RESERVER, url, KEY, each, f"p{n}", ready, go, 30))
    wait_for(
        lambda: all((tmp_path / f"ready-{n}").exists() for n in range(processes)),
        f"{processes} reserver processes to start",
        timeout=90,
    )
    return procs


# ---- (a) contention ---------------------------------------------------------------------------


@pytest.mark.slow
def test_16_processes_reserve_800_distinct_gapless_versions(
    registry: SqlRegistry, registry_url: str, children: Children, tmp_path: Path
) -> None:
    processes, each = 16, 50
    go = tmp_path / "go"
    procs = _start_reservers(children, tmp_path, registry_url, processes, each, go)
    started = time.monotonic()
    go.touch()  # released at once
    got = [json.loads(children.finish(p, timeout=90)) for p in procs]
    elapsed = time.monotonic() - started

    handed_out = [v for versions in got for v in versions]
    assert len(handed_out) == processes * each
    assert len(set(handed_out)) == len(handed_out), "a version was handed out twice"
    assert set(handed_out) == set(range(1, processes * each + 1))
    for versions in got:  # each process sees its own numbers increase
        assert versions == sorted(versions)

    allocations = registry.allocations(KEY)
    assert len(allocations) == processes * each
    assert {a.status for a in allocations} == {"committed"}
    assert [a.version for a in allocations] == list(range(1, processes * each + 1))
    by_version = {a.version: a for a in allocations}
    for n, versions in enumerate(got):
        for i, version in enumerate(versions):
            assert by_version[version].run_id == f"run-p{n}-{i}"
            assert by_version[version].owner == f"p{n}-{i}"
    assert registry.counter_values() == {KEY: processes * each + 1}
    assert registry.check() == []
    assert registry.reserve_version(KEY, "after") == processes * each + 1
    assert elapsed < 90


# ---- (b) a process killed while holding a reservation ----------------------------------------


@pytest.mark.slow
def test_a_killed_holder_s_reservation_expires_and_its_number_is_never_reused(
    registry: SqlRegistry, registry_url: str, children: Children, tmp_path: Path
) -> None:
    lease = 3.0
    ready = tmp_path / "held"
    holder = children.start(HOLDER, registry_url, KEY, "doomed", lease, ready)
    wait_for(ready.exists, "the holder's reservation", holder, timeout=60)
    assert holder.poll() is None, holder.communicate(timeout=10)[1][-3000:]
    doomed = int(ready.read_text())
    sigkill(holder)

    # the dead process left no lock and its reservation is still leased
    (alloc,) = [a for a in registry.allocations(KEY) if a.version == doomed]
    assert (alloc.owner, alloc.status) == ("doomed", "reserved")
    if utc_now() < alloc.expires_at:
        assert registry.expire_stale() == 0

    # others keep reserving, and never get the killed process's number
    go = tmp_path / "go"
    procs = _start_reservers(children, tmp_path, registry_url, 3, 10, go)
    go.touch()
    others = [v for p in procs for v in json.loads(children.finish(p, timeout=60))]
    assert len(set(others)) == 30
    assert doomed not in others
    assert set(others) == set(range(1, 32)) - {doomed}

    # once the lease has passed, the reservation expires
    wait = (alloc.expires_at - utc_now()).total_seconds()
    if wait > 0:
        time.sleep(wait + 0.05)
    registry.expire_stale()  # may find nothing if a reserve already swept it
    statuses = {a.version: a.status for a in registry.allocations(KEY)}
    assert statuses[doomed] == "expired"
    assert registry.expire_stale() == 0

    # and its number is never handed out again, not even to the same owner
    later = [registry.reserve_version(KEY, owner) for owner in ("doomed", "w1", "w2")]
    assert later == [32, 33, 34]
    assert registry.check() == []


# ---- (c) a process killed inside a write transaction ------------------------------------------


@pytest.mark.slow
def test_a_process_killed_inside_a_write_leaves_no_lock_and_no_half_write(
    registry: SqlRegistry, registry_url: str, children: Children, tmp_path: Path
) -> None:
    busy_timeout = 30.0
    first = registry.reserve_version(KEY, "before")
    registry.commit_version(KEY, first, "run-before")
    registry.upsert_run(
        _run_entry("a" * 64, "run-a")  # a real entry, to see that only the ghost rows vanish
    )

    ready = tmp_path / "in-transaction"
    if registry.dialect == "sqlite":
        assert registry.path is not None
        writer = children.start(SQLITE_WRITER, registry.path, KEY, ready)
    else:
        writer = children.start(PG_WRITER, registry_url, KEY, ready)
    wait_for(ready.exists, "the writer's transaction", writer, timeout=60)
    assert writer.poll() is None, writer.communicate(timeout=10)[1][-3000:]
    _assert_write_lock_is_held(registry, registry_url)

    # reservers start while the lock is held: they wait for it
    go = tmp_path / "go"
    procs = _start_reservers(children, tmp_path, registry_url, 3, 5, go)
    go.touch()
    time.sleep(0.3)
    assert all(p.poll() is None for p in procs), "a reserver got through a held write lock"

    sigkill(writer)
    killed_at = time.monotonic()
    others = [v for p in procs for v in json.loads(children.finish(p, timeout=busy_timeout))]
    assert time.monotonic() - killed_at < busy_timeout

    # the killed transaction vanished whole: no ghost rows, no jump of the counter
    assert sorted(others) == list(range(2, 17))
    assert registry.counter_values() == {KEY: 17}
    assert [e.run_id for e in registry.list_runs()] == ["run-a"]
    assert registry.list_runs(tracking_uri="ghost://") == []
    assert registry.check() == []
    assert [a.status for a in registry.allocations(KEY)] == ["committed"] * 16
    assert registry.reserve_version(KEY, "after") == 17
    if registry.dialect == "sqlite":
        import sqlite3

        assert registry.path is not None
        with sqlite3.connect(registry.path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("SELECT count(*) FROM mlinfra_runs").fetchone() == (1,)
        conn.close()


def _run_entry(key: str, run_id: str) -> RunIndexEntry:
    return RunIndexEntry(key, run_id, "1", "sqlite:///mlruns.db", stage="hpo")


def _assert_write_lock_is_held(registry: SqlRegistry, registry_url: str) -> None:
    """The child really holds the lock the registry's writers need."""
    if registry.dialect == "sqlite":
        import sqlite3

        assert registry.path is not None
        probe = sqlite3.connect(registry.path, isolation_level=None, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                probe.execute("BEGIN IMMEDIATE")
        finally:
            probe.close()
        return
    import psycopg
    from psycopg import errors

    with psycopg.connect(registry_url) as probe:
        with pytest.raises(errors.LockNotAvailable):
            probe.execute(
                "SELECT * FROM mlinfra_counters WHERE counter_key = %s FOR UPDATE NOWAIT", (KEY,)
            )
        probe.rollback()


# ---- (d) an open registry inherited through fork ----------------------------------------------


def _forked_reserver(registry: SqlRegistry, tag: str, count: int, results: object) -> None:
    got = []
    for i in range(count):
        version = registry.reserve_version(KEY, f"{tag}-{i}")
        registry.commit_version(KEY, version, f"run-{tag}-{i}")
        got.append(version)
    results.put((tag, got))  # type: ignore[attr-defined]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_an_open_registry_keeps_working_in_forked_children(registry: SqlRegistry) -> None:
    import multiprocessing
    import queue

    # the parent's pool holds open connections when it forks
    registry.commit_version(KEY, registry.reserve_version(KEY, "parent-0"), "run-parent-0")
    assert registry.list_runs() == []
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_forked_reserver, args=(registry, f"f{n}", 10, results))
        for n in range(4)
    ]
    try:
        for proc in procs:
            proc.start()
        mine = []
        for i in range(1, 6):  # the parent keeps using its connections meanwhile
            version = registry.reserve_version(KEY, f"parent-{i}")
            registry.commit_version(KEY, version, f"run-parent-{i}")
            mine.append(version)
        got: dict[str, list[int]] = {}
        for _ in procs:
            try:
                tag, versions = results.get(timeout=30)
            except queue.Empty:
                pytest.fail(f"forked children reported {sorted(got)} of 4 within 30 s")
            got[tag] = versions
        for proc in procs:
            proc.join(timeout=30)
            assert proc.exitcode == 0
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)
        results.close()
        results.join_thread()

    handed_out = [1, *mine, *(v for vs in got.values() for v in vs)]
    assert sorted(handed_out) == list(range(1, 47))
    allocations = registry.allocations(KEY)
    assert [a.version for a in allocations] == list(range(1, 47))
    assert {a.status for a in allocations} == {"committed"}
    assert registry.check() == []
    assert registry.reserve_version(KEY, "after") == 47
