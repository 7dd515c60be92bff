"""SIGKILL during a folder backup (a real process, killed for real): the previous backup stays
intact and restorable, and a restore never gives a mix of two backups."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storage_helpers import tree

from mlinfra.storage import DriveBackupStore

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

# The child backs up the study folder. It marks a file once the upload has started, then goes
# on slowly (so the parent kills it while it uploads), or SIGKILLs itself after N renames into
# place (after the commit point).
_CHILD = """
import os, signal, sys, time
from pathlib import Path
from mlinfra.storage import DriveBackupStore

project, drive, marker, mode = sys.argv[1:5]
store = DriveBackupStore(project, drive)
upload, move = store._upload, store._move
count = {"up": 0, "mv": 0}

def slow_upload(local, loc):
    count["up"] += 1
    if count["up"] == 3:
        Path(marker).write_text("uploading")
    if mode == "upload" and count["up"] >= 3:
        time.sleep(0.2)
    return upload(local, loc)

def killing_move(src, dst):
    count["mv"] += 1
    move(src, dst)
    if mode == "move" and count["mv"] == 5:
        os.kill(os.getpid(), signal.SIGKILL)

store._upload = slow_upload
store._move = killing_move
store.backup(Path(project) / "outputs" / "hpo" / "study-1").raise_for_error()
print("finished")
"""


def _study(project: Path, content: str) -> Path:
    study = project / "outputs" / "hpo" / "study-1"
    for i in range(20):
        (study / f"trial-{i:02d}").mkdir(parents=True, exist_ok=True)
        (study / f"trial-{i:02d}" / "metrics.json").write_text(f"{content} {i}\n")
    return study


def _child(project: Path, drive: Path, marker: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(project), str(drive), str(marker), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_while_uploading_keeps_the_previous_backup(
    project: Path, drive: Path, tmp_path: Path
) -> None:
    study = _study(project, "v1")
    store = DriveBackupStore(project, drive)
    assert store.backup(study).ok
    v1 = tree(study)
    backup_before = tree(drive)
    _study(project, "v2")
    v2 = tree(study)
    marker = tmp_path / "marker"
    child = _child(project, drive, marker, "upload")
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child never started uploading"
        time.sleep(0.01)
    child.kill()  # SIGKILL
    child.communicate(timeout=30)  # also closes the pipes
    assert child.returncode == -signal.SIGKILL
    # the staged half-upload is there, but the backup itself and its manifest are untouched
    staging = drive / "outputs" / "hpo" / ".study-1.mlinfra-staging"
    assert staging.is_dir()
    assert {k: v for k, v in tree(drive).items() if ".mlinfra-staging" not in k} == backup_before
    # the previous backup restores
    for path in study.rglob("metrics.json"):
        path.write_text("lost")
    assert store.restore(study).raise_for_error().copied == len(v1)
    assert tree(study) == v1
    assert not staging.exists()
    # and a new backup after the crash completes
    _study(project, "v2")
    assert store.backup(study).raise_for_error().copied == 20
    for path in study.rglob("metrics.json"):
        path.unlink()
    assert store.restore(study).ok
    assert tree(study) == v2


def test_sigkill_after_the_commit_restores_the_new_backup_whole(
    project: Path, drive: Path, tmp_path: Path
) -> None:
    study = _study(project, "v1")
    store = DriveBackupStore(project, drive)
    assert store.backup(study).ok
    _study(project, "v2")
    v2 = tree(study)
    child = _child(project, drive, tmp_path / "marker", "move")
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err
    assert "finished" not in out
    journal = drive / "outputs" / "hpo" / ".study-1.mlinfra-journal.json"
    assert journal.exists()  # killed after the commit, with 5 of 20 files moved into place
    mixed = tree(drive / "outputs" / "hpo" / "study-1")
    assert sum(content.startswith(b"v2") for content in mixed.values()) == 5
    for path in study.rglob("metrics.json"):
        path.unlink()
    result = store.restore(study)
    assert result.ok, result.reason
    assert tree(study) == v2  # the new backup, whole: never a mix
    assert not journal.exists()
    assert store.backup(study).action.value == "skipped"
