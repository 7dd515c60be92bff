"""snapshot_sqlite and verify_sqlite: consistent copies, and checks that read content back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from storage_helpers import make_study

from mlinfra.errors import BackupError
from mlinfra.storage import is_sqlite_file, snapshot_sqlite, verify_sqlite


def _wal_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (v INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    conn.commit()
    return conn


def test_snapshot_includes_the_wal_and_is_in_rollback_mode(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    conn = _wal_db(db)
    try:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (-1)")  # not committed: must not be in the copy
        snap = tmp_path / "snap.db"
        snapshot_sqlite(db, snap)
    finally:
        conn.rollback()
        conn.close()
    assert is_sqlite_file(snap)
    assert verify_sqlite(snap) == "1 tables, 100 rows"
    copy = sqlite3.connect(snap)
    try:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        copy.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("snap")) == ["snap.db"]


def test_snapshot_refuses_an_existing_target_and_a_non_database(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    _wal_db(db).close()
    (tmp_path / "taken.db").write_text("x")
    with pytest.raises(BackupError, match="already exists"):
        snapshot_sqlite(db, tmp_path / "taken.db")
    (tmp_path / "text.db").write_text("not a database at all, but long enough" * 20)
    with pytest.raises(BackupError, match="cannot snapshot"):
        snapshot_sqlite(tmp_path / "text.db", tmp_path / "out.db")
    assert not (tmp_path / "out.db").exists()
    assert not is_sqlite_file(tmp_path / "text.db")
    assert not is_sqlite_file(tmp_path / "missing.db")
    assert not is_sqlite_file(tmp_path)


def test_verify_counts_optuna_trials(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    make_study(db, 4)
    assert verify_sqlite(db) == "optuna: 1 study, 4 trials"


def test_verify_rejects_a_damaged_file(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    _wal_db(db).close()
    data = bytearray(db.read_bytes())
    page = 4096
    data[page + 8 : page + 64] = b"\xff" * 56  # garbage over a b-tree page header
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=r"damaged\.db"):
        verify_sqlite(damaged)


def test_content_read_back_catches_what_integrity_check_passes(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    make_study(db, 3)
    conn = sqlite3.connect(db)
    try:
        # a trial row pointing at a study that does not exist: the b-trees are fine
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("UPDATE trials SET study_id = 999 WHERE number = 1")
        conn.commit()
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    with pytest.raises(BackupError, match="Optuna loads 1 studies and 2 trials"):
        verify_sqlite(db)
