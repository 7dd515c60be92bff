"""Find-or-create: a stage run is found again instead of duplicated.

Given a naming context, :func:`find_or_create_run`

1. computes the run key and its hash (:mod:`mlinfra.naming.keys`);
2. looks the hash up in the registry, under this tracking URI, and checks that the MLflow run still
   exists, is not deleted and carries the same ``run_key_hash`` tag (a stale entry is dropped);
3. without a registry entry, searches MLflow once by the ``run_key_hash`` tag and repairs the
   registry from what it finds;
4. otherwise creates the run: its name comes from the naming policy with a version reserved in
   the registry, committed once MLflow has the run (released if creating it fails).

Step 2 is repeated under a lock on the run key before creating, so processes that start at
once (``mlinfra hpo`` on several machines against an empty study) create one run, not one each:
a PostgreSQL advisory lock in the registry's database (released with the connection if the
process dies), or a lock file beside a SQLite registry (one machine). Other registry backends
get no lock. A process that holds the lock indexes the run it creates before releasing it, so
under the lock the registry alone tells whether another process won the race: a new run costs
one MLflow search, not two.

A run found again whose params differ from the ones given is not silently reused: ``on_change``
says what happens (``"error"``: raise :class:`ParamsChangedError` listing the differences;
``"new_run"``: create a new run with the next version, and point the index at it;
``"log_delta"``: keep the run and record the new values as ``param_delta.<name>`` tags, since
MLflow params cannot change).
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from mlinfra.config import NamingConfig
from mlinfra.core.imports import require
from mlinfra.core.placeholders import parse_placeholders
from mlinfra.errors import TrackingError
from mlinfra.naming import NamingContext
from mlinfra.naming.display_policy import build_mlflow_run_name, naming_key_for
from mlinfra.naming.keys import build_counter_key, build_mlflow_run_key, build_mlflow_run_key_hash
from mlinfra.naming.tags import TagsRegistry, build_mlflow_tags
from mlinfra.registry import RunIndexEntry, RunRegistry, SqlRegistry

__all__ = ["OnChange", "ParamsChangedError", "RunHandle", "find_mlflow_run", "find_or_create_run"]

OnChange = Literal["error", "new_run", "log_delta"]
_PARENT_TAG = "mlflow.parentRunId"


class ParamsChangedError(TrackingError):
    """A run was found again, but with other params than the ones given.

    Attributes:
        run_id: The existing run.
        changes: ``name → (logged value, new value)``; ``None`` for a value not logged/not given.
    """

    def __init__(self, run_id: str, changes: dict[str, tuple[str | None, str | None]]) -> None:
        self.run_id = run_id
        self.changes = changes
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(changes.items()))
        super().__init__(
            f"run {run_id} was found again but its params differ ({listed}); pass "
            "on_change='new_run' for a new run, or on_change='log_delta' to record the change"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (ParamsChangedError, (self.run_id, self.changes))


@dataclass(frozen=True)
class RunHandle:
    """The MLflow run of a context, and how it was obtained.

    Attributes:
        how: ``"registry"`` (found through the registry), ``"tag_search"`` (found by its tag, the
            registry repaired) or ``"created"``.
        changes: Param differences found on a reused run (empty when none).
    """

    run_id: str
    run_name: str
    experiment_id: str
    tracking_uri: str
    run_key: str
    run_key_hash: str
    how: str
    version: int | None = None
    changes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


def _client(tracking_uri: str) -> Any:
    mlflow = require("mlflow", feature="MLflow tracking")
    return mlflow.MlflowClient(tracking_uri=tracking_uri)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _live_run(client: Any, run_id: str, run_key_hash: str, tag: str) -> Any | None:
    """The run if it still exists with this key; ``None`` only when MLflow says it is gone."""
    mlflow_exceptions = require("mlflow.exceptions")
    try:
        run = client.get_run(run_id)
    except mlflow_exceptions.MlflowException as exc:
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise TrackingError(f"cannot read MLflow run {run_id}: {exc}") from exc
    if run.info.lifecycle_stage == "deleted" or run.data.tags.get(tag) != run_key_hash:
        return None
    return run


def find_mlflow_run(
    context: NamingContext,
    *,
    registry: RunRegistry,
    tracking_uri: str,
    experiment_id: str,
    tags: TagsRegistry,
) -> tuple[Any, str] | None:
    """The live MLflow run of ``context`` and how it was found (``registry`` or ``tag_search``),
    or ``None``. Never guesses: no "most recent run" fallback.
    """
    client = _client(tracking_uri)
    run_key_hash = build_mlflow_run_key_hash(context)
    tag = tags.key("grouping", "run_key_hash")
    indexed = _indexed_run(client, registry, run_key_hash, tracking_uri, tag)
    if indexed is not None:
        return indexed, "registry"
    mlflow_exceptions = require("mlflow.exceptions")
    try:
        found = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{tag}` = '{run_key_hash}'",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
    except mlflow_exceptions.MlflowException as exc:
        raise TrackingError(f"cannot search MLflow runs at {tracking_uri}: {exc}") from exc
    if not found:
        return None
    run = found[0]
    registry.upsert_run(
        RunIndexEntry(
            run_key_hash,
            run.info.run_id,
            str(run.info.experiment_id),
            tracking_uri,
            run.info.run_name,
            context.process_type,
        )
    )
    return run, "tag_search"


def _indexed_run(
    client: Any, registry: RunRegistry, run_key_hash: str, tracking_uri: str, tag: str
) -> Any | None:
    """The live run the registry indexes for ``run_key_hash``; a stale entry is dropped."""
    entry = registry.find_run(run_key_hash, tracking_uri)
    if entry is None:
        return None
    run = _live_run(client, entry.run_id, run_key_hash, tag)
    if run is None:
        registry.remove_run(run_key_hash, tracking_uri)  # the run was deleted or replaced
    return run


@contextmanager
def _creation_lock(registry: RunRegistry, run_key_hash: str) -> Iterator[None]:
    """Hold a lock on ``run_key_hash`` shared by every process using ``registry``."""
    if not isinstance(registry, SqlRegistry):
        yield
        return
    if registry.dialect == "postgresql":
        sqlalchemy = require("sqlalchemy")
        digest = hashlib.sha256(f"mlinfra-run:{run_key_hash}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        with registry.engine.connect() as conn:
            try:
                # a transaction-level lock: released when this block ends, or when the
                # connection dies with its process (the database rolls the transaction back)
                conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            except sqlalchemy.exc.DBAPIError as exc:
                raise TrackingError(
                    f"cannot lock run key {run_key_hash} in the registry {registry.location}: "
                    f"{str(exc.orig or exc).strip().splitlines()[0]}"
                ) from exc
            yield
            conn.rollback()
        return
    filelock = require("filelock")
    assert registry.path is not None
    with filelock.FileLock(f"{registry.path}.runs.lock", timeout=registry.busy_timeout):
        yield


def _param_changes(
    logged: Mapping[str, str], given: Mapping[str, Any]
) -> dict[str, tuple[str | None, str | None]]:
    out: dict[str, tuple[str | None, str | None]] = {}
    for key, value in given.items():
        text = str(value)
        if logged.get(key) != text:
            out[key] = (logged.get(key), text)
    return out


def find_or_create_run(
    context: NamingContext,
    *,
    registry: RunRegistry,
    tracking_uri: str,
    experiment_id: str,
    policy: NamingConfig,
    tags: TagsRegistry,
    project_name: str,
    params: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
    versioned: bool = True,
    on_change: OnChange = "error",
    extra_tags: Mapping[str, str] | None = None,
) -> RunHandle:
    """Find the MLflow run of ``context``, or create it (steps in the module docstring).

    Args:
        context: The run's identity.
        registry: The run registry (index and versions).
        tracking_uri: The tracking store (from :func:`setup_mlflow`).
        experiment_id: The experiment runs are created in and searched.
        policy: The naming policy (``naming.yaml``).
        tags: The tag keys (``tags.yaml``).
        project_name: ``mlflow.yaml`` ``naming.project_name`` (part of the counter key and tags).
        params: Params to log on a new run and to compare with a found one.
        parent_run_id: Makes the new run a child (``mlflow.parentRunId``).
        versioned: Append a registry-reserved version to the name (``_1``, ``_2``, ...) when
            the policy's pattern has a ``{version}`` placeholder.
        on_change: What to do when a found run's params differ.
        extra_tags: More tags for a new run.

    Raises:
        ParamsChangedError: ``on_change="error"`` and the params differ.
        TrackingError: MLflow refused to create the run.
    """
    if on_change not in ("error", "new_run", "log_delta"):
        raise TrackingError(f"on_change must be error, new_run or log_delta, not {on_change!r}")
    run_key_hash = build_mlflow_run_key_hash(build_mlflow_run_key(context))

    def lookup() -> tuple[Any, str] | None:
        return find_mlflow_run(
            context,
            registry=registry,
            tracking_uri=tracking_uri,
            experiment_id=experiment_id,
            tags=tags,
        )

    def finish(found: tuple[Any, str] | None) -> RunHandle:
        return _find_or_create(
            context,
            found,
            registry,
            tracking_uri,
            experiment_id,
            policy,
            tags,
            project_name,
            params,
            parent_run_id,
            versioned,
            on_change,
            extra_tags,
        )

    found = lookup()
    if found is not None:  # the common case of a rerun: no lock needed
        return finish(found)
    with _creation_lock(registry, run_key_hash):
        # another process may have created it while this one waited for the lock; it indexed
        # the run before releasing the lock, so the registry alone says so
        client = _client(tracking_uri)
        tag = tags.key("grouping", "run_key_hash")
        won = _indexed_run(client, registry, run_key_hash, tracking_uri, tag)
        return finish((won, "registry") if won is not None else None)


def _find_or_create(
    context: NamingContext,
    found: tuple[Any, str] | None,
    registry: RunRegistry,
    tracking_uri: str,
    experiment_id: str,
    policy: NamingConfig,
    tags: TagsRegistry,
    project_name: str,
    params: Mapping[str, Any] | None,
    parent_run_id: str | None,
    versioned: bool,
    on_change: OnChange,
    extra_tags: Mapping[str, str] | None,
) -> RunHandle:
    client = _client(tracking_uri)
    run_key = build_mlflow_run_key(context)
    run_key_hash = build_mlflow_run_key_hash(run_key)
    given = dict(params or {})
    changes: dict[str, tuple[str | None, str | None]] = {}
    if found is not None:
        run, how = found
        changes = _param_changes(run.data.params, given)
        if not changes or on_change == "log_delta":
            for key, (_old, new) in changes.items():
                client.set_tag(run.info.run_id, f"param_delta.{key}", str(new))
            return RunHandle(
                run.info.run_id,
                run.info.run_name,
                str(run.info.experiment_id),
                tracking_uri,
                run_key,
                run_key_hash,
                how,
                changes=changes,
            )
        if on_change == "error":
            raise ParamsChangedError(run.info.run_id, changes)

    run_tags = build_mlflow_tags(
        context,
        registry=tags,
        project_name=project_name,
        parent_run_id=parent_run_id,
        run_key_hash=run_key_hash,
    )
    if parent_run_id:
        run_tags[_PARENT_TAG] = parent_run_id
    run_tags.update(extra_tags or {})
    spec = policy.run_names.get(naming_key_for(context))
    # a pattern without {version} (folds, for instance) names one run per key: no counter
    if not versioned or spec is None or "version" not in parse_placeholders(spec.pattern):
        run_id, name = _create(client, experiment_id, context, policy, None, run_tags, given)
        version = None
    else:
        counter = build_counter_key(
            project_name, context.process_type, run_key_hash, str(context.storage_env)
        )
        with registry.reserve(counter, owner=_owner()) as reservation:
            version = reservation.version
            run_id, name = _create(client, experiment_id, context, policy, version, run_tags, given)
            reservation.commit(run_id)
    registry.upsert_run(
        RunIndexEntry(run_key_hash, run_id, experiment_id, tracking_uri, name, context.process_type)
    )
    return RunHandle(
        run_id,
        name,
        experiment_id,
        tracking_uri,
        run_key,
        run_key_hash,
        "created",
        version,
        changes,
    )


def _create(
    client: Any,
    experiment_id: str,
    context: NamingContext,
    policy: NamingConfig,
    version: int | None,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
) -> tuple[str, str]:
    mlflow_exceptions = require("mlflow.exceptions")
    entities = require("mlflow.entities")
    name = build_mlflow_run_name(context, policy=policy, version=version)
    try:
        run = client.create_run(experiment_id, run_name=name, tags=dict(tags))
        if params:
            client.log_batch(
                run.info.run_id,
                params=[entities.Param(k, str(v)) for k, v in params.items()],
            )
    except mlflow_exceptions.MlflowException as exc:
        raise TrackingError(f"MLflow refused to create run {name!r}: {exc}") from exc
    return str(run.info.run_id), name
