"""``mlinfra report``: prints the report's path; refuses, creating nothing, before any sweep."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from mlinfra.cli import report_cmd
from mlinfra.config import Project
from mlinfra.hpo.runner import StudyLocation, locate_study

EXPERIMENT = "resume_ner_baseline"


@pytest.fixture
def where(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> StudyLocation:
    """Where the example's ``smoke`` study is; the environment cannot move it."""
    for name in list(os.environ):
        if name.startswith(("MLINFRA_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("HPO_MAX_TRIALS", raising=False)
    monkeypatch.chdir(example_project)
    return locate_study(Project.discover(project=example_project), EXPERIMENT, stage="smoke")


def _make_study(where: StudyLocation, states: list[TrialState]) -> None:
    where.study_dir.mkdir(parents=True)
    storage = optuna.storages.RDBStorage(where.storage_url)
    try:
        study = optuna.create_study(
            storage=storage, study_name=where.study_name, direction="maximize"
        )
        for number, state in enumerate(states):
            study.add_trial(
                create_trial(
                    state=state,
                    value=float(number) if state == TrialState.COMPLETE else None,
                    params={"learning_rate": 1e-5 * (number + 1), "batch_size": 4},
                    distributions={
                        "learning_rate": FloatDistribution(1e-5, 5e-5, log=True),
                        "batch_size": CategoricalDistribution([4]),
                    },
                    user_attrs={"mlflow_run_name": f"run_t{number:02d}"},
                )
            )
    finally:
        storage.remove_session()
        storage.engine.dispose()


def test_prints_the_path_of_the_report(where: StudyLocation) -> None:
    _make_study(where, [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL])
    result = CliRunner().invoke(report_cmd.report, ["-e", EXPERIMENT, "-s", "smoke"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{where.study_dir / 'report.html'}\n"
    html = (where.study_dir / "report.html").read_text(encoding="utf-8")
    assert where.study_name in html and "run_t01" in html


def test_output_option(where: StudyLocation, tmp_path: Path) -> None:
    _make_study(where, [TrialState.COMPLETE])
    target = tmp_path / "out" / "r.html"
    result = CliRunner().invoke(report_cmd.report, ["-s", "smoke", "-o", str(target)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{target}\n" and target.is_file()
    assert not (where.study_dir / "report.html").exists()


def test_before_any_sweep_exits_1_and_creates_nothing(where: StudyLocation) -> None:
    result = CliRunner().invoke(report_cmd.report, ["-s", "smoke"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"error: no study yet at {where.study_dir}; run `mlinfra hpo` first" in result.stderr
    assert not where.study_dir.exists()
    assert not (where.study_dir / "study.db").exists()


def test_no_completed_trial_exits_1(where: StudyLocation) -> None:
    _make_study(where, [TrialState.FAIL])
    result = CliRunner().invoke(report_cmd.report, ["-s", "smoke"])
    assert result.exit_code == 1
    assert "has no completed trial yet (1 fail)" in result.stderr
    assert not (where.study_dir / "report.html").exists()


def test_overrides_locate_another_study(where: StudyLocation) -> None:
    _make_study(where, [TrialState.COMPLETE])
    result = CliRunner().invoke(
        report_cmd.report, ["-s", "smoke", "hpo.search_space.learning_rate.max=1e-4"]
    )
    assert result.exit_code == 1  # another study key: no such study yet
    assert "no study yet at" in result.stderr
    assert str(where.study_dir) not in result.stderr
