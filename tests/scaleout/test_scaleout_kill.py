"""SIGKILL a worker in the middle of a trial: the other workers finish the budget, the orphaned
trial is failed by its missing heartbeat and re-queued with its parameters, nothing counts
twice. Two invocations (``--workers 2`` and ``--workers 1``) share the study on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import optuna
import pytest
from scaleout_support import load, trial_states

from mlinfra.hpo.study import BUDGET_ATTR, FAILURE_ATTR, budget

MAX_TRIALS = 10
HEARTBEAT = ("++hpo.storage.heartbeat_seconds=1", "++hpo.storage.grace_seconds=2")
State = optuna.trial.TrialState


@pytest.mark.slow
def test_a_killed_worker_loses_nothing_and_counts_nothing_twice(scaleout_project: Any) -> None:
    first = scaleout_project.start("hang_once", MAX_TRIALS, *HEARTBEAT, workers=2)
    second = scaleout_project.start("hang_once", MAX_TRIALS, *HEARTBEAT, workers=1)
    marker = scaleout_project.root / "markers" / "hung"
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)  # the marker's content is written just after it is created
    hung = json.loads(marker.read_text(encoding="utf-8"))
    os.kill(hung["pid"], signal.SIGKILL)

    # the invocation whose main process was not killed runs to the end of the budget
    survivors = [p for p in (first, second) if p.pid != hung["pid"]]
    codes = [scaleout_project.wait(p) for p in survivors]
    assert any(code == 0 for code, _ in codes), codes

    where = scaleout_project.locate("hang_once", MAX_TRIALS, *HEARTBEAT)
    study = load(where)
    trials = study.get_trials(deepcopy=False)
    left = budget(study, MAX_TRIALS)
    assert left.finished == MAX_TRIALS, trial_states(study)
    complete = [t for t in trials if t.state == State.COMPLETE]
    assert len(complete) == MAX_TRIALS
    killed = trials[hung["trial"]]
    assert killed.state == State.FAIL, trial_states(study)
    assert FAILURE_ATTR not in killed.user_attrs  # failed by its heartbeat, not counted
    # re-queued: a later trial ran the same parameters (and completed, or found the budget full)
    again = [t for t in trials if t.number > killed.number and t.params == killed.params]
    assert again, "the orphaned trial was not re-queued"
    for trial in trials:
        if trial.state == State.FAIL and trial.number != killed.number:
            assert trial.user_attrs.get(BUDGET_ATTR) is True, trial.user_attrs

    parents, children = scaleout_project.sweep_runs(where)
    assert len(parents) == 1
    finished_runs = {t.user_attrs["mlflow_run_id"] for t in complete}
    assert finished_runs <= {r.info.run_id for r in children}
    names = [r.info.run_name for r in children]
    assert len(names) == len(set(names)), sorted(names)
