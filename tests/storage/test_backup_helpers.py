"""The specification's helpers: immediate backups, Optuna callbacks, HPO study backups, the
Colab store and the Drive mount (off Colab)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from storage_helpers import make_study

from mlinfra.errors import BackupError, BackupPathError, BackupWarning
from mlinfra.storage import (
    DriveBackupStore,
    backup_hpo_study_to_drive,
    create_colab_store,
    create_incremental_backup_callback,
    create_study_db_backup_callback,
    immediate_backup_if_needed,
    mount_colab_drive,
)

STUDY = "outputs/hpo/study-1"


def test_immediate_backup_skips_what_needs_no_backup(
    store: DriveBackupStore, project: Path, drive: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mlinfra.storage")
    study = project / STUDY
    assert immediate_backup_if_needed(study, None, is_directory=True) is False
    assert immediate_backup_if_needed(study, store, False, True) is False
    assert immediate_backup_if_needed(Path("/content/drive/MyDrive/x"), store) is False
    assert immediate_backup_if_needed(study / "study.db", store) is False
    assert "does not exist yet" in caplog.text
    assert not drive.exists()
    assert immediate_backup_if_needed(study, store, is_directory=True) is True
    assert (drive / STUDY / "trial-0" / "metrics.json").exists()


def test_immediate_backup_raises_or_warns(store: DriveBackupStore, project: Path) -> None:
    study = project / STUDY
    with pytest.raises(BackupError, match="is a folder, but a file was expected"):
        immediate_backup_if_needed(study, store)
    with pytest.raises(BackupPathError, match="not under the outputs folder"):
        immediate_backup_if_needed(project / "src" / "train.py", store)
    with pytest.warns(BackupWarning, match="is a folder, but a file was expected"):
        assert immediate_backup_if_needed(study, store, on_error="warn") is False
    failing = store.as_backup_callback()
    with pytest.raises(BackupError, match="the backup callback reported a failure"):
        immediate_backup_if_needed(study, failing, is_directory=False)
    assert immediate_backup_if_needed(study, failing, is_directory=True) is True


def test_study_db_callback_backs_up_every_n_finished_trials(
    store: DriveBackupStore, project: Path, drive: Path
) -> None:
    import optuna

    db = project / STUDY / "study.db"
    make_study(db, 0)
    callback = create_study_db_backup_callback(db, store, every_n_trials=2)
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 2:
            raise optuna.TrialPruned()
        return x

    study.optimize(objective, n_trials=5, callbacks=[callback])
    assert (callback.finished, callback.backups) == (5, 2)  # the pruned trial counts too
    backup = store.drive_path_for(db)
    from mlinfra.storage import verify_sqlite

    assert verify_sqlite(backup) == "optuna: 1 study, 4 trials"
    assert callback.backup_now() is True
    assert verify_sqlite(backup) == "optuna: 1 study, 5 trials"


def test_incremental_callback_stops_the_study_on_failure(project: Path, drive: Path) -> None:
    import optuna

    study_dir = project / STUDY
    store = DriveBackupStore(project, drive)
    callback = create_incremental_backup_callback(study_dir, store, True, is_directory=False)
    study = optuna.create_study()
    with pytest.raises(BackupError, match="is a folder, but a file was expected"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3, callbacks=[callback])
    assert len(study.trials) == 1  # recorded, then the failed backup stopped the study
    with pytest.raises(ValueError, match="every_n_trials"):
        create_incremental_backup_callback(study_dir, store, every_n_trials=0)


def test_backup_hpo_study(store: DriveBackupStore, project: Path, drive: Path) -> None:
    study_dir = project / STUDY
    make_study(study_dir / "study.db", 2)
    assert backup_hpo_study_to_drive(study_dir, store) is True
    assert (drive / STUDY / "study.db").exists()
    assert (drive / STUDY / "trial-2" / "metrics.json").exists()
    outside = project / "outputs" / "hpo" / "shared.db"
    make_study(outside, 1)
    assert backup_hpo_study_to_drive(study_dir, store.as_backup_callback(), study_db=outside)
    assert (drive / "outputs" / "hpo" / "shared.db").exists()
    assert backup_hpo_study_to_drive(study_dir, store, enabled=False) is False
    with pytest.raises(BackupError, match="study folder does not exist"):
        backup_hpo_study_to_drive(project / "outputs" / "hpo" / "nope", store)
    with pytest.warns(BackupWarning, match="study database does not exist"):
        missing = outside.with_name("x.db")
        assert not backup_hpo_study_to_drive(study_dir, store, study_db=missing, on_error="warn")


def test_mount_colab_drive_off_colab(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert mount_colab_drive(tmp_path / "drive", environ={}) is None
    assert "this is not Colab (platform: local)" in caplog.text
    (tmp_path / "drive" / "MyDrive").mkdir(parents=True)
    assert mount_colab_drive(tmp_path / "drive", environ={}) == tmp_path / "drive" / "MyDrive"


def test_create_colab_store(example_project: Path, tmp_path: Path) -> None:
    mount = tmp_path / "drive"
    with pytest.raises(BackupError, match="Google Drive is not mounted"):
        create_colab_store(example_project, mount_point=mount, environ={})
    (mount / "MyDrive").mkdir(parents=True)
    store = create_colab_store(example_project, mount_point=mount, environ={})
    assert store.backup_root == mount / "MyDrive" / "resume-ner"
    assert store.outputs_dir == example_project / "outputs"
    on_colab = create_colab_store(
        example_project, mount_point=mount, environ={"COLAB_RELEASE_TAG": "x"}
    )
    assert on_colab.outputs_dir == Path("/content/outputs")
    assert on_colab.drive_path_for("/content/outputs/hpo/a") == store.backup_root / "outputs/hpo/a"
