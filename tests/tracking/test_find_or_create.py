"""Find-or-create against a real MLflow SQLite store and a real registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest

from mlinfra.naming import create_naming_context
from mlinfra.naming.display_policy import load_naming_policy
from mlinfra.naming.tags import load_tags_registry
from mlinfra.registry import SqlRegistry
from mlinfra.tracking.mlflow.runs import ParamsChangedError, find_or_create_run
from mlinfra.tracking.mlflow.setup import setup_mlflow

STUDY = "350a79aa" * 8


@dataclass
class Env:
    registry: SqlRegistry
    uri: str
    experiment_id: str
    kwargs: dict[str, Any]


@pytest.fixture
def env(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = example_project / "config"
    setup = setup_mlflow(experiment_name="runs-test", root_dir=example_project, environ={})
    registry = SqlRegistry(f"sqlite:///{example_project / 'registry.db'}")
    kwargs = {
        "registry": registry,
        "tracking_uri": setup.tracking_uri,
        "experiment_id": setup.experiment_id,
        "policy": load_naming_policy(cfg, environ={}),
        "tags": load_tags_registry(cfg, environ={}),
        "project_name": "resume-ner",
    }
    yield Env(registry, setup.tracking_uri, setup.experiment_id, kwargs)
    registry.close()


def _sweep() -> Any:
    return create_naming_context(
        process_type="hpo", model="distilbert", environment="local", study_key_hash=STUDY
    )


def test_the_same_stage_twice_finds_the_first_run(env: Env) -> None:
    first = find_or_create_run(_sweep(), params={"lr": 0.1}, **env.kwargs)
    assert first.how == "created"
    assert first.run_name == "local_distilbert_hpo_study-350a79aa_1"
    again = find_or_create_run(_sweep(), params={"lr": 0.1}, **env.kwargs)
    assert (again.how, again.run_id) == ("registry", first.run_id)
    client = mlflow.MlflowClient(tracking_uri=env.uri)
    runs = client.search_runs([env.experiment_id])
    assert len(runs) == 1
    run = client.get_run(first.run_id)
    assert run.data.tags["code.run_key_hash"] == first.run_key_hash
    assert run.data.params == {"lr": "0.1"}


def test_a_lost_registry_entry_is_found_by_tag_and_repaired(env: Env) -> None:
    first = find_or_create_run(_sweep(), **env.kwargs)
    assert env.registry.remove_run(first.run_key_hash, env.uri)
    again = find_or_create_run(_sweep(), **env.kwargs)
    assert (again.how, again.run_id) == ("tag_search", first.run_id)
    entry = env.registry.find_run(first.run_key_hash, env.uri)
    assert entry is not None and entry.run_id == first.run_id


def test_a_deleted_run_is_not_reused(env: Env) -> None:
    first = find_or_create_run(_sweep(), **env.kwargs)
    mlflow.MlflowClient(tracking_uri=env.uri).delete_run(first.run_id)
    again = find_or_create_run(_sweep(), **env.kwargs)
    assert again.how == "created" and again.run_id != first.run_id
    assert again.run_name.endswith("_2")  # numbers are never reused


def test_changed_params_are_reported_not_crashed_on(env: Env) -> None:
    first = find_or_create_run(_sweep(), params={"lr": 0.1, "bs": 8}, **env.kwargs)
    with pytest.raises(ParamsChangedError) as info:
        find_or_create_run(_sweep(), params={"lr": 0.2, "bs": 8}, **env.kwargs)
    assert info.value.changes == {"lr": ("0.1", "0.2")}
    kept = find_or_create_run(_sweep(), params={"lr": 0.2}, on_change="log_delta", **env.kwargs)
    assert kept.run_id == first.run_id and kept.changes == {"lr": ("0.1", "0.2")}
    tags = mlflow.MlflowClient(tracking_uri=env.uri).get_run(first.run_id).data.tags
    assert tags["param_delta.lr"] == "0.2"
    new = find_or_create_run(_sweep(), params={"lr": 0.3}, on_change="new_run", **env.kwargs)
    assert new.how == "created" and new.run_id != first.run_id
    assert new.run_name == "local_distilbert_hpo_study-350a79aa_2"
    assert find_or_create_run(_sweep(), params={"lr": 0.3}, **env.kwargs).run_id == new.run_id


def test_a_different_config_gets_its_own_run_and_counter(env: Env) -> None:
    first = find_or_create_run(_sweep(), **env.kwargs)
    other = find_or_create_run(_sweep().with_(study_key_hash="747428f2" * 8), **env.kwargs)
    assert other.run_id != first.run_id
    assert other.run_name == "local_distilbert_hpo_study-747428f2_1"


def test_a_child_run_is_linked_to_its_parent(env: Env) -> None:
    parent = find_or_create_run(_sweep(), **env.kwargs)
    trial = _sweep().with_(trial_number=3, trial_key_hash="747428f2" * 8)
    child = find_or_create_run(trial, parent_run_id=parent.run_id, **env.kwargs)
    run = mlflow.MlflowClient(tracking_uri=env.uri).get_run(child.run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent.run_id
    assert run.data.tags["code.parent_run_id"] == parent.run_id
    assert child.run_name == "local_distilbert_hpo_trial_study-350a79aa_t03_1"


def test_a_failed_creation_releases_its_version(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.exceptions import MlflowException

    from mlinfra.errors import TrackingError

    def refuse(*args: object, **kwargs: object) -> None:
        raise MlflowException("server said no")

    monkeypatch.setattr(mlflow.MlflowClient, "create_run", refuse)
    with pytest.raises(TrackingError, match="server said no"):
        find_or_create_run(_sweep(), **env.kwargs)
    statuses = [a.status for a in env.registry.allocations()]
    assert statuses == ["released"]


def test_a_new_run_costs_one_search_and_a_run_won_by_another_process_is_found(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlinfra.tracking.mlflow import runs

    searches: list[object] = []
    search = mlflow.MlflowClient.search_runs

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        searches.append(args)
        return search(self, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "search_runs", counting)
    created = find_or_create_run(_sweep(), **env.kwargs)
    assert created.how == "created" and len(searches) == 1

    # another process creates the same run while this one waits for the creation lock
    lock = runs._creation_lock
    other: list[Any] = []

    def losing(registry: Any, run_key_hash: str) -> Any:
        if not other:  # the other process, which takes the lock first (the real one)
            monkeypatch.setattr(runs, "_creation_lock", lock)
            other.append(find_or_create_run(_trial(), **env.kwargs))
        return lock(registry, run_key_hash)

    monkeypatch.setattr(runs, "_creation_lock", losing)
    searches.clear()
    found = find_or_create_run(_trial(), **env.kwargs)
    assert other and (found.how, found.run_id) == ("registry", other[0].run_id)
    client = mlflow.MlflowClient(tracking_uri=env.uri)
    assert len(client.search_runs([env.experiment_id])) == 2  # the sweep's and the trial's


def _trial() -> Any:
    return create_naming_context(
        process_type="hpo",
        model="distilbert",
        environment="local",
        study_key_hash=STUDY,
        trial_key_hash="747428f2" * 8,
        trial_number=0,
    )
