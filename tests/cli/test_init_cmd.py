"""``mlinfra init``: the new project validates, sweeps and reports as made; init never overwrites
a file and leaves nothing behind when it fails."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import mlinfra.scaffold as scaffold
from mlinfra.cli import config_cmd, init_cmd, report_cmd
from mlinfra.config import Project
from mlinfra.hpo.runner import run_sweep
from mlinfra.scaffold import ScaffoldError, scaffold_project


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No tracking or project variables from the shell; the working directory is tmp_path; the
    project's package, imported by a sweep, is forgotten afterwards."""
    for name in list(os.environ):
        if name.startswith(("MLINFRA_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the sweep puts the project on it
    yield
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


def test_new_project_validates_sweeps_and_reports(tmp_path: Path) -> None:
    result = CliRunner().invoke(init_cmd.init, ["fresh-start"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "fresh-start"
    expected = {
        ".gitignore",
        "README.md",
        "config/paths.yaml",
        "config/naming.yaml",
        "config/tags.yaml",
        "config/mlflow.yaml",
        "config/experiment/fresh_start.yaml",
        "config/data/sample.yaml",
        "config/model/baseline.yaml",
        "config/train.yaml",
        "config/hpo/default.yaml",
        "config/env/local.yaml",
        "fresh_start/__init__.py",
        "fresh_start/objective.py",
        "data/sample.csv",
    }
    assert {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} == expected
    for rel in expected:
        assert f"  {rel}\n" in result.output
    for command in ("mlinfra config validate", "mlinfra hpo -s smoke", "mlinfra report"):
        assert command in result.output
        assert command in (root / "README.md").read_text(encoding="utf-8")
    assert "entrypoint: fresh_start.objective:objective" in (
        root / "config/hpo/default.yaml"
    ).read_text(encoding="utf-8")

    valid = CliRunner().invoke(config_cmd.config, ["validate", "--project", str(root)])
    assert valid.exit_code == 0, valid.stderr
    assert "OK: 10 files and 1 experiment(s)" in valid.output

    sweep = run_sweep(Project.discover(project=root), "fresh_start", stage="smoke")
    assert (sweep.finished, sweep.completed, sweep.failed) == (3, 3, 0)
    assert sweep.best_number is not None and sweep.best_value is not None
    assert sweep.best_value >= 0  # a sum of squares
    assert (Path(str(sweep.best_output_dir)) / "metrics.json").is_file()

    report = CliRunner().invoke(report_cmd.report, ["--project", str(root), "-s", "smoke"])
    assert report.exit_code == 0, report.stderr
    path = Path(report.stdout.strip())
    assert path == sweep.study_dir / "report.html"
    html = path.read_text(encoding="utf-8")
    assert sweep.study_name in html and "plotly" in html
    assert f"<th>best trial</th><td>#{sweep.best_number}</td>" in html
    assert str(sweep.best_run_name) in html


def test_non_empty_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    result = CliRunner().invoke(init_cmd.init, [str(target), "--name", "busy"])
    assert result.exit_code == 1
    assert "is not empty" in result.stderr and "--force" in result.stderr
    assert _tree(target) == {"notes.txt": b"mine\n"}


def test_force_adds_to_a_folder_and_keeps_readme(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    (target / "README.md").write_text("my own readme\n")
    (target / "notes.txt").write_text("mine\n")
    result = CliRunner().invoke(init_cmd.init, [str(target), "--force"])
    assert result.exit_code == 0, result.stderr
    assert "README.md (already there, kept)" in result.output
    assert (target / "README.md").read_text() == "my own readme\n"
    assert (target / "notes.txt").read_text() == "mine\n"
    assert (target / "config" / "experiment" / "repo.yaml").is_file()


def test_force_never_overwrites_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "half"
    (target / "config" / "hpo").mkdir(parents=True)
    (target / "config" / "hpo" / "default.yaml").write_text("search_space: {}\n")
    before = _tree(target)
    result = CliRunner().invoke(init_cmd.init, [str(target), "--force"])
    assert result.exit_code == 1
    assert "config/hpo/default.yaml" in result.stderr and "nothing was written" in result.stderr
    assert _tree(target) == before


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("2fast", "starting with a letter"),
        ("my project", "use letters, digits"),
        ("a/b", "use letters, digits"),
        ("class", "keyword"),
        ("json", "would clash"),
        ("mlinfra", "would clash"),
    ],
)
def test_bad_names_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    result = CliRunner().invoke(init_cmd.init, [str(tmp_path / "new"), "--name", name])
    assert result.exit_code == 1
    assert "invalid project name" in result.stderr and reason in result.stderr
    assert not (tmp_path / "new").exists()


def test_folder_name_gives_the_default_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(init_cmd.init, ["9lives"])
    assert result.exit_code == 1 and "--name" in result.stderr
    assert not (tmp_path / "9lives").exists()
    ok = scaffold_project(tmp_path / "Data-Lab")
    assert (ok.name, ok.package, ok.experiment) == ("Data-Lab", "data_lab", "data_lab")
    assert "project:\n  name: Data-Lab\n" in (ok.root / "config/paths.yaml").read_text()


def test_a_file_as_target_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ScaffoldError, match="is a file"):
        scaffold_project(tmp_path / "file", "proj")


def test_failure_half_way_removes_only_what_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "mixed"
    (target / "config").mkdir(parents=True)  # existed before: must survive the rollback
    (target / "README.md").write_text("keep me\n")
    before = _tree(target)
    real = scaffold._create_new
    written: list[Path] = []

    def flaky(path: Path, text: str) -> None:
        if len(written) == 6:
            raise OSError(28, "No space left on device")
        real(path, text)
        written.append(path)

    monkeypatch.setattr(scaffold, "_create_new", flaky)
    with pytest.raises(OSError, match="No space left"):
        scaffold_project(target, "mixed", force=True)
    assert len(written) == 6 and not any(p.exists() for p in written)
    assert _tree(target) == before


def test_existing_file_is_never_replaced_even_in_a_race(tmp_path: Path) -> None:
    target = tmp_path / "race"
    target.mkdir()
    path = target / "taken.txt"
    path.write_text("first\n")
    with pytest.raises(ScaffoldError, match="appeared while"):
        scaffold._create_new(path, "second\n")
    assert path.read_text() == "first\n"
    assert sorted(p.name for p in target.iterdir()) == ["taken.txt"]  # no temporary file left
