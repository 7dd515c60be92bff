"""The MLflow server stops answering for a few seconds in the middle of a sweep (SIGSTOP of its
process group, then SIGCONT): the workers' requests wait (MLflow's client retries and times out
only after MLFLOW_HTTP_REQUEST_TIMEOUT) and the sweep completes; every finished trial has its
run, and ``mlinfra doctor --study`` reports a gap when a run is missing."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from click.testing import CliRunner
from scaleout_support import finished_trials, load

from mlinfra.cli.main import cli
from mlinfra.hpo.study import budget

MAX_TRIALS = 10


@pytest.mark.slow
def test_a_paused_server_delays_the_sweep_and_loses_no_run(
    scaleout_project: Any, scaleout_server: Any
) -> None:
    proc = scaleout_project.start("paced", MAX_TRIALS, workers=2)
    markers = scaleout_project.root / "markers"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(markers.glob("trial-*"))) < 3:
        time.sleep(0.05)
    os.killpg(scaleout_server.pid, signal.SIGSTOP)
    try:
        time.sleep(4)
    finally:
        os.killpg(scaleout_server.pid, signal.SIGCONT)
    code, log = scaleout_project.wait(proc)
    assert code == 0, log

    where = scaleout_project.locate("paced", MAX_TRIALS)
    study = load(where)
    assert budget(study, MAX_TRIALS).finished == MAX_TRIALS
    complete = finished_trials(study)
    _, children = scaleout_project.sweep_runs(where)
    assert {t.user_attrs["mlflow_run_id"] for t in complete} <= {r.info.run_id for r in children}

    args = ["doctor", "--project", str(scaleout_project.root), "--study", "-e"]
    args += ["resume_ner_baseline", "-s", "smoke", *scaleout_project.overrides("paced", 10)]
    env = scaleout_project.env()
    result = CliRunner(env=env).invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"all {MAX_TRIALS} finished trials have their MLflow run" in result.output

    # a finished trial whose run is gone is reported as a gap
    from mlflow import MlflowClient

    MlflowClient(scaleout_project.tracking_uri).delete_run(complete[0].user_attrs["mlflow_run_id"])
    result = CliRunner(env=env).invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "1 finished trials have no MLflow run" in result.output
