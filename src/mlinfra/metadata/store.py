"""``metadata.json``: reading it, and updating it under a lock with an atomic write.

Contract:

1. An update is a deep merge of the caller's values into what is on disk, done while holding an
   inter-process lock (``metadata.json.lock`` next to the file, never deleted) and written
   atomically (temp file, fsync, ``os.replace``). Two processes that update different fields at
   the same time never lose each other's fields; a reader never sees a partial file; a writer
   killed mid-update leaves the previous complete file.
2. A file that is not JSON, or not an object, raises :class:`~mlinfra.errors.MetadataCorruptError`;
   one written with a newer or unknown schema raises :class:`~mlinfra.errors.MetadataSchemaError`.
   Either way an update writes nothing.
3. A file of the specification's system (no ``schema`` key) is read; the next update upgrades it:
   ``schema`` is added, ``mlflow_info`` is folded into ``mlflow``, and naive local timestamps
   become UTC.
4. Every timestamp written is ISO-8601 UTC (``2025-01-31T12:00:00.000000Z``).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from mlinfra.core.atomic import atomic_write_json
from mlinfra.core.redact import redact_mapping
from mlinfra.core.timeutil import format_utc, parse_utc, utc_now
from mlinfra.errors import (
    MetadataCorruptError,
    MetadataError,
    MetadataSchemaError,
    MetadataTimeoutError,
)

if TYPE_CHECKING:
    from mlinfra.registry import RunRegistry

__all__ = [
    "LOCK_SUFFIX",
    "METADATA_FILE",
    "SCHEMA",
    "get_mlflow_info",
    "metadata_path",
    "read_metadata",
    "update_metadata",
    "update_mlflow_info_in_metadata",
    "update_status",
]

#: The schema tag every file written by this mlinfra carries.
SCHEMA = "mlinfra.metadata/1"
#: The file name in an output folder.
METADATA_FILE = "metadata.json"
#: The lock file is ``metadata.json`` + this suffix, next to it.
LOCK_SUFFIX = ".lock"
#: Keys mlinfra manages itself; an update may not set them.
_MANAGED = ("schema", "created_at", "last_updated")
_SCHEMA_RE = re.compile(r"^mlinfra\.metadata/(\d+)$")
_DEFAULT_LOCK_TIMEOUT = 60.0


def metadata_path(folder: str | os.PathLike[str]) -> Path:
    """The ``metadata.json`` of an output folder, or ``folder`` itself when it names a
    ``.json`` file (the legacy ``<training_name>_metadata.json`` files). Nothing is created."""
    path = Path(folder)
    if path.suffix.lower() == ".json" and not path.is_dir():
        return path
    return path / METADATA_FILE


def _check_schema(data: dict[str, Any], path: Path) -> None:
    schema = data.get("schema")
    if schema is None or schema == SCHEMA:
        return
    found = _SCHEMA_RE.match(schema) if isinstance(schema, str) else None
    if found is not None and int(found[1]) > 1:
        reason = (
            f"written with schema {schema}, newer than the {SCHEMA} this mlinfra reads; "
            "upgrade mlinfra (pip install -U mlinfra). The file was left as it is"
        )
    else:
        reason = (
            f"unknown metadata schema {schema!r} (this mlinfra reads {SCHEMA}); it may come from "
            "a newer mlinfra or another program: upgrade mlinfra, or move the file away. "
            "The file was left as it is"
        )
    raise MetadataSchemaError(reason, path=path)


def _load(path: Path) -> dict[str, Any] | None:
    """The file's object as stored (``None`` when there is no file)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise MetadataCorruptError("this is a folder, not a metadata file", path=path) from None
    except OSError as exc:
        raise MetadataError(f"cannot read it ({exc.strerror})", path=path) from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MetadataCorruptError(
            f"not valid JSON ({exc}); fix or move the file away (it was left as it is)",
            path=path,
        ) from exc
    if not isinstance(data, dict):
        raise MetadataCorruptError(
            f"holds a JSON {type(data).__name__}, not an object; fix or move the file away "
            "(it was left as it is)",
            path=path,
        )
    _check_schema(data, path)
    return data


def _utc_text(value: Any) -> Any:
    """A timestamp of the specification's system (naive, this machine's local time) as UTC."""
    if not isinstance(value, str) or not value:
        return value
    try:
        return format_utc(parse_utc(value))
    except ValueError:
        try:
            return format_utc(_dt.datetime.fromisoformat(value).astimezone(_dt.timezone.utc))
        except ValueError:
            return value


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """The current form of a file's content: one ``mlflow`` key and UTC timestamps."""
    out = copy.deepcopy(data)
    legacy = out.pop("mlflow_info", None)
    if isinstance(legacy, Mapping):
        current = out.get("mlflow")
        out["mlflow"] = {**legacy, **(current if isinstance(current, Mapping) else {})}
    elif legacy is not None and "mlflow" not in out:
        out["mlflow"] = legacy
    if out.get("schema") is None:
        out.pop("schema", None)
        for key in ("created_at", "last_updated"):
            if key in out:
                out[key] = _utc_text(out[key])
        status = out.get("status")
        if isinstance(status, dict):
            for block in status.values():
                if isinstance(block, dict):
                    for key in [k for k in block if k.endswith("_at")]:
                        block[key] = _utc_text(block[key])
    return out


def read_metadata(folder_or_file: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of an output folder (or of a metadata ``.json`` file).

    A missing file reads as ``{}`` (a folder that has no metadata yet), so callers can test
    ``if not meta``. A legacy file (no ``schema``) is returned in the current form: its
    ``mlflow_info`` is under ``mlflow`` and its timestamps are UTC; it has no ``schema`` key
    until the next update writes it. The file itself is not changed. Takes no lock: writes are
    atomic, so the content is always one complete version.

    Raises:
        MetadataCorruptError: the file is not JSON or not a JSON object.
        MetadataSchemaError: the file was written with a newer or unknown schema.
        MetadataError: the file cannot be read (permissions).
    """
    path = metadata_path(folder_or_file)
    data = _load(path)
    return {} if data is None else _upgrade(data)


def get_mlflow_info(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The ``mlflow`` block of a metadata dict (``run_id``, ``experiment_id``, ``tracking_uri``,
    ``run_key``, ``run_key_hash``), also from a legacy ``mlflow_info`` key; ``{}`` when absent."""
    merged: dict[str, Any] = {}
    for key in ("mlflow_info", "mlflow"):
        block = metadata.get(key)
        if isinstance(block, Mapping):
            merged.update(block)
    return merged


def _json_value(value: Any, where: str, path: Path) -> Any:
    """``value`` in JSON types: paths as POSIX strings, aware datetimes as UTC text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise MetadataError(f"{where} is {value!r}, which JSON cannot hold", path=path)
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise MetadataError(f"{where} has a non-string key {key!r}", path=path)
            out[key] = _json_value(item, f"{where}.{key}" if where else key, path)
        return out
    if isinstance(value, (list, tuple)):
        return [_json_value(v, f"{where}[{i}]", path) for i, v in enumerate(value)]
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise MetadataError(f"{where} is a naive datetime; pass an aware one", path=path)
        return format_utc(value)
    raise MetadataError(
        f"{where} is a {type(value).__name__}, which metadata.json cannot hold; convert it to "
        "a JSON type (str, number, bool, list, dict)",
        path=path,
    )


def _deep_merge(base: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """``updates`` merged into a copy of ``base``: mappings merge key by key, anything else
    (lists, scalars, ``None``) replaces the value."""
    out = dict(base)
    for key, value in updates.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            out[key] = _deep_merge(current, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _after(previous: Any) -> str:
    """Now in UTC, or just after ``previous`` when the clock stands behind it (a clock stepped
    back): the writes of one file stay ordered, and the index follows the newest."""
    now = utc_now()
    if isinstance(previous, str):
        try:
            last = parse_utc(previous)
        except ValueError:
            return format_utc(now)
        if last >= now:
            return format_utc(last + _dt.timedelta(microseconds=1))
    return format_utc(now)


def _lock(path: Path, timeout: float) -> Any:
    from filelock import FileLock

    lock_file = str(path) + LOCK_SUFFIX
    try:  # filelock >= 3.30 can promise to keep the lock file (Unix never removes it anyway)
        return FileLock(lock_file, timeout=timeout, preserve_lock_file=True)
    except TypeError:
        return FileLock(lock_file, timeout=timeout)


def update_metadata(
    folder: str | os.PathLike[str],
    updates: Mapping[str, Any],
    *,
    registry: RunRegistry | None = None,
    root_dir: str | os.PathLike[str] | None = None,
    lock_timeout: float = _DEFAULT_LOCK_TIMEOUT,
) -> dict[str, Any]:
    """Deep-merge ``updates`` into the folder's ``metadata.json`` and return the new content.

    The folder is created when missing. Under the lock the file is read, ``updates`` merged in
    (mappings key by key; lists and scalars replace; ``None`` is stored as ``null``),
    ``schema`` and ``last_updated`` set (``created_at`` on the first write only), and the result
    written atomically. A legacy file is upgraded (see the module docstring).

    Args:
        folder: The output folder (or a metadata ``.json`` file).
        updates: JSON values (``Path`` and aware ``datetime`` are converted); an ``mlflow_info``
            key is stored as ``mlflow``. ``schema``, ``created_at`` and ``last_updated`` are
            managed by mlinfra and may not be given.
        registry: Also record the folder in this registry's metadata index, still under the
            lock (so index rows follow the order of the writes). The file is written first:
            if the index write fails, the file holds the update, the error propagates, and
            :func:`~mlinfra.metadata.rebuild_metadata_index` brings the index back in line.
        root_dir: The project root, needed with ``registry``: index keys are relative to it.
        lock_timeout: Seconds to wait for another writer of the same file.

    Raises:
        MetadataCorruptError: the file on disk is not a JSON object (nothing is written).
        MetadataSchemaError: the file on disk has a newer or unknown schema (nothing is written).
        MetadataError: ``updates`` holds a managed key or a value JSON cannot hold, or the lock
            was not acquired within ``lock_timeout``.
        RegistryError: the index could not be updated (the file was written).
    """
    path = metadata_path(folder)
    if not isinstance(updates, Mapping):
        raise MetadataError(f"updates must be a mapping, got {type(updates).__name__}", path=path)
    managed = sorted(k for k in _MANAGED if k in updates)
    if managed:
        raise MetadataError(
            f"{', '.join(managed)} are managed by mlinfra and cannot be updated", path=path
        )
    if registry is not None and root_dir is None:
        raise MetadataError(
            "pass root_dir with registry: index entries are keyed relative to the project root",
            path=path,
        )
    # credentials never reach the file: values of keys that name one become ***, URL
    # passwords are hidden (mlinfra.core.redact)
    clean = redact_mapping(_json_value(updates, "", path))
    if "mlflow_info" in clean:
        legacy = clean.pop("mlflow_info")
        clean["mlflow"] = (
            _deep_merge(legacy, clean.get("mlflow") or {}) if isinstance(legacy, dict) else legacy
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    from filelock import Timeout

    try:
        with _lock(path, lock_timeout):
            stored = _load(path)
            current = {} if stored is None else _upgrade(stored)
            merged = _deep_merge(current, clean)
            now = _after(current.get("last_updated"))
            merged["schema"] = SCHEMA
            if not merged.get("created_at"):
                merged["created_at"] = now
            merged["last_updated"] = now
            atomic_write_json(path, merged)
            if registry is not None:
                from mlinfra.metadata.index import _record

                assert root_dir is not None
                _record(registry, path.parent, merged, Path(root_dir))
    except Timeout as exc:
        raise MetadataTimeoutError(
            f"another process held {path.name}{LOCK_SUFFIX} for over {lock_timeout:.0f} s; "
            "retry, or raise lock_timeout",
            path=path,
        ) from exc
    return merged


def _status_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    now = format_utc()
    for flag, stamp in (
        ("completed", "completed_at"),
        ("artifacts_uploaded", "artifacts_uploaded_at"),
    ):
        if flag in out and stamp not in out:
            out[stamp] = now if out[flag] else None
    return out


def update_status(
    folder: str | os.PathLike[str],
    stage: str,
    *,
    registry: RunRegistry | None = None,
    root_dir: str | os.PathLike[str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Set ``status.<stage>.<field>`` for each field; return the new metadata.

    ``completed=True`` also sets ``completed_at`` (now, UTC), ``artifacts_uploaded=True``
    sets ``artifacts_uploaded_at``; ``False`` sets them to ``null``. Other fields of the stage
    and other stages are kept. ``registry`` and ``root_dir`` are as in :func:`update_metadata`.

    Example:
        >>> update_status(folder, "training", completed=True, checkpoint_path="checkpoint")

    Raises:
        MetadataError: ``stage`` is empty or contains a dot, or as :func:`update_metadata`.
    """
    if not isinstance(stage, str) or not stage.strip() or "." in stage:
        raise MetadataError(
            f"a status stage must be a non-empty name without dots, got {stage!r}",
            path=metadata_path(folder),
        )
    return update_metadata(
        folder,
        {"status": {stage: _status_fields(fields)}},
        registry=registry,
        root_dir=root_dir,
    )


def update_mlflow_info_in_metadata(
    path: str | os.PathLike[str],
    updates: Mapping[str, Any],
    *,
    registry: RunRegistry | None = None,
    root_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Merge ``updates`` (``run_id``, ``experiment_id``, ``tracking_uri``, ``run_key``,
    ``run_key_hash``, ...) into the ``mlflow`` block; return that block.

    ``path`` is the output folder or its ``metadata.json``. A legacy ``mlflow_info`` block is
    folded into ``mlflow``. ``registry`` and ``root_dir`` are as in :func:`update_metadata`.

    Raises:
        MetadataError: as :func:`update_metadata`.
    """
    merged = update_metadata(path, {"mlflow": dict(updates)}, registry=registry, root_dir=root_dir)
    return dict(merged.get("mlflow") or {})
