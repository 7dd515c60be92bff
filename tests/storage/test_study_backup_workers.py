"""Back up ``study.db`` after every trial while two Optuna worker processes write to it: every
backup opens and passes the checks, and restoring the last one resumes the study."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from storage_helpers import count_trials, make_study

from mlinfra.storage import DriveBackupStore, verify_sqlite

TRIALS_PER_WORKER = 6

_WORKER = """
import shutil, sys, time
from pathlib import Path
import optuna
from mlinfra.storage import DriveBackupStore, create_study_db_backup_callback

project, drive, checks, tag, n_trials = sys.argv[1:6]
optuna.logging.set_verbosity(optuna.logging.WARNING)
db = Path(project) / "outputs" / "hpo" / "study-1" / "study.db"
store = DriveBackupStore(project, drive)
backup = create_study_db_backup_callback(db, store)
kept = []

def backup_and_keep(study, trial):
    backup(study, trial)
    # what the backup holds right now (a closed file that is only ever replaced by a rename)
    kept.append(Path(checks) / f"{tag}-{len(kept):03d}.db")
    shutil.copyfile(store.drive_path_for(db), kept[-1])

def objective(trial):
    time.sleep(0.02)
    return trial.suggest_float("x", -1.0, 1.0) ** 2

storage = optuna.storages.RDBStorage(
    f"sqlite:///{db}", engine_kwargs={"connect_args": {"timeout": 60}}
)
study = optuna.load_study(study_name="s", storage=storage)
study.optimize(objective, n_trials=int(n_trials), callbacks=[backup_and_keep])
assert backup.backups == int(n_trials), backup.backups
"""


@pytest.mark.slow
def test_study_db_backups_under_two_writers_are_consistent_and_resume(
    project: Path, drive: Path, tmp_path: Path
) -> None:
    db = project / "outputs" / "hpo" / "study-1" / "study.db"
    make_study(db, 0)
    checks = tmp_path / "checks"
    checks.mkdir()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                str(project),
                str(drive),
                str(checks),
                tag,
                str(TRIALS_PER_WORKER),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=100)
        assert worker.returncode == 0, err
    copies = sorted(checks.iterdir())
    assert len(copies) == 2 * TRIALS_PER_WORKER
    for copy in copies:
        conn = sqlite3.connect(copy)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            rows = conn.execute("SELECT count(*) FROM trials").fetchone()[0]
        finally:
            conn.close()
        assert 1 <= rows <= 2 * TRIALS_PER_WORKER
        assert verify_sqlite(copy) == f"optuna: 1 study, {rows} trials"
    # the session is lost: restore the study from the backup and resume it
    db.unlink()
    store = DriveBackupStore(project, drive)
    restored = store.restore(db, expect="file")
    assert restored.ok, restored.reason
    assert restored.verified == (f"study.db: optuna: 1 study, {2 * TRIALS_PER_WORKER} trials",)
    assert count_trials(db) == 2 * TRIALS_PER_WORKER
    make_study(db, 2)
    assert count_trials(db) == 2 * TRIALS_PER_WORKER + 2
