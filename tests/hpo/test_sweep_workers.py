"""``mlinfra hpo --workers 2`` on the default SQLite storage: two processes share one study.

The objective makes the first trial wait until a second trial has started, so both processes
really run trials at the same time; the budget must end exactly full (trials started after it was
spent are marked over budget and not counted), and SQLite lock contention must not reach the user.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
import pytest

from mlinfra.hpo.runner import trial_output_dir
from mlinfra.hpo.study import BUDGET_ATTR, FAILURE_ATTR, budget

MAX_TRIALS = 6
State = optuna.trial.TrialState


@pytest.mark.slow
def test_two_workers_fill_the_budget_exactly(hpo_project: Any) -> None:
    proc = hpo_project.cli(*hpo_project.hpo_args("overlapping", max_trials=MAX_TRIALS, workers=2))

    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "database is locked" not in output.lower()
    assert "Traceback" not in output
    assert f"{MAX_TRIALS}/{MAX_TRIALS} finished" in proc.stdout

    where = hpo_project.locate("overlapping", max_trials=MAX_TRIALS)
    study = hpo_project.study(where.storage_url, where.study_name)
    trials = study.get_trials()
    left = budget(study, MAX_TRIALS)
    assert (left.finished, left.running, left.failed) == (MAX_TRIALS, 0, 0)
    complete = [t for t in trials if t.state == State.COMPLETE]
    assert len(complete) == MAX_TRIALS
    for trial in trials:
        if trial.state != State.COMPLETE:  # only a trial that found the budget spent
            assert trial.state == State.FAIL, trial
            assert trial.user_attrs.get(BUDGET_ATTR) is True, trial.user_attrs
            assert FAILURE_ATTR not in trial.user_attrs

    # both processes ran trials
    records = [
        json.loads(
            (trial_output_dir(hpo_project.project(), where, t) / "result.json").read_text("utf-8")
        )
        for t in complete
    ]
    assert len({r["pid"] for r in records}) == 2, records

    runs = hpo_project.runs(hpo_project.experiment_of(study))
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in parents] == [study.user_attrs["mlflow_parent_run_id"]]
    children = hpo_project.children(runs, parents[0].info.run_id)
    assert len(children) == MAX_TRIALS == len(runs) - 1
    assert {t.user_attrs["mlflow_run_id"] for t in complete} == {r.info.run_id for r in children}
    assert all(r.info.status == "FINISHED" for r in children)
    assert len({r.info.run_name for r in children}) == MAX_TRIALS
