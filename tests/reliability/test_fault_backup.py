"""Fault matrix of ``DriveBackupStore.backup`` and ``snapshot_sqlite``: SIGKILL at the commit
points, disk full and permission denied at ``os.fsync`` (every staged upload and every atomic
journal/manifest write fsyncs), a full target database for the snapshot, and the clock stepping
back. (SIGKILL while uploading and after 5 renames: tests/storage/test_backup_kill.py.)

Tests may run as root, where ``chmod`` stops no write: a denied write is injected as the
``PermissionError`` the kernel would raise, at the same boundary as ENOSPC.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import FAULTS, Clock, all_json_parses, inject_fsync, integrity, tree

from mlinfra.errors import BackupError
from mlinfra.storage import DriveBackupStore
from mlinfra.storage import sqlite as snap_module
from mlinfra.storage.sqlite import snapshot_sqlite

# The child backs up the study folder and SIGKILLs itself at the chosen point.
_CHILD = """
import os, signal, sys
from mlinfra.storage import DriveBackupStore
from mlinfra.storage import base

project, drive, point = sys.argv[1:4]
store = DriveBackupStore(project, drive)
write, real_snapshot = store._write_bytes, base.snapshot_sqlite

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def snapshot(src, dst):
    real_snapshot(src, dst)
    if point == "after-snapshot":
        die()

def write_bytes(loc, data):
    if point == "before-journal" and loc.endswith("journal.json"):
        die()
    write(loc, data)
    if point == "after-journal" and loc.endswith("journal.json"):
        die()
    if point == "after-manifest" and loc.endswith(".mlinfra.json"):
        die()

base.snapshot_sqlite = snapshot
store._write_bytes = write_bytes
store.backup(os.path.join(project, "outputs", "hpo", "study-1")).raise_for_error()
"""


def _study(project: Path, version: str) -> Path:
    study = project / "outputs" / "hpo" / "study-1"
    study.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        (study / f"trial-{i}.json").write_text(json.dumps({"v": version, "i": i}))
    conn = sqlite3.connect(study / "study.db")
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (version,))
    conn.close()
    return study


def _db_rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY rowid")]
    finally:
        conn.close()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path, DriveBackupStore]:
    project, drive = tmp_path / "project", tmp_path / "MyDrive" / "project"
    study = _study(project, "v1")
    store = DriveBackupStore(project, drive)
    store.backup(study).raise_for_error()
    return project, drive, study, store


def _restored(store: DriveBackupStore, study: Path) -> dict[str, Any]:
    for path in study.iterdir():
        if path.is_file():  # a killed snapshot leaves its .study.db.mlinfra-snap-* folder
            path.unlink()
    store.restore(study).raise_for_error()
    assert integrity(study / "study.db") == ["ok"]
    return {
        "trials": {json.loads(p.read_text())["v"] for p in study.glob("trial-*.json")},
        "db": _db_rows(study / "study.db"),
    }


V1 = {"trials": {"v1"}, "db": ["v1"]}
V2 = {"trials": {"v2"}, "db": ["v1", "v2"]}


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ("after-snapshot", V1),
        ("before-journal", V1),
        ("after-journal", V2),
        ("after-manifest", V2),
    ],
)
def test_sigkill_at_a_commit_point_restores_one_whole_backup(
    setup: tuple[Path, Path, Path, DriveBackupStore], point: str, expected: dict[str, Any]
) -> None:
    project, drive, study, store = setup
    backup_before = tree(drive, internal=False)
    _study(project, "v2")
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(project), str(drive), point],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    all_json_parses(drive)
    if expected is V1:  # killed before the commit point: the previous backup is byte-identical
        assert tree(drive, internal=False) == backup_before
    assert _restored(store, study) == expected  # never a mix
    # the snapshot's temporary folder of a killed backup is not backed up
    _study(project, "v3")
    store.backup(study).raise_for_error()
    assert not any("mlinfra-snap" in k for k in tree(drive, internal=False))


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("nth", [1, 5, 6, 7])  # 5 uploads (4 files + the db), journal, manifest
def test_write_fault_keeps_the_previous_backup_or_completes_the_new(
    setup: tuple[Path, Path, Path, DriveBackupStore],
    monkeypatch: pytest.MonkeyPatch,
    nth: int,
    fault: str,
) -> None:
    project, drive, study, store = setup
    backup_before = tree(drive, internal=False)
    _study(project, "v2")
    fail = inject_fsync(monkeypatch, FAULTS[fault], nth)
    result = store.backup(study)
    monkeypatch.undo()
    assert fail.fired and not result.ok
    assert isinstance(result.error, BackupError) and str(study) in str(result.error)
    all_json_parses(drive)
    if nth <= 6:  # up to the journal (the commit point): the previous backup is byte-identical
        assert tree(drive, internal=False) == backup_before
        assert _restored(store, study) == V1
    else:  # the commit was written: the next restore finishes the new backup, whole
        assert _restored(store, study) == V2


def test_clock_stepping_back_still_backs_up_the_change(
    setup: tuple[Path, Path, Path, DriveBackupStore], clock: Clock
) -> None:
    project, _drive, study, store = setup
    clock.step_back(1)
    _study(project, "v2")
    for path in study.glob("[st]*"):  # the kernel stamps files with the stepped-back clock
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
    assert store.backup(study).raise_for_error().copied == 5
    assert _restored(store, study) == V2


def test_clock_stepping_back_ensure_local_keeps_newer_local_work(
    setup: tuple[Path, Path, Path, DriveBackupStore],
) -> None:
    project, _drive, study, store = setup
    _study(project, "v2")  # written after the backup, with the clock an hour back
    for path in study.glob("[st]*"):
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
    store.ensure_local(study).raise_for_error()
    assert {json.loads(p.read_text())["v"] for p in study.glob("trial-*.json")} == {"v2"}


# ---- snapshot_sqlite --------------------------------------------------------------------------


class _FullTarget:
    """``sqlite3`` as seen by mlinfra.storage.sqlite: the snapshot target's disk is full
    (``PRAGMA max_page_count``: SQLITE_FULL), or it cannot be created (SQLITE_CANTOPEN)."""

    def __init__(self, fault: str) -> None:
        self.fault = fault

    def __getattr__(self, name: str) -> Any:
        return getattr(sqlite3, name)

    def connect(self, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if kwargs.get("uri"):  # the read-only source
            return sqlite3.connect(*args, **kwargs)
        if self.fault == "permission-denied":
            raise sqlite3.OperationalError("unable to open database file")
        conn = sqlite3.connect(*args, **kwargs)
        conn.execute("PRAGMA max_page_count = 2")
        return conn


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_snapshot_write_fault_leaves_no_target_and_the_source_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    src, dst = tmp_path / "study.db", tmp_path / "snap" / "study.db"
    dst.parent.mkdir()
    conn = sqlite3.connect(src)
    with conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 400,)] * 500)
    conn.close()
    before = src.read_bytes()
    monkeypatch.setattr(snap_module, "sqlite3", _FullTarget(fault))
    with pytest.raises(BackupError) as info:
        snapshot_sqlite(src, dst)
    monkeypatch.undo()
    assert str(src) in str(info.value)
    assert not dst.exists() and src.read_bytes() == before and integrity(src) == ["ok"]
    snapshot_sqlite(src, dst)  # space is back
    assert integrity(dst) == ["ok"]


def test_snapshot_with_the_clock_stepped_back_is_whole(tmp_path: Path, clock: Clock) -> None:
    src = tmp_path / "study.db"
    conn = sqlite3.connect(src)
    with conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES ('a')")
    conn.close()
    clock.step_back(1)
    snapshot_sqlite(src, tmp_path / "snap.db")
    assert integrity(tmp_path / "snap.db") == ["ok"] and _db_rows(tmp_path / "snap.db") == ["a"]
