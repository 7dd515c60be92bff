"""SIGKILL ``mlinfra hpo`` in the middle of a trial, run it again: the sweep resumes.

The killed trial is left RUNNING in the study; the rerun (heartbeat 1 s, grace 2 s; in this
process, started before the grace period is over) runs a new trial, fails the killed one as stale,
re-queues it with its params and finishes it once, and the budget ends exactly full.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from mlinfra.hpo.study import FAILURE_ATTR, budget

MAX_TRIALS = 4
KILLED = 2  # the third trial
HEARTBEAT = ("+hpo.storage.heartbeat_seconds=1", "+hpo.storage.grace_seconds=2")
State = optuna.trial.TrialState


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"mlinfra hpo exited ({proc.returncode}) first:\n{log.read_text()}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"no {path.name} after {timeout:.0f} s:\n{log.read_text()}")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_mid_trial_then_resume(hpo_project: Any) -> None:
    root = hpo_project.root
    args = hpo_project.hpo_args("slow", *HEARTBEAT, max_trials=MAX_TRIALS)
    (root / "hang_from").write_text(str(KILLED), encoding="utf-8")
    log = root.parent / "first.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(hpo_project.cli_path), "hpo", "--no-progress", *args],
            cwd=root,
            env=hpo_project.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        marker = root / "markers" / f"trial-{KILLED}.started"
        _wait_for(marker, proc, log)
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    killed_params = json.loads(marker.read_text(encoding="utf-8"))["params"]

    where = hpo_project.locate("slow", *HEARTBEAT, max_trials=MAX_TRIALS)
    study = hpo_project.study(where.storage_url, where.study_name)
    states = [t.state for t in study.get_trials()]
    assert states == [State.COMPLETE, State.COMPLETE, State.RUNNING], log.read_text()
    runs_before = hpo_project.runs(hpo_project.experiment_of(study))
    parent_id = study.user_attrs["mlflow_parent_run_id"]
    assert len(hpo_project.children(runs_before, parent_id)) == KILLED + 1

    (root / "hang_from").unlink()
    again = hpo_project.sweep("slow", *HEARTBEAT, max_trials=MAX_TRIALS)  # in process

    assert (again.finished, again.completed, again.failed) == (MAX_TRIALS, MAX_TRIALS, 0)
    assert again.new_trials == 2  # one new trial and the retry of the killed one
    assert again.stopped is None
    assert again.parent_run_id == study.user_attrs["mlflow_parent_run_id"]
    study = hpo_project.study(where.storage_url, where.study_name)
    trials = study.get_trials()
    left = budget(study, MAX_TRIALS)
    assert (left.finished, left.running, left.failed) == (MAX_TRIALS, 0, 0)
    assert not [t.number for t in trials if t.state in (State.RUNNING, State.WAITING)]
    complete = [t for t in trials if t.state == State.COMPLETE]
    assert len(complete) == MAX_TRIALS
    assert len(trials) == MAX_TRIALS + 1  # the killed one stays FAIL, not counted

    killed = trials[KILLED]
    assert killed.state == State.FAIL
    assert FAILURE_ATTR not in killed.user_attrs
    assert killed.params == killed_params
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == KILLED]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state == State.COMPLETE
    assert retry.params == killed_params
    # the objective really ran for the retry, once, with the killed trial's params
    started = sorted(p.name for p in (root / "markers").iterdir())
    assert started == sorted(f"trial-{t.number}.started" for t in trials)

    # one parent run; one finished child run per finished trial, unique names
    runs = hpo_project.runs(hpo_project.experiment_of(study))
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in parents] == [parent_id]
    assert parents[0].info.status == "FINISHED"
    children = hpo_project.children(runs, parent_id)
    assert len(children) == MAX_TRIALS == len(runs) - 1
    assert len({r.info.run_name for r in children}) == MAX_TRIALS
    assert all(r.info.status == "FINISHED" for r in children)
    assert {t.user_attrs["mlflow_run_id"] for t in complete} == {r.info.run_id for r in children}
    # the killed trial's run was found again, not duplicated
    assert retry.user_attrs["mlflow_run_id"] == killed.user_attrs["mlflow_run_id"]
