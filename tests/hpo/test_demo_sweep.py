"""`make demo`'s sweep on the example project: it completes, and a second run adds nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest

from mlinfra.config import Project
from mlinfra.hpo.runner import run_sweep

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "resume_ner"


@pytest.mark.slow
def test_demo_sweep_completes_and_a_second_run_adds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLINFRA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "resume_ner"
    shutil.copytree(
        EXAMPLE, root, ignore=shutil.ignore_patterns("outputs", "mlruns", "__pycache__", "dataset")
    )
    project = Project.discover(project=root, environ={})
    first = run_sweep(project, "resume_ner_baseline", stage="demo")
    assert (first.finished, first.completed + first.pruned, first.new_trials) == (12, 12, 12)
    assert first.best_value is not None and 0.3 < first.best_value <= 1.0
    assert first.refit_run_name is not None

    client = mlflow.MlflowClient(tracking_uri=first.tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = {r.info.run_id for r in client.search_runs(experiments)}

    again = run_sweep(project, "resume_ner_baseline", stage="demo")
    assert again.new_trials == 0
    assert (again.best_number, again.best_value) == (first.best_number, first.best_value)
    assert (again.parent_run_id, again.refit_run_name) == (
        first.parent_run_id,
        first.refit_run_name,
    )
    assert {r.info.run_id for r in client.search_runs(experiments)} == runs
