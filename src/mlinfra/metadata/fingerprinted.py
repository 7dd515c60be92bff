"""The specification's per-run metadata functions: the metadata of a stage run's output folder,
keyed by its naming context and fingerprints."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlinfra.errors import MetadataError
from mlinfra.metadata.store import (
    _status_fields,
    metadata_path,
    read_metadata,
    update_metadata,
)

if TYPE_CHECKING:
    from mlinfra.naming import NamingContext
    from mlinfra.registry import RunRegistry

__all__ = [
    "context_identity",
    "find_metadata_by_spec_fp",
    "load_metadata_by_fingerprints",
    "save_metadata_with_fingerprints",
]

PathLike = str | Path
_IDENTITY = ("process_type", "model", "environment", "storage_env", "variant")
_OPTIONAL_IDENTITY = ("spec_fp", "exec_fp", "conv_fp", "trial_id", "parent_training_id")


def context_identity(context: NamingContext) -> dict[str, Any]:
    """The identity a run's ``metadata.json`` records: ``process_type``, ``model``,
    ``environment``, ``storage_env``, ``variant``, and ``spec_fp``, ``exec_fp``, ``conv_fp``,
    ``trial_id``, ``parent_training_id`` when the context has them."""
    out: dict[str, Any] = {key: getattr(context, key) for key in _IDENTITY}
    for key in _OPTIONAL_IDENTITY:
        value = getattr(context, key)
        if value is not None:
            out[key] = value
    return out


def _check_fingerprints(block: Any, key: str, path: Path) -> None:
    if block is None:
        return
    if not isinstance(block, Mapping) or not all(isinstance(k, str) for k in block):
        raise MetadataError(
            f"{key} must be a mapping of fingerprint name to value, got {type(block).__name__}",
            path=path,
        )


def save_metadata_with_fingerprints(
    root_dir: PathLike,
    config_dir: PathLike | None,
    context: NamingContext,
    metadata_content: Mapping[str, Any] | None = None,
    status_updates: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    registry: RunRegistry | None = None,
    index: bool = True,
    environ: Mapping[str, str] | None = None,
    **extra: Any,
) -> Path:
    """Write a stage run's identity and status into its folder's ``metadata.json``.

    The folder is ``build_output_path(root_dir, context, config_dir=config_dir)`` (created when
    missing). One locked, atomic update (see :func:`~mlinfra.metadata.update_metadata`) merges,
    in this order (later wins):

    1. ``metadata_content`` at the top level (``fingerprints`` and ``fingerprint_details``, as
       :mod:`mlinfra.fingerprints` produces them, are stored as given);
    2. the context's identity: ``process_type``, ``model``, ``environment``, ``storage_env``,
       ``variant``, and ``spec_fp``, ``exec_fp``, ``conv_fp``, ``trial_id``,
       ``parent_training_id`` when set;
    3. ``lineage`` (``hpo_trial``, ``hpo_trial_id``, ``hpo_trial_name``, ``parent_training_id``)
       and ``parent_hpo_trial``, from ``metadata_content``'s ``trial_id``/``trial_name``;
    4. ``status.<stage>`` for each stage of ``status_updates`` (with ``completed_at`` /
       ``artifacts_uploaded_at`` as :func:`~mlinfra.metadata.update_status` sets them);
    5. ``extra`` keys at the top level (``mlflow_info=`` is stored as ``mlflow``).

    ``created_at`` (first write) and ``last_updated`` are set in UTC.

    Args:
        root_dir: The project root.
        config_dir: Its config folder (``None``: ``<root_dir>/config``); passed on to
            ``build_output_path`` (the specification's system dropped it).
        context: The run's identity.
        metadata_content: Values to store.
        status_updates: ``{stage: {field: value}}``.
        registry: Record the folder in this registry's metadata index.
        index: Without ``registry``, record it in the project's registry (opened for this
            call). ``False`` writes the file only.
        environ: Environment for ``paths.yaml`` and the registry's location.
        **extra: More top-level keys.

    Returns:
        The ``metadata.json`` path.

    Raises:
        PathError: the folder cannot be built from the context.
        MetadataError: a value cannot be stored, or the file is corrupt or of a newer schema
            (nothing is written).
        RegistryError: the project's registry cannot be opened (nothing is written), or the
            index could not be updated (the file was written; rebuild the index with
            :func:`~mlinfra.metadata.rebuild_metadata_index`).
    """
    from mlinfra.paths import build_output_path

    folder = build_output_path(root_dir, context, config_dir=config_dir, environ=environ)
    target = metadata_path(folder)
    content = dict(metadata_content or {})
    updates: dict[str, Any] = dict(content)
    for key in ("fingerprints", "fingerprint_details"):
        _check_fingerprints(updates.get(key), key, target)
        _check_fingerprints(extra.get(key), key, target)
    updates.update(context_identity(context))
    trial_id, trial_name = content.get("trial_id"), content.get("trial_name")
    lineage: dict[str, Any] = {}
    if trial_id is not None or trial_name is not None:
        parent = trial_name if trial_name is not None else trial_id
        lineage["hpo_trial"] = parent
        updates["parent_hpo_trial"] = parent
        if trial_id is not None:
            lineage["hpo_trial_id"] = trial_id
        if trial_name is not None:
            lineage["hpo_trial_name"] = trial_name
    if context.parent_training_id is not None:
        lineage["parent_training_id"] = context.parent_training_id
    if lineage:
        given = updates.get("lineage")
        updates["lineage"] = {**(given if isinstance(given, Mapping) else {}), **lineage}
    if status_updates:
        updates["status"] = {
            stage: _status_fields(fields) for stage, fields in status_updates.items()
        }
    updates.update(extra)
    if registry is not None or not index:
        update_metadata(folder, updates, registry=registry, root_dir=root_dir)
        return target
    from mlinfra.registry import open_registry

    with open_registry(root_dir, config_dir, environ=environ) as opened:
        update_metadata(folder, updates, registry=opened, root_dir=root_dir)
    return target


def load_metadata_by_fingerprints(
    path: PathLike, spec_fp: str, exec_fp: str, variant: int | None = None
) -> dict[str, Any] | None:
    """The metadata at ``path`` (a folder or its ``metadata.json``) if it records these
    fingerprints (and ``variant``, when given); else ``None`` (also when there is no file).

    Raises:
        MetadataCorruptError, MetadataSchemaError: the file cannot be read.
    """
    metadata = read_metadata(path)
    if not metadata:
        return None
    if metadata.get("spec_fp") != spec_fp or metadata.get("exec_fp") != exec_fp:
        return None
    if variant is not None and metadata.get("variant", 1) != variant:
        return None
    return metadata


def find_metadata_by_spec_fp(
    root_dir: PathLike,
    spec_fp: str,
    process_type: str,
    *,
    config_dir: PathLike | None = None,
    registry: RunRegistry | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """The ``metadata.json`` files of ``process_type`` outputs with this spec fingerprint,
    newest update first.

    With ``registry``, or when the project has a registry (a URL is configured, or the SQLite
    file exists), the metadata index answers; an entry whose file is gone or no longer records
    ``spec_fp`` is left out (the file is the source of truth). Only when the project has no
    registry at all are the process type's output folders scanned (as the specification's
    system did), which reads every ``metadata.json`` under them.

    Raises:
        MetadataCorruptError, MetadataSchemaError: a file read in the scan or to confirm an
            index entry cannot be read.
        RegistryError: the registry cannot be opened.
    """
    if registry is None:
        from mlinfra.registry import resolve_registry_url

        url = resolve_registry_url(root_dir, config_dir, environ=environ)
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
            return _scan(root_dir, config_dir, spec_fp, process_type, environ)
    from mlinfra.metadata.index import find_by_spec_fp, output_folder

    found: list[Path] = []
    for entry in find_by_spec_fp(
        root_dir,
        spec_fp,
        process_type,
        config_dir=config_dir,
        registry=registry,
        environ=environ,
    ):
        file = metadata_path(output_folder(entry, root_dir))
        if file.is_file() and read_metadata(file).get("spec_fp") == spec_fp:
            found.append(file)
    return found


def _scan(
    root_dir: PathLike,
    config_dir: PathLike | None,
    spec_fp: str,
    process_type: str,
    environ: Mapping[str, str] | None,
) -> list[Path]:
    from mlinfra.metadata.index import _metadata_files, _scan_roots

    matches: list[tuple[str, Path]] = []
    roots = _scan_roots(root_dir, config_dir, None, environ, process_type)
    for file, kind in _metadata_files(roots):
        metadata = read_metadata(file)
        if metadata.get("spec_fp") != spec_fp:
            continue
        if metadata.get("process_type", kind) != process_type:
            continue
        matches.append((str(metadata.get("last_updated") or ""), file))
    matches.sort(key=lambda item: item[0], reverse=True)
    return [file for _stamp, file in matches]
