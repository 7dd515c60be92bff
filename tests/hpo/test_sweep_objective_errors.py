"""Broken objectives: the trial fails with its reason, the sweep goes on or stops as configured.

Also pruning (pruned trials count toward the budget) and an objective that cannot be found.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from click.testing import CliRunner

from mlinfra.cli.main import cli
from mlinfra.errors import ConfigError
from mlinfra.hpo.runner import SweepError
from mlinfra.hpo.study import FAILURE_ATTR, budget

State = optuna.trial.TrialState
#: a sweep whose failures are never counted would run until its timeout: keep that short
SHORT_TIMEOUT = "hpo.sampling.timeout_minutes=0.03"


def _trials(hpo_project: Any, result: Any) -> list[Any]:
    trials: list[Any] = hpo_project.study(result.storage_url, result.study_name).get_trials()
    return trials


def test_raising_objective_fails_its_trial_and_the_sweep_goes_on(
    hpo_project: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = hpo_project.sweep("raises_once", max_trials=4)

    assert (result.finished, result.completed, result.failed) == (4, 3, 1)
    assert result.stopped is None
    trials = _trials(hpo_project, result)
    assert [t.state for t in trials] == [State.COMPLETE, State.FAIL, State.COMPLETE, State.COMPLETE]
    reason = trials[1].user_attrs[FAILURE_ATTR]
    assert "ValueError" in reason
    assert "objective exploded in trial 1" in reason
    err = capsys.readouterr().err
    assert "trial 1 failed" in err
    assert "Traceback (most recent call last)" in err
    assert "objective exploded in trial 1" in err
    # the failed trial's run is marked failed
    run = hpo_project.client().get_run(trials[1].user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED"


def test_on_trial_error_stop_raises_with_the_reason(hpo_project: Any) -> None:
    with pytest.raises(SweepError, match="objective exploded in trial 0") as caught:
        hpo_project.sweep("raises", "+hpo.on_trial_error=stop", max_trials=4)

    assert "on_trial_error" in str(caught.value)
    where = hpo_project.locate("raises", "+hpo.on_trial_error=stop", max_trials=4)
    trials = hpo_project.study(where.storage_url, where.study_name).get_trials()
    assert [t.state for t in trials] == [State.FAIL]


def test_on_trial_error_stop_exits_1_from_the_cli(hpo_project: Any) -> None:
    args = hpo_project.hpo_args("raises", "+hpo.on_trial_error=stop", max_trials=3)
    result = CliRunner().invoke(cli, ["hpo", "--no-progress", *args], catch_exceptions=False)

    assert result.exit_code == 1, result.output
    assert "on_trial_error is 'stop'" in result.stderr
    assert "objective exploded in trial 0" in result.stderr
    assert "Traceback" in result.stderr  # the objective's exception is shown, not swallowed


def test_max_failed_trials_stops_the_sweep(hpo_project: Any) -> None:
    result = hpo_project.sweep("raises", "+hpo.max_failed_trials=2", max_trials=5)

    assert result.stopped is not None
    assert "2 trials failed" in result.stopped
    assert "objective exploded" in result.stopped
    trials = _trials(hpo_project, result)
    assert [t.state for t in trials] == [State.FAIL, State.FAIL]
    assert all(FAILURE_ATTR in t.user_attrs for t in trials)
    assert (result.finished, result.failed) == (2, 2)


@pytest.mark.slow  # until the timeout with the bug
@pytest.mark.parametrize(
    ("objective", "words"),
    [("returns_nan", ("nan",)), ("returns_string", ("str", "'0.5'"))],
)
def test_non_number_result_fails_the_trial_with_a_reason(
    hpo_project: Any, objective: str, words: tuple[str, ...]
) -> None:
    result = hpo_project.sweep(objective, SHORT_TIMEOUT, max_trials=2)

    trials = _trials(hpo_project, result)
    assert len(trials) == 2  # the budget fills with failed trials, then the sweep ends
    assert all(t.state == State.FAIL for t in trials)
    for trial in trials:
        reason = trial.user_attrs.get(FAILURE_ATTR, "").lower()
        for word in words:
            assert word in reason, reason
    assert (result.finished, result.failed) == (2, 2)
    assert result.stopped is None


@pytest.mark.slow  # until the timeout with the bug
def test_nan_result_with_stop_raises(hpo_project: Any) -> None:
    with pytest.raises(SweepError, match="nan"):
        hpo_project.sweep("returns_nan", "+hpo.on_trial_error=stop", SHORT_TIMEOUT, max_trials=3)


def test_pruned_trials_count_toward_the_budget(hpo_project: Any) -> None:
    result = hpo_project.sweep(
        "prunable",
        "hpo.early_termination.policy=median",
        "+hpo.early_termination.startup_trials=1",
        max_trials=4,
    )

    assert (result.finished, result.completed, result.pruned, result.failed) == (4, 1, 3, 0)
    trials = _trials(hpo_project, result)
    assert [t.state for t in trials] == [State.COMPLETE] + [State.PRUNED] * 3
    study = hpo_project.study(result.storage_url, result.study_name)
    assert budget(study, 4).done
    for trial in trials[1:]:
        assert trial.intermediate_values == {0: -float(trial.number)}  # pruned at step 0
        run = hpo_project.client().get_run(trial.user_attrs["mlflow_run_id"])
        assert run.data.tags["mlinfra.trial_state"] == "PRUNED"
        assert run.info.status == "FINISHED"
    assert result.best_number == 0


@pytest.mark.parametrize(
    ("entrypoint", "words"),
    [
        ("no_such_module:objective", ("cannot import", "no_such_module")),
        ("sweep_objectives:missing", ("has no", "missing")),
    ],
)
def test_unusable_entrypoint_is_a_config_error(
    hpo_project: Any, entrypoint: str, words: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as caught:
        hpo_project.sweep("fast", f"++hpo.objective.entrypoint={entrypoint}")

    assert caught.value.key == "hpo.objective.entrypoint"
    for word in words:
        assert word in str(caught.value)
    assert hpo_project.all_runs() == []  # nothing tracked for a sweep that cannot start
