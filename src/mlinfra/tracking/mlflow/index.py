"""The specification's run-index and run-name version functions, over the run registry.

Each call opens the project's registry (see :mod:`mlinfra.registry.location` for where it
lives), does one transaction and closes it. Long-lived callers should hold a registry from
:func:`~mlinfra.registry.open_registry` instead.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from pathlib import Path

from mlinfra.errors import RegistryError
from mlinfra.registry import DEFAULT_LEASE, RunIndexEntry, open_registry, registry_path

__all__ = [
    "cleanup_stale_reservations",
    "commit_run_name_version",
    "find_in_mlflow_index",
    "get_mlflow_index_path",
    "reserve_run_name_version",
    "update_mlflow_index",
]


def get_mlflow_index_path(
    root_dir: str | Path,
    config_dir: str | Path | None = None,
    *,
    storage_env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The default registry file, ``<outputs>/<cache>/mlinfra_registry.db`` (nothing created).

    When ``$MLINFRA_REGISTRY_URL`` or ``mlflow.yaml`` names a database URL, that database is used
    instead of this file.
    """
    return registry_path(root_dir, config_dir, storage_env=storage_env, environ=environ)


def update_mlflow_index(
    root_dir: str | Path,
    run_key_hash: str,
    run_id: str,
    experiment_id: str,
    tracking_uri: str,
    config_dir: str | Path | None = None,
    *,
    run_name: str | None = None,
    stage: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunIndexEntry:
    """Record that ``run_key_hash`` resolves to ``run_id`` under ``tracking_uri``.

    Raises:
        RegistryError: an identifier is empty, or the registry cannot be written.
    """
    for name, value in (
        ("run_key_hash", run_key_hash),
        ("run_id", run_id),
        ("experiment_id", experiment_id),
        ("tracking_uri", tracking_uri),
    ):
        if not isinstance(value, str) or not value.strip():
            raise RegistryError(f"update_mlflow_index needs {name}, got {value!r}")
    with open_registry(root_dir, config_dir, environ=environ) as registry:
        return registry.upsert_run(
            RunIndexEntry(run_key_hash, run_id, experiment_id, tracking_uri, run_name, stage)
        )


def find_in_mlflow_index(
    root_dir: str | Path,
    run_key_hash: str,
    tracking_uri: str | None = None,
    config_dir: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str] | None:
    """``{run_id, experiment_id, tracking_uri, run_name, stage}`` for a run key, or ``None``.

    With ``tracking_uri``, only that tracking server's entry counts. Without it, the most
    recently updated entry of any tracking URI is returned.
    """
    with open_registry(root_dir, config_dir, environ=environ) as registry:
        if tracking_uri is not None:
            found = registry.find_run(run_key_hash, tracking_uri)
        else:
            found = next((e for e in registry.list_runs() if e.run_key_hash == run_key_hash), None)
    if found is None:
        return None
    return {
        "run_id": found.run_id,
        "experiment_id": found.experiment_id,
        "tracking_uri": found.tracking_uri,
        "run_name": found.run_name or "",
        "stage": found.stage or "",
    }


def reserve_run_name_version(
    counter_key: str,
    run_id: str,
    root_dir: str | Path,
    config_dir: str | Path | None = None,
    *,
    lease: _dt.timedelta = DEFAULT_LEASE,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Reserve the next version of ``counter_key`` for the owner ``run_id``.

    ``run_id`` names the owner (a run id, or any identifier of the process creating the run);
    reserving again with the same owner returns the same number until it is committed.
    """
    with open_registry(root_dir, config_dir, environ=environ) as registry:
        return registry.reserve_version(counter_key, run_id, lease=lease)


def commit_run_name_version(
    counter_key: str,
    run_id: str,
    version: int,
    root_dir: str | Path,
    config_dir: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Mark ``version`` of ``counter_key`` as used by ``run_id``; idempotent. Returns True.

    Raises:
        RegistryError: the version was never reserved, or is committed to another run.
    """
    with open_registry(root_dir, config_dir, environ=environ) as registry:
        registry.commit_version(counter_key, version, run_id)
    return True


def cleanup_stale_reservations(
    root_dir: str | Path,
    config_dir: str | Path | None = None,
    stale_minutes: float | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Expire reservations whose lease has passed; return how many.

    ``stale_minutes`` (optional) also expires reservations older than that many minutes even if
    their lease is longer. Expired numbers are never handed out again.
    """
    from mlinfra.core.timeutil import utc_now

    with open_registry(root_dir, config_dir, environ=environ) as registry:
        count = registry.expire_stale()
        if stale_minutes is not None:
            cutoff = utc_now() - _dt.timedelta(minutes=stale_minutes)
            count += registry.expire_reserved_before(cutoff)
        return count
