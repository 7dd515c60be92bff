"""FsspecBackupStore: the same guarantees on an fsspec target (memory://, file://)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from storage_helpers import count_trials, make_study, tree

from mlinfra.errors import MissingDependencyError
from mlinfra.storage import BackupAction, FsspecBackupStore

STUDY = "outputs/hpo/study-1"


def test_memory_round_trip_is_incremental_and_verified(project: Path) -> None:
    url = f"memory://bk-{uuid.uuid4().hex}"
    store = FsspecBackupStore(project, url)
    study = project / STUDY
    make_study(study / "study.db", 2)
    first = store.backup(study)
    assert (first.action, first.copied) == (BackupAction.COPIED, 4)
    assert first.verified == ("study.db: optuna: 1 study, 2 trials",)
    assert store.backup_path_for(study) == f"memory:///{url[9:]}/{STUDY}"
    (study / "trial-0" / "metrics.json").write_text("changed")
    assert store.backup(study).copied == 1
    content = tree(study)
    (study / "trial-0" / "metrics.json").unlink()
    (study / "study.db").unlink()
    restored = store.restore(study)
    assert restored.ok, restored.reason
    assert restored.verified == ("study.db: optuna: 1 study, 2 trials",)
    content.pop("study.db")  # a snapshot: the same database, not the same bytes
    assert {k: v for k, v in tree(study).items() if k != "study.db"} == content
    assert count_trials(study / "study.db") == 2
    assert not any(".mlinfra" in p for p in store.fs.find(store._loc(STUDY)))


def test_file_url_refuses_paths_inside_its_root(project: Path, tmp_path: Path) -> None:
    root = tmp_path / "bk"
    store = FsspecBackupStore(project, f"file://{root}")
    assert store.backup(project / STUDY).ok
    inside = store.backup(root / STUDY)
    assert not inside.ok
    assert "is inside the backup root" in inside.reason
    assert tree(root / STUDY) == tree(project / STUDY)


def test_a_missing_protocol_package_names_it(project: Path) -> None:
    with pytest.raises(MissingDependencyError, match="s3fs"):
        FsspecBackupStore(project, "s3://bucket/project")
