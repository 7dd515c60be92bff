"""Four workers in two independent ``mlinfra hpo`` invocations (``--workers 2`` each, started at
once on an empty study, as two hosts would), study and registry on PostgreSQL, tracking on a
real ``mlflow server``."""

from __future__ import annotations

from typing import Any

import pytest
from scaleout_support import finished_trials, load, trial_states

from mlinfra.hpo.study import budget

MAX_TRIALS = 40


@pytest.mark.slow
def test_forty_trials_four_workers_two_invocations(scaleout_project: Any) -> None:
    first = scaleout_project.start("short", MAX_TRIALS, workers=2)
    second = scaleout_project.start("short", MAX_TRIALS, workers=2)
    code1, log1 = scaleout_project.wait(first)
    code2, log2 = scaleout_project.wait(second)
    assert (code1, code2) == (0, 0), log1 + log2
    assert "Traceback" not in log1 + log2

    where = scaleout_project.locate("short", MAX_TRIALS)
    assert where.storage_url.startswith("postgresql+psycopg://")
    study = load(where)
    left = budget(study, MAX_TRIALS)
    assert (left.finished, left.running, left.failed) == (MAX_TRIALS, 0, 0), trial_states(study)
    complete = finished_trials(study)
    assert len(complete) == MAX_TRIALS

    parents, children = scaleout_project.sweep_runs(where)
    assert len(parents) == 1, [p.info.run_name for p in parents]  # no parent-run race
    assert study.user_attrs["mlflow_parent_run_id"] == parents[0].info.run_id
    names = [r.info.run_name for r in children]
    assert len(children) == MAX_TRIALS == len(set(names)), sorted(names)
    # every trial's run is linked to its trial both ways
    by_id = {r.info.run_id: r for r in children}
    for trial in complete:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.info.run_name == trial.user_attrs["mlflow_run_name"]
        assert int(run.data.tags["code.hpo.trial_number"]) == trial.number, run.data.tags
