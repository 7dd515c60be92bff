"""mlinfra.hpo.faults: what Optuna's log says about trials that are not the objective's failures."""

from __future__ import annotations

from collections.abc import Iterator

import optuna
import pytest

from mlinfra.hpo.faults import OverBudget, quiet_logs


@pytest.fixture
def optuna_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Optuna's records as they leave its loggers (it does not propagate them by default)."""
    optuna.logging.enable_propagation()
    try:
        yield caplog
    finally:
        optuna.logging.disable_propagation()


def test_an_over_budget_trial_is_not_reported_but_a_real_failure_still_is(
    optuna_log: pytest.LogCaptureFixture,
) -> None:
    quiet_logs()
    study = optuna.create_study()

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 1:  # another worker spent the budget first
            raise OverBudget(trial.number)
        if trial.number == 2:
            raise ValueError("a real failure")
        return 1.0

    study.optimize(objective, n_trials=4, catch=(OverBudget, ValueError))
    messages = [r.getMessage() for r in optuna_log.records if r.levelname == "WARNING"]
    assert not [m for m in messages if m.startswith("Trial 1 ")], messages
    assert any(m.startswith("Trial 2 failed with parameters") for m in messages), messages
    assert any(m.startswith("Trial 2 failed with value") for m in messages), messages
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "FAIL", "COMPLETE"]
