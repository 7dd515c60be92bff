"""Helpers of the scale-out tests that read a study (imported by the test modules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlinfra.hpo.runner import StudyLocation


def trial_states(study: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


#: Storages opened by :func:`load`; the conftest disposes their engines after each test.
OPENED: list[Any] = []


def load(where: StudyLocation) -> Any:
    """The study, read through a plain RDBStorage (no heartbeat side effects)."""
    import optuna

    storage = optuna.storages.RDBStorage(where.storage_url)
    OPENED.append(storage)
    return optuna.load_study(study_name=where.study_name, storage=storage)


def dispose_opened() -> None:
    while OPENED:
        OPENED.pop().engine.dispose()


def finished_trials(study: Any) -> Sequence[Any]:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
