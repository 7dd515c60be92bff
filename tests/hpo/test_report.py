"""``mlinfra.hpo.report``: the HTML report of a study, and its refusals (which create nothing).

The studies are written with Optuna directly at the place ``locate_study`` finds for the example
project's ``smoke`` stage, so no objective or MLflow run is needed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from mlinfra.config import Project
from mlinfra.errors import MissingDependencyError
from mlinfra.hpo.report import (
    NoStudyError,
    ReportError,
    load_existing_study,
    render_report,
    write_report,
)
from mlinfra.hpo.runner import StudyLocation, locate_study, trial_output_dir

EXPERIMENT = "resume_ner_baseline"
DISTRIBUTIONS = {
    "learning_rate": FloatDistribution(1e-5, 5e-5, log=True),
    "batch_size": CategoricalDistribution([4]),
}


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in list(os.environ):
        if name.startswith(("MLINFRA_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("HPO_MAX_TRIALS", raising=False)
    return Project.discover(project=example_project)


@pytest.fixture
def where(project: Project) -> StudyLocation:
    return locate_study(project, EXPERIMENT, stage="smoke")


@contextmanager
def _study(where: StudyLocation) -> Iterator[Any]:
    """The study at ``where`` (created), its storage closed on exit."""
    where.study_dir.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(where.storage_url)
    try:
        yield optuna.create_study(
            storage=storage, study_name=where.study_name, direction="maximize", load_if_exists=True
        )
    finally:
        storage.remove_session()
        storage.engine.dispose()


def _add(
    study: Any,
    lrs: Sequence[float],
    *,
    state: TrialState = TrialState.COMPLETE,
    steps: int = 0,
    run_name: str | None = None,
) -> None:
    for lr in lrs:
        value = 0.5 + lr * 1e4 if state == TrialState.COMPLETE else None
        number = len(study.get_trials(deepcopy=False))
        study.add_trial(
            create_trial(
                state=state,
                value=value,
                params={"learning_rate": lr, "batch_size": 4},
                distributions=DISTRIBUTIONS,
                intermediate_values={s: 0.1 * (s + 1) for s in range(steps)},
                user_attrs={
                    "mlflow_run_name": run_name or f"local_trial_t{number:02d}",
                    "output_dir": f"/outputs/trial-{number}",
                },
            )
        )


def test_report_of_a_study(where: StudyLocation, project: Project) -> None:
    with _study(where) as study:
        _add(study, [1e-5, 4e-5, 2e-5, 3e-5], steps=3)  # the best is trial 1 (maximize)
        _add(study, [1.5e-5], state=TrialState.PRUNED)
        _add(study, [2.5e-5], state=TrialState.FAIL)
    path = write_report(project, EXPERIMENT, stage="smoke")
    assert path == where.study_dir / "report.html"
    html = path.read_text(encoding="utf-8")
    assert where.study_name in html
    assert html.count("plotly.js v") == 1  # the library once, so the file opens offline
    charts = [
        "Optimisation history",
        "Parameter importances",
        "Parallel coordinates",
        "Slices",
        "Intermediate values",
    ]
    for title in charts:
        assert f"<h2>{title}</h2>" in html
    assert html.count("Plotly.newPlot") == len(charts)
    assert "<th>best trial</th><td>#1</td>" in html
    with _study(where) as study:
        best_dir = trial_output_dir(project, where, study.best_trial)
    assert "local_trial_t01" in html and str(best_dir) in html  # folder from the identity
    assert "6 (4 complete, 1 fail, 1 pruned)" in html
    assert '<tr class="best"><td>1</td>' in html
    assert "<th>macro-f1</th>" in html  # the metric heads the value column
    assert not list(where.study_dir.glob(".report.html.*"))  # the atomic write's temp is gone


def test_no_study_creates_nothing(where: StudyLocation, project: Project) -> None:
    with pytest.raises(NoStudyError, match=r"no study yet at .*; run `mlinfra hpo` first"):
        write_report(project, EXPERIMENT, stage="smoke")
    assert not where.study_dir.exists()


def test_empty_database_file_is_not_initialised(where: StudyLocation, project: Project) -> None:
    where.study_dir.mkdir(parents=True)
    db = where.study_dir / "study.db"
    db.touch()
    with pytest.raises(NoStudyError, match="holds no Optuna study"):
        write_report(project, EXPERIMENT, stage="smoke")
    assert db.stat().st_size == 0
    assert sorted(p.name for p in where.study_dir.iterdir()) == ["study.db"]


def test_another_study_in_the_storage_is_not_created(
    where: StudyLocation, project: Project
) -> None:
    with _study(replace(where, study_name="someone-else")) as other:
        _add(other, [1e-5])
    with pytest.raises(NoStudyError, match=f"no study named '{where.study_name}'"):
        write_report(project, EXPERIMENT, stage="smoke")
    names = optuna.get_all_study_names(storage=where.storage_url)
    assert names == ["someone-else"]


def test_no_completed_trial_is_refused(where: StudyLocation, project: Project) -> None:
    with _study(where) as study:
        _add(study, [1e-5], state=TrialState.PRUNED)
        _add(study, [2e-5], state=TrialState.FAIL)
    with pytest.raises(ReportError, match=r"no completed trial yet \(1 fail, 1 pruned\)"):
        write_report(project, EXPERIMENT, stage="smoke")
    assert not (where.study_dir / "report.html").exists()


def test_one_completed_trial_skips_importances(where: StudyLocation, project: Project) -> None:
    with _study(where) as study:
        _add(study, [2e-5])
    html = write_report(project, EXPERIMENT, stage="smoke").read_text(encoding="utf-8")
    assert "<h2>Parameter importances</h2>" not in html
    assert "Parameter importances: skipped, they need at least 2 completed trials" in html
    assert "<h2>Optimisation history</h2>" in html and "<h2>Slices</h2>" in html
    assert "<h2>Intermediate values</h2>" not in html  # no trial reported any


def test_params_that_never_vary_skip_importances(where: StudyLocation, project: Project) -> None:
    with _study(where) as study:
        _add(study, [2e-5, 2e-5])
    html = write_report(project, EXPERIMENT, stage="smoke").read_text(encoding="utf-8")
    assert "<h2>Parameter importances</h2>" not in html
    assert "no parameter takes two values among the completed trials" in html


def test_output_path_and_escaping(where: StudyLocation, project: Project, tmp_path: Path) -> None:
    with _study(where) as study:
        _add(study, [1e-5, 2e-5], run_name="<script>alert(1)</script>")
    target = tmp_path / "reports" / "sweep.html"
    assert write_report(project, EXPERIMENT, stage="smoke", output=target) == target
    assert not (where.study_dir / "report.html").exists()
    html = target.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_storage_password_is_hidden(where: StudyLocation) -> None:
    with _study(where) as study:
        _add(study, [1e-5, 2e-5])
    shown = replace(where, storage_url="postgresql://sweeper:s3cret@db.example/optuna")
    with load_existing_study(where.storage_url, where.study_name) as study:
        html = render_report(shown, study, EXPERIMENT)
    assert "s3cret" not in html
    assert "postgresql://sweeper:***@db.example/optuna" in html


def test_missing_plotly_names_the_extra(
    where: StudyLocation, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)  # makes `import plotly` fail
    with pytest.raises(MissingDependencyError, match=r"mlinfra\[report\]"):
        write_report(project, EXPERIMENT, stage="smoke")
