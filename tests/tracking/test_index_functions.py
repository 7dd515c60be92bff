"""The specification's index and run-name version functions, on a copy of the example project.

Every call passes ``environ`` explicitly so the developer's environment never leaks in.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from mlinfra.errors import RegistryError
from mlinfra.registry import REGISTRY_ENV, SqlRegistry
from mlinfra.tracking.mlflow.index import (
    cleanup_stale_reservations,
    commit_run_name_version,
    find_in_mlflow_index,
    get_mlflow_index_path,
    reserve_run_name_version,
    update_mlflow_index,
)

KEY = "resume-ner:hpo:study-abc:local"
HASH = "c" * 64
LOCAL_URI = "sqlite:///mlruns/mlflow.db"
AZURE_URI = "azureml://westeurope.api.azureml.ms/mlflow/v1.0/ws"


@pytest.fixture
def root(config_dir: Path) -> Path:
    return config_dir.parent


@pytest.fixture
def default_db(root: Path) -> Path:
    return root / "outputs" / "cache" / "mlinfra_registry.db"


def _set_in_yaml(file: Path, old: str, new: str) -> None:
    text = file.read_text(encoding="utf-8")
    assert old in text
    file.write_text(text.replace(old, new), encoding="utf-8")


# ---- where the registry is --------------------------------------------------------------------


def test_index_path_is_under_outputs_cache_and_is_not_created(
    root: Path, config_dir: Path, default_db: Path
) -> None:
    assert get_mlflow_index_path(root, config_dir, environ={}) == default_db
    assert get_mlflow_index_path(root, environ={}) == default_db
    assert not (root / "outputs").exists()


def test_index_path_follows_paths_yaml(root: Path, config_dir: Path) -> None:
    _set_in_yaml(config_dir / "paths.yaml", "  outputs: outputs\n", "  outputs: build/out\n")
    assert get_mlflow_index_path(root, config_dir, environ={}) == (
        root / "build" / "out" / "cache" / "mlinfra_registry.db"
    )
    _set_in_yaml(config_dir / "paths.yaml", "  cache: cache\n", "  cache: shared-cache\n")
    assert get_mlflow_index_path(root, config_dir, environ={}) == (
        root / "build" / "out" / "shared-cache" / "mlinfra_registry.db"
    )
    assert not (root / "build").exists()


def test_index_path_follows_the_storage_environment(root: Path, config_dir: Path) -> None:
    assert get_mlflow_index_path(root, config_dir, storage_env="kaggle", environ={}) == Path(
        "/kaggle/working/outputs/cache/mlinfra_registry.db"
    )


def test_the_first_write_creates_the_default_file(
    root: Path, config_dir: Path, default_db: Path
) -> None:
    update_mlflow_index(root, HASH, "run-1", "1", LOCAL_URI, config_dir, environ={})
    assert default_db.is_file()
    with SqlRegistry(f"sqlite:///{default_db}") as reg:
        assert reg.find_run(HASH, LOCAL_URI) is not None


# ---- the run index ----------------------------------------------------------------------------


def test_update_then_find(root: Path, config_dir: Path) -> None:
    entry = update_mlflow_index(
        root,
        HASH,
        "run-1",
        "7",
        LOCAL_URI,
        config_dir,
        run_name="hpo_distilbert_1",
        stage="hpo",
        environ={},
    )
    assert entry.updated_at is not None and entry.updated_at.utcoffset() == dt.timedelta(0)
    expected = {
        "run_id": "run-1",
        "experiment_id": "7",
        "tracking_uri": LOCAL_URI,
        "run_name": "hpo_distilbert_1",
        "stage": "hpo",
    }
    assert find_in_mlflow_index(root, HASH, LOCAL_URI, config_dir, environ={}) == expected
    assert find_in_mlflow_index(root, HASH, config_dir=config_dir, environ={}) == expected
    assert find_in_mlflow_index(root, "d" * 64, config_dir=config_dir, environ={}) is None


def test_entries_are_scoped_by_tracking_uri(root: Path, config_dir: Path) -> None:
    update_mlflow_index(root, HASH, "local-run", "1", LOCAL_URI, config_dir, environ={})
    assert find_in_mlflow_index(root, HASH, AZURE_URI, config_dir, environ={}) is None
    time.sleep(0.002)
    update_mlflow_index(root, HASH, "azure-run", "2", AZURE_URI, config_dir, environ={})
    local = find_in_mlflow_index(root, HASH, LOCAL_URI, config_dir, environ={})
    azure = find_in_mlflow_index(root, HASH, AZURE_URI, config_dir, environ={})
    assert local is not None and local["run_id"] == "local-run"
    assert azure is not None and azure["run_id"] == "azure-run"
    # without a tracking URI: the most recently updated entry of any URI
    latest = find_in_mlflow_index(root, HASH, config_dir=config_dir, environ={})
    assert latest is not None and latest["run_id"] == "azure-run"
    time.sleep(0.002)
    update_mlflow_index(root, HASH, "local-run-2", "1", LOCAL_URI, config_dir, environ={})
    latest = find_in_mlflow_index(root, HASH, config_dir=config_dir, environ={})
    assert latest is not None and latest["run_id"] == "local-run-2"
    azure = find_in_mlflow_index(root, HASH, AZURE_URI, config_dir, environ={})
    assert azure is not None and azure["run_id"] == "azure-run"


def test_update_replaces_the_entry_of_a_key(root: Path, config_dir: Path) -> None:
    first = update_mlflow_index(root, HASH, "run-1", "1", LOCAL_URI, config_dir, environ={})
    second = update_mlflow_index(root, HASH, "run-2", "1", LOCAL_URI, config_dir, environ={})
    assert second.created_at == first.created_at
    found = find_in_mlflow_index(root, HASH, LOCAL_URI, config_dir, environ={})
    assert found is not None and found["run_id"] == "run-2"
    assert found["run_name"] == "" and found["stage"] == ""


@pytest.mark.parametrize("blank", ["run_key_hash", "run_id", "experiment_id", "tracking_uri"])
def test_update_needs_every_identifier(
    root: Path, config_dir: Path, default_db: Path, blank: str
) -> None:
    args = {
        "run_key_hash": HASH,
        "run_id": "run-1",
        "experiment_id": "1",
        "tracking_uri": LOCAL_URI,
        blank: " ",
    }
    with pytest.raises(RegistryError, match=blank):
        update_mlflow_index(root, config_dir=config_dir, environ={}, **args)
    assert not default_db.exists()


# ---- run-name versions ------------------------------------------------------------------------


def test_reserve_and_commit(root: Path, config_dir: Path) -> None:
    v1 = reserve_run_name_version(KEY, "pending-1", root, config_dir, environ={})
    assert v1 == 1
    assert reserve_run_name_version(KEY, "pending-1", root, config_dir, environ={}) == 1
    v2 = reserve_run_name_version(KEY, "pending-2", root, config_dir, environ={})
    assert v2 == 2
    assert commit_run_name_version(KEY, "run-1", v1, root, config_dir, environ={}) is True
    assert commit_run_name_version(KEY, "run-1", v1, root, config_dir, environ={}) is True
    with pytest.raises(RegistryError, match="run-1"):
        commit_run_name_version(KEY, "run-other", v1, root, config_dir, environ={})
    with pytest.raises(RegistryError, match="never reserved"):
        commit_run_name_version(KEY, "run-9", 9, root, config_dir, environ={})
    # a new owner after a commit gets the next number; committed ones are not handed out again
    assert reserve_run_name_version(KEY, "pending-3", root, config_dir, environ={}) == 3
    assert reserve_run_name_version("other:key", "pending-1", root, config_dir, environ={}) == 1


def test_cleanup_expires_lapsed_leases(root: Path, config_dir: Path, default_db: Path) -> None:
    short = dt.timedelta(milliseconds=50)
    v1 = reserve_run_name_version(KEY, "p1", root, config_dir, lease=short, environ={})
    v2 = reserve_run_name_version(KEY, "p2", root, config_dir, environ={})
    time.sleep(0.12)
    assert cleanup_stale_reservations(root, config_dir, environ={}) == 1
    assert cleanup_stale_reservations(root, config_dir, environ={}) == 0
    with SqlRegistry(f"sqlite:///{default_db}") as reg:
        statuses = {a.version: a.status for a in reg.allocations(KEY)}
    assert statuses == {v1: "expired", v2: "reserved"}
    assert reserve_run_name_version(KEY, "p1", root, config_dir, environ={}) == 3


def test_cleanup_with_stale_minutes(root: Path, config_dir: Path, default_db: Path) -> None:
    v1 = reserve_run_name_version(KEY, "p1", root, config_dir, environ={})
    committed = reserve_run_name_version(KEY, "p2", root, config_dir, environ={})
    commit_run_name_version(KEY, "run-2", committed, root, config_dir, environ={})
    assert cleanup_stale_reservations(root, config_dir, stale_minutes=60, environ={}) == 0
    time.sleep(0.01)
    assert cleanup_stale_reservations(root, config_dir, stale_minutes=0, environ={}) == 1
    with SqlRegistry(f"sqlite:///{default_db}") as reg:
        statuses = {a.version: a.status for a in reg.allocations(KEY)}
    assert statuses == {v1: "expired", committed: "committed"}
    assert reserve_run_name_version(KEY, "p1", root, config_dir, environ={}) == 3


# ---- choosing the database --------------------------------------------------------------------


def test_the_environment_url_wins_over_the_default(
    root: Path, config_dir: Path, default_db: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere" / "registry.db"
    env = {REGISTRY_ENV: f"sqlite:///{elsewhere}"}
    update_mlflow_index(root, HASH, "run-env", "1", LOCAL_URI, config_dir, environ=env)
    assert reserve_run_name_version(KEY, "p", root, config_dir, environ=env) == 1
    assert elsewhere.is_file()
    assert not default_db.exists()
    with SqlRegistry(f"sqlite:///{elsewhere}") as reg:
        found = reg.find_run(HASH, LOCAL_URI)
        assert found is not None and found.run_id == "run-env"
    assert find_in_mlflow_index(root, HASH, LOCAL_URI, config_dir, environ={}) is None
    assert find_in_mlflow_index(root, HASH, LOCAL_URI, config_dir, environ=env) is not None


def test_the_process_environment_does_not_leak_through_an_explicit_environ(
    root: Path,
    config_dir: Path,
    default_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    leaked = tmp_path / "from-os-environ.db"
    monkeypatch.setenv(REGISTRY_ENV, f"sqlite:///{leaked}")
    update_mlflow_index(root, HASH, "run-1", "1", LOCAL_URI, config_dir, environ={})
    assert default_db.is_file()
    assert not leaked.exists()


def test_mlflow_yaml_registry_url_is_used_when_set(
    root: Path, config_dir: Path, default_db: Path, tmp_path: Path
) -> None:
    configured = tmp_path / "configured" / "registry.db"
    _set_in_yaml(
        config_dir / "mlflow.yaml",
        "registry:\n  url: null",
        f"registry:\n  url: sqlite:///{configured}",
    )
    update_mlflow_index(root, HASH, "run-yaml", "1", LOCAL_URI, config_dir, environ={})
    assert configured.is_file()
    assert not default_db.exists()
    # the environment still wins over mlflow.yaml
    from_env = tmp_path / "env" / "registry.db"
    env = {REGISTRY_ENV: f"sqlite:///{from_env}"}
    assert reserve_run_name_version(KEY, "p", root, config_dir, environ=env) == 1
    assert from_env.is_file()
    with SqlRegistry(f"sqlite:///{configured}") as reg:
        assert reg.allocations() == []
        assert reg.find_run(HASH, LOCAL_URI) is not None


def test_an_unsupported_configured_url_is_an_error(root: Path, config_dir: Path) -> None:
    with pytest.raises(RegistryError, match="unsupported"):
        update_mlflow_index(
            root, HASH, "run", "1", LOCAL_URI, config_dir, environ={REGISTRY_ENV: "mysql://x/y"}
        )


def test_a_corrupt_default_file_is_reported_not_overwritten(
    root: Path, config_dir: Path, default_db: Path
) -> None:
    default_db.parent.mkdir(parents=True)
    default_db.write_text('{"' + HASH + '": {"run_id": "old"}}', encoding="utf-8")
    before = default_db.read_bytes()
    with pytest.raises(RegistryError, match="mlinfra index repair"):
        find_in_mlflow_index(root, HASH, config_dir=config_dir, environ={})
    with pytest.raises(RegistryError, match="mlinfra index repair"):
        reserve_run_name_version(KEY, "p", root, config_dir, environ={})
    assert default_db.read_bytes() == before
