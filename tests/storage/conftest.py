"""Fixtures for the storage tests: a project with outputs, a temporary folder standing in for
Google Drive, and small Optuna studies on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlinfra.storage import DriveBackupStore


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root holding ``outputs/hpo/study-1`` with a few trial files."""
    root = tmp_path / "project"
    study = root / "outputs" / "hpo" / "study-1"
    for i in range(3):
        (study / f"trial-{i}").mkdir(parents=True)
        (study / f"trial-{i}" / "metrics.json").write_text(f'{{"f1": 0.{i}}}\n')
    (root / "src").mkdir()
    (root / "src" / "train.py").write_text("print('hi')\n")
    return root


@pytest.fixture
def drive(tmp_path: Path) -> Path:
    """The folder that stands in for /content/drive/MyDrive/<project>."""
    return tmp_path / "MyDrive" / "project"


@pytest.fixture
def store(project: Path, drive: Path) -> DriveBackupStore:
    return DriveBackupStore(project, drive)
