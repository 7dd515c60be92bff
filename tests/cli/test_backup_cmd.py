"""``mlinfra backup`` and ``mlinfra restore`` through click's test runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlinfra.cli.main import cli


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(example_project)
    for name in ("MLINFRA_PROJECT_ROOT", "MLINFRA_PLATFORM", "COLAB_GPU", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(name, raising=False)
    study = example_project / "outputs" / "hpo" / "study-1"
    study.mkdir(parents=True)
    (study / "a.json").write_text("1")
    (study / "b.json").write_text("2")
    return example_project.resolve()


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_backup_then_restore(project: Path, tmp_path: Path) -> None:
    root = str(tmp_path / "drive")
    result = _run("backup", "outputs/hpo/study-1", "--backup-root", root)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"copied: {project}/outputs/hpo/study-1 -> {root}/outputs/")
    assert "copied 2 file(s), 0 unchanged" in result.stdout
    again = _run("backup", "outputs/hpo/study-1", "--backup-root", root)
    assert "skipped:" in again.stdout and "unchanged since the last backup" in again.stdout
    up_to_date = _run("restore", "outputs/hpo/study-1", "--backup-root", root, "--if-needed")
    assert "(the local copy is up to date)" in up_to_date.stdout
    shutil.rmtree(project / "outputs/hpo/study-1")
    dry = _run("restore", "outputs/hpo/study-1", "--backup-root", root, "--dry-run")
    assert dry.exit_code == 0 and "would copy" in dry.stdout
    assert not (project / "outputs/hpo/study-1").exists()
    restored = _run("restore", "outputs/hpo/study-1", "--backup-root", root, "--if-needed")
    assert restored.exit_code == 0, restored.stderr
    assert "the local copy was missing: restored 2 file(s), verified" in restored.stdout
    assert (project / "outputs/hpo/study-1/a.json").read_text() == "1"


def test_failures_exit_1_and_name_the_path(project: Path, tmp_path: Path) -> None:
    root = str(tmp_path / "drive")
    result = _run(
        "backup", "outputs/hpo/study-1", "config/paths.yaml", "outputs/x.db", "--backup-root", root
    )
    assert result.exit_code == 1
    assert "copied:" in result.stdout  # the good path is still backed up
    assert f"error: {project}/config/paths.yaml: is not under the outputs folder" in result.stderr
    assert f"error: {project}/outputs/x.db: does not exist" in result.stderr
    assert "2 of 3 path(s) failed; previous copies are untouched" in result.stderr
    inside = _run("backup", f"{root}/outputs/hpo/study-1", "--backup-root", root)
    assert inside.exit_code == 1
    assert "is inside the backup root" in inside.stderr
    missing = _run("restore", "outputs/hpo/none", "--backup-root", root)
    assert missing.exit_code == 1 and "has no backup" in missing.stderr
    expect = _run("backup", "outputs/hpo/study-1", "--expect", "file", "--backup-root", root)
    assert expect.exit_code == 1 and "is a folder, but a file was expected" in expect.stderr


def test_default_root_is_drive_from_paths_yaml(project: Path) -> None:
    result = _run("backup", "outputs/hpo/study-1")
    assert result.exit_code == 1
    assert "/content/drive/MyDrive: Google Drive is not mounted here" in result.stderr
    assert "pass --backup-root" in result.stderr


def test_all_files_and_fsspec_url(project: Path) -> None:
    url = "memory://cli-test-backups"
    result = _run("backup", "config/paths.yaml", "--all-files", "--backup-root", url)
    assert result.exit_code == 0, result.stderr
    assert f"-> {url[:9]}/{url[9:]}/config/paths.yaml" in result.stdout
