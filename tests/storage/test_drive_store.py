"""DriveBackupStore on a temporary folder standing in for Google Drive: mapping, refusals,
incremental and atomic backups, verified restores, restore on start."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from storage_helpers import age, tree

from mlinfra.errors import BackupError, BackupPathError
from mlinfra.storage import BackupAction, DriveBackupStore

STUDY = "outputs/hpo/study-1"


# ---- mapping and refusals ------------------------------------------------------------------


def test_drive_path_for_mirrors_the_outputs_folder(
    store: DriveBackupStore, project: Path, drive: Path
) -> None:
    assert store.drive_path_for(project / STUDY) == drive / STUDY
    assert store.drive_path_for(project / "outputs") == drive / "outputs"


def test_outputs_outside_the_root_mirror_as_outputs(project: Path, tmp_path: Path) -> None:
    colab_outputs = tmp_path / "content" / "outputs"
    store = DriveBackupStore(project, tmp_path / "d", outputs_dir=colab_outputs)
    assert store.drive_path_for(colab_outputs / "hpo" / "x") == tmp_path / "d/outputs/hpo/x"


@pytest.mark.parametrize(
    ("make_path", "expected"),
    [
        (lambda p, d: d / STUDY, "is inside the backup root"),
        (lambda p, d: Path("/content/drive/MyDrive/project/outputs/x"), "on Google Drive already"),
        (lambda p, d: p.parent / "elsewhere" / "f.txt", "is outside the project"),
        (lambda p, d: p / "src" / "train.py", "is not under the outputs folder"),
    ],
)
def test_refused_paths_are_clear_errors_and_delete_nothing(
    store: DriveBackupStore, project: Path, drive: Path, make_path: object, expected: str
) -> None:
    assert store.backup(project / STUDY).ok
    (project.parent / "elsewhere").mkdir()
    (project.parent / "elsewhere" / "f.txt").write_text("x")
    before_backup, before_local = tree(drive), tree(project)
    path = make_path(project, drive)  # type: ignore[operator]
    for result in (store.backup(path), store.restore(path)):
        assert not result.ok
        assert result.action is BackupAction.ERROR
        assert expected in result.reason
        assert isinstance(result.error, BackupPathError)
        assert isinstance(result.error, ValueError)
        assert str(path) in str(result.error)
        with pytest.raises(BackupPathError, match=expected):
            result.raise_for_error()
    with pytest.raises(ValueError, match=expected):
        store.drive_path_for(path)
    assert tree(drive) == before_backup
    assert tree(project) == before_local


def test_missing_path_with_expect_file(store: DriveBackupStore, project: Path, drive: Path) -> None:
    result = store.backup(project / STUDY / "study.db", expect="file")
    assert not result.ok
    assert result.action is BackupAction.MISSING
    assert "does not exist (a file was expected)" in result.reason
    assert isinstance(result.error, BackupError)
    assert not drive.exists()


def test_file_where_a_folder_was_expected(
    store: DriveBackupStore, project: Path, drive: Path
) -> None:
    path = project / STUDY / "trial-0" / "metrics.json"
    assert store.backup(path).ok
    before = tree(drive)
    result = store.backup(path, expect="dir")
    assert not result.ok
    assert "is a file, but a folder was expected" in result.reason
    assert tree(drive) == before
    restored = store.restore(path, expect="dir")
    assert not restored.ok
    assert "is a file, but a folder was expected" in restored.reason


def test_bad_expect_is_a_value_error(store: DriveBackupStore, project: Path) -> None:
    with pytest.raises(ValueError, match="expect must be"):
        store.backup(project / STUDY, expect="folder")  # type: ignore[arg-type]


def test_backup_root_inside_the_outputs_is_refused(project: Path) -> None:
    with pytest.raises(BackupPathError, match="every backup would copy the previous ones"):
        DriveBackupStore(project, project / "outputs" / "backups")
    DriveBackupStore(project, project / "backups")  # outside the outputs: fine
    with pytest.raises(BackupPathError, match="every backup would copy"):
        DriveBackupStore(project, project / "backups", only_outputs=False)


def test_missing_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackupPathError, match="project root does not exist"):
        DriveBackupStore(tmp_path / "nope", tmp_path / "d")


# ---- backups -------------------------------------------------------------------------------


def test_folder_backup_is_incremental(store: DriveBackupStore, project: Path, drive: Path) -> None:
    first = store.backup(project / STUDY)
    assert (first.ok, first.action, first.copied, first.skipped) == (
        True,
        BackupAction.COPIED,
        3,
        0,
    )
    assert tree(drive / STUDY) == tree(project / STUDY)
    again = store.backup(project / STUDY)
    assert (again.action, again.copied, again.skipped) == (BackupAction.SKIPPED, 0, 3)
    (project / STUDY / "trial-1" / "metrics.json").write_text('{"f1": 0.9}\n')
    (project / STUDY / "trial-3").mkdir()
    (project / STUDY / "trial-3" / "metrics.json").write_text("{}\n")
    (project / STUDY / "trial-0" / "metrics.json").unlink()
    third = store.backup(project / STUDY)
    assert (third.action, third.copied, third.skipped, third.deleted) == (
        BackupAction.COPIED,
        2,
        1,
        1,
    )
    assert tree(drive / STUDY) == tree(project / STUDY)
    assert str(third).startswith("✓ [COPIED] study-1 -> study-1 (copied 2 file(s)")
    # nothing of the store's own bookkeeping is left behind but the manifest
    assert sorted(p.name for p in (drive / "outputs" / "hpo").iterdir()) == [
        ".study-1.mlinfra.json",
        "study-1",
    ]


def test_new_empty_folders_reach_the_backup_on_a_later_run(
    store: DriveBackupStore, project: Path, drive: Path
) -> None:
    assert store.backup(project / STUDY).ok
    (project / STUDY / "checkpoints" / "empty").mkdir(parents=True)
    (project / STUDY / "trial-1" / "metrics.json").write_text('{"f1": 0.5}\n')
    again = store.backup(project / STUDY)
    assert (again.action, again.copied) == (BackupAction.COPIED, 1)
    assert (drive / STUDY / "checkpoints" / "empty").is_dir()
    assert tree(drive / STUDY) == tree(project / STUDY)


def test_hash_compare_skips_a_rewrite_with_the_same_content(project: Path, drive: Path) -> None:
    path = project / STUDY / "trial-0" / "metrics.json"
    by_hash = DriveBackupStore(project, drive, compare="hash")
    assert by_hash.backup(path).action is BackupAction.COPIED
    age(path, 60)
    assert by_hash.backup(path).action is BackupAction.SKIPPED
    by_mtime = DriveBackupStore(project, drive)
    assert by_mtime.backup(path).action is BackupAction.COPIED


def test_dry_run_writes_nothing(project: Path, drive: Path) -> None:
    dry = DriveBackupStore(project, drive, dry_run=True)
    result = dry.backup(project / STUDY)
    assert (result.ok, result.dry_run, result.copied) == (True, True, 3)
    assert "dry run: would copy 3 file(s)" in result.reason
    assert not drive.exists()
    assert DriveBackupStore(project, drive).backup(project / STUDY).ok
    before = tree(drive)
    (project / STUDY / "trial-0" / "metrics.json").unlink()
    restore = dry.restore(project / STUDY)
    assert restore.ok and restore.dry_run and restore.copied == 3
    assert not (project / STUDY / "trial-0" / "metrics.json").exists()
    assert tree(drive) == before


def test_a_backup_in_wal_mode_sees_changes_only_in_the_wal(
    store: DriveBackupStore, project: Path, drive: Path
) -> None:
    db = project / "outputs" / "registry.db"
    keep = sqlite3.connect(db)  # an open connection keeps the -wal file from being checkpointed
    keep.execute("PRAGMA journal_mode=WAL")
    keep.execute("PRAGMA wal_autocheckpoint=0")
    keep.execute("CREATE TABLE t (v INTEGER)")
    keep.execute("INSERT INTO t VALUES (1)")
    keep.commit()
    try:
        first = store.backup(db)
        assert first.verified == ("registry.db: 1 tables, 1 rows",)
        size_before = db.stat().st_size
        keep.execute("INSERT INTO t VALUES (2)")
        keep.commit()
        assert db.stat().st_size == size_before  # the change is only in registry.db-wal
        second = store.backup(db)
        assert second.action is BackupAction.COPIED
        assert second.verified == ("registry.db: 1 tables, 2 rows",)
    finally:
        keep.close()
    copy = drive / "outputs" / "registry.db"
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    finally:
        conn.close()
    assert not Path(f"{copy}-wal").exists()


# ---- restores ------------------------------------------------------------------------------


def test_restore_round_trip_keeps_content_and_mtimes(
    store: DriveBackupStore, project: Path
) -> None:
    study = project / STUDY
    mtimes = {p: p.stat().st_mtime_ns for p in study.rglob("*.json")}
    content = tree(study)
    assert store.backup(study).ok
    for path in study.rglob("*.json"):
        path.write_text("local damage")
    result = store.restore(study)
    assert (result.ok, result.action, result.copied) == (True, BackupAction.COPIED, 3)
    assert tree(study) == content
    assert {p: p.stat().st_mtime_ns for p in study.rglob("*.json")} == mtimes
    assert [p.name for p in study.parent.iterdir()] == ["study-1"]  # no staging left


def test_restore_refuses_a_damaged_backup_and_keeps_the_local_copy(
    store: DriveBackupStore, project: Path, drive: Path
) -> None:
    study = project / STUDY
    assert store.backup(study).ok
    (drive / STUDY / "trial-2" / "metrics.json").write_text('{"f1": 0.7}\n')
    (study / "trial-2" / "metrics.json").write_text("newer local work")
    before = tree(study)
    result = store.restore(study)
    assert not result.ok
    assert "does not match its manifest" in result.reason
    assert "the local copy is untouched" in result.reason
    assert tree(study) == before
    assert sorted(p.name for p in study.parent.iterdir()) == ["study-1"]


def test_restore_without_a_backup_is_missing(store: DriveBackupStore, project: Path) -> None:
    result = store.restore(project / "outputs" / "nothing")
    assert (result.ok, result.action) == (False, BackupAction.MISSING)
    assert "has no backup" in result.reason
    assert not store.backup_exists(project / "outputs" / "nothing")
    assert not store.backup_exists(Path("/content/drive/x"))


def test_restore_refuses_a_local_path_of_the_other_kind(
    store: DriveBackupStore, project: Path
) -> None:
    study = project / STUDY
    assert store.backup(study).ok
    target = project / "outputs" / "hpo" / "study-2"
    target.write_text("a file")
    other = DriveBackupStore(project, store.backup_root)
    assert other.backup(target).ok
    target.unlink()
    target.mkdir()
    result = other.restore(target)
    assert not result.ok
    assert "is a folder, but its backup" in result.reason
    assert target.is_dir()


def test_ensure_local_restores_only_when_missing_or_older(
    store: DriveBackupStore, project: Path
) -> None:
    path = project / STUDY / "trial-0" / "metrics.json"
    first = path.read_text()
    none_yet = store.ensure_local(path)
    assert (none_yet.ok, none_yet.action, none_yet.reason) == (
        True,
        BackupAction.SKIPPED,
        "no backup yet",
    )
    assert store.backup(path).ok
    assert store.ensure_local(path).reason == "the local copy is up to date"
    path.write_text("newer local work")
    kept = store.ensure_local(path)
    assert kept.action is BackupAction.SKIPPED and "has work the backup does not" in kept.reason
    age(path, 3600)  # an older modification time (a clock stepped back) is not older content
    assert store.ensure_local(path).action is BackupAction.SKIPPED
    assert path.read_text() == "newer local work"
    assert store.backup(path).ok  # the backup moves on; this copy then goes back to a version
    path.write_text(first)  # the backup held before, as a VM disk from an earlier session would
    older = store.ensure_local(path)
    assert older.action is BackupAction.COPIED
    assert "the local copy was older than the backup" in older.reason
    assert path.read_text() == "newer local work"
    path.unlink()
    missing = store.ensure_local(path)
    assert "the local copy was missing" in missing.reason
    assert path.read_text() == "newer local work"
    assert store.ensure_local(path).reason == "the local copy is up to date"


def test_ensure_local_restores_a_folder_with_stale_or_missing_files_but_keeps_new_work(
    store: DriveBackupStore, project: Path
) -> None:
    folder = project / STUDY
    metrics = folder / "trial-0" / "metrics.json"
    first = metrics.read_text()
    assert store.backup(folder).ok
    metrics.write_text('{"f1": 0.5}\n')
    assert store.backup(folder).ok
    metrics.write_text(first)  # a version the backup held before
    other = next(p for p in sorted(folder.rglob("*")) if p.is_file() and p != metrics)
    other.unlink()
    restored = store.ensure_local(folder)
    assert restored.action is BackupAction.COPIED, restored.reason
    assert metrics.read_text() == '{"f1": 0.5}\n' and other.is_file()
    (folder / "new.txt").write_text("a file the backup never had")
    metrics.write_text(first)
    kept = store.ensure_local(folder)
    assert kept.action is BackupAction.SKIPPED and "new.txt" in kept.reason, kept.reason
    assert metrics.read_text() == first and (folder / "new.txt").is_file()


def test_a_file_backed_up_after_its_folder_still_restores(
    store: DriveBackupStore, project: Path
) -> None:
    study = project / STUDY
    assert store.backup(study).ok
    metrics = study / "trial-1" / "metrics.json"
    metrics.write_text('{"f1": 0.95}\n')
    assert store.backup(metrics).ok  # replaces the file inside the folder's backup
    metrics.write_text("lost")
    assert store.restore(study).ok
    assert metrics.read_text() == '{"f1": 0.95}\n'


def test_a_backup_without_manifest_restores(
    store: DriveBackupStore, project: Path, drive: Path
) -> None:
    legacy = drive / "outputs" / "old"
    legacy.mkdir(parents=True)
    (legacy / "a.txt").write_text("from the old system")
    result = store.restore(project / "outputs" / "old")
    assert result.ok
    assert "no mlinfra manifest" in result.reason
    assert (project / "outputs" / "old" / "a.txt").read_text() == "from the old system"


# ---- interrupted backups (in-process states; killed processes are in test_backup_kill) --


def test_uncommitted_staging_is_discarded(
    store: DriveBackupStore, project: Path, drive: Path
) -> None:
    study = project / STUDY
    assert store.backup(study).ok
    before = tree(drive)
    staging = drive / "outputs" / "hpo" / ".study-1.mlinfra-staging"
    (staging / "trial-0").mkdir(parents=True)
    (staging / "trial-0" / "metrics.json").write_text("half")
    assert store.restore(study).ok
    assert not staging.exists()
    assert tree(drive) == before


def test_committed_journal_is_finished_by_the_next_call(
    store: DriveBackupStore, project: Path, drive: Path
) -> None:
    study = project / STUDY
    assert store.backup(study).ok
    manifest_path = drive / "outputs" / "hpo" / ".study-1.mlinfra.json"
    manifest = json.loads(manifest_path.read_text())
    staging = drive / "outputs" / "hpo" / ".study-1.mlinfra-staging"
    (staging / "trial-0").mkdir(parents=True)
    (staging / "trial-0" / "metrics.json").write_text("new")
    import xxhash

    manifest["entries"]["trial-0/metrics.json"].update(
        size=3, xxh3=xxhash.xxh3_128(b"new").hexdigest()
    )
    journal = {
        "format": "mlinfra-backup",
        "manifest": manifest,
        "put": ["trial-0/metrics.json"],
        "delete": [],
    }
    (drive / "outputs" / "hpo" / ".study-1.mlinfra-journal.json").write_text(json.dumps(journal))
    assert store.restore(study).ok
    assert (study / "trial-0" / "metrics.json").read_text() == "new"
    assert not staging.exists()
    assert not (drive / "outputs" / "hpo" / ".study-1.mlinfra-journal.json").exists()


def test_a_foreign_manifest_is_refused(store: DriveBackupStore, project: Path, drive: Path) -> None:
    study = project / STUDY
    assert store.backup(study).ok
    (drive / "outputs" / "hpo" / ".study-1.mlinfra.json").write_text("{}")
    result = store.backup(study)
    assert not result.ok
    assert "is not an mlinfra backup manifest" in result.reason


# ---- callbacks -----------------------------------------------------------------------------


def test_callbacks_take_one_or_two_arguments(store: DriveBackupStore, project: Path) -> None:
    backup, restore = store.as_backup_callback(), store.as_restore_callback()
    study = project / STUDY
    assert backup(study) is True
    assert backup(study, is_directory=True) is True
    assert backup(study, is_directory=False) is False
    assert backup(os.fspath(project / "src" / "train.py")) is False
    (study / "trial-0" / "metrics.json").unlink()
    assert restore(study, is_directory=True) is True
    assert (study / "trial-0" / "metrics.json").exists()
