"""The budget (``budget``, ``over_budget``) on real Optuna studies, in memory and in SQLite.

What counts as finished: completed and pruned trials, and trials the objective failed (user attr
``mlinfra_failure``). A trial failed because its worker died (stale heartbeat) does not count,
nor does one that found the budget spent (``mlinfra_over_budget``); running trials count toward
``taken`` and toward the trials "before" a new one in ``over_budget``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from mlinfra.config.models import HpoSpec
from mlinfra.hpo.study import (
    BUDGET_ATTR,
    FAILURE_ATTR,
    budget,
    fail_stale_trials,
    open_study,
    over_budget,
)

State = optuna.trial.TrialState
DIST = optuna.distributions.FloatDistribution(0.0, 1.0)


@pytest.fixture(params=["memory", "sqlite"])
def make_study(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    def make() -> Any:
        storage = None if request.param == "memory" else f"sqlite:///{tmp_path / 'study.db'}"
        return optuna.create_study(storage=storage, direction="maximize")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return make


def _add(study: Any, state: Any, **user_attrs: Any) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            value=0.5 if state == State.COMPLETE else None,
            params={"x": 0.1},
            distributions={"x": DIST},
            user_attrs=user_attrs,
        )
    )


def _running(study: Any) -> Any:
    trial = study.ask({"x": DIST})
    return trial


def test_what_counts(make_study: Callable[[], Any]) -> None:
    study = make_study()
    _add(study, State.COMPLETE)  # 0: counts
    _add(study, State.PRUNED)  # 1: counts
    _add(study, State.FAIL, **{FAILURE_ATTR: "ValueError: boom"})  # 2: counts, failed
    _add(study, State.FAIL)  # 3: stale (worker died): does not count
    _add(study, State.FAIL, **{BUDGET_ATTR: True})  # 4: over budget: does not count
    _running(study)  # 5: running

    b = budget(study, 5)
    assert (b.finished, b.running, b.failed, b.max_trials) == (3, 1, 1, 5)
    assert not b.done
    assert not b.taken
    b4 = budget(study, 4)
    assert b4.taken and not b4.done
    b3 = budget(study, 3)
    assert b3.taken and b3.done


def test_running_trials_are_taken_not_done(make_study: Callable[[], Any]) -> None:
    study = make_study()
    first, second = _running(study), _running(study)

    b = budget(study, 2)
    assert (b.finished, b.running) == (0, 2)
    assert b.taken and not b.done
    study.tell(first, 1.0)
    study.tell(second, state=State.PRUNED)
    b = budget(study, 2)
    assert (b.finished, b.running) == (2, 0)
    assert b.done


def test_over_budget_counts_earlier_finished_and_running(make_study: Callable[[], Any]) -> None:
    study = make_study()
    _add(study, State.COMPLETE)  # 0
    _running(study)  # 1
    _add(study, State.FAIL)  # 2: stale, not counted
    _add(study, State.FAIL, **{BUDGET_ATTR: True})  # 3: over budget, not counted
    _add(study, State.FAIL, **{FAILURE_ATTR: "boom"})  # 4: counted

    assert over_budget(study, 2, 2)  # trials 0 and 1 took the budget of 2
    assert not over_budget(study, 2, 3)
    assert not over_budget(study, 4, 3)  # 2 and 3 do not count: only 0, 1 before 4
    assert over_budget(study, 5, 3)  # 0, 1, 4
    assert not over_budget(study, 1, 2)  # only later trials never count
    assert not over_budget(study, 0, 1)


def _hpo(direction: str = "maximize", **storage: Any) -> HpoSpec:
    return HpoSpec.model_validate(
        {
            "search_space": {"x": {"type": "uniform", "min": 0.0, "max": 1.0}},
            "sampling": {"algorithm": "random", "max_trials": 2},
            "objective": {"metric": "score", "direction": direction},
            "storage": storage,
        }
    )


@pytest.mark.slow
def test_stale_trial_is_failed_requeued_and_not_counted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = open_study(url, "s", _hpo(heartbeat_seconds=1, grace_seconds=1))
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna: ask() is not optimize()
        trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    study._storage.record_heartbeat(trial._trial_id)  # then the "worker" dies
    assert budget(study, 2).taken

    time.sleep(2.2)
    fail_stale_trials(study)

    trials = study.get_trials()
    assert [t.state for t in trials] == [State.COMPLETE, State.FAIL, State.WAITING]
    assert FAILURE_ATTR not in trials[1].user_attrs
    assert trials[2].params == {"x": x}
    assert trials[2].system_attrs["failed_trial"] == 1
    b = budget(study, 2)
    assert (b.finished, b.running, b.failed) == (1, 0, 0)
    assert not b.taken


def test_open_study_refuses_the_other_direction(tmp_path: Path) -> None:
    from mlinfra.errors import ConfigError

    url = f"sqlite:///{tmp_path / 'study.db'}"
    open_study(url, "s", _hpo())
    with pytest.raises(ConfigError, match="other direction"):
        open_study(url, "s", _hpo("minimize"))
