"""The metadata index: output folders by fingerprint, stage, model and environment, in the registry.

Each folder's ``metadata.json`` is the source of truth; the index (table ``mlinfra_outputs`` of
the run registry) mirrors it, one row per folder, keyed by the folder's path relative to the
project root (absolute when outside it). It is written by :func:`update_metadata_index`, by
:func:`~mlinfra.metadata.update_metadata` when given a registry, and by
:func:`~mlinfra.metadata.save_metadata_with_fingerprints` (the project's registry by default), and
rebuilt from the files by :func:`rebuild_metadata_index`.

The specification's finders (``find_by_spec_fp``, ``find_by_env``, ``find_by_model``,
``find_by_spec_and_env``, ``get_latest_entry``) take the project root and either a registry or
the project's (opened and closed per call); they return :class:`~mlinfra.registry.OutputEntry`
objects, newest update first.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlinfra.core.timeutil import parse_utc
from mlinfra.errors import MetadataError, PathError, RegistryError
from mlinfra.metadata.store import METADATA_FILE, get_mlflow_info, metadata_path, read_metadata

if TYPE_CHECKING:
    from mlinfra.registry import OutputEntry, RunRegistry

__all__ = [
    "RebuildReport",
    "find_by_env",
    "find_by_model",
    "find_by_spec_and_env",
    "find_by_spec_fp",
    "find_outputs",
    "get_latest_entry",
    "output_folder",
    "output_key",
    "rebuild_metadata_index",
    "update_metadata_index",
]

PathLike = str | Path


def output_key(folder: PathLike, root_dir: PathLike) -> str:
    """The index key of a folder: its POSIX path relative to ``root_dir`` when inside it, else
    its absolute POSIX path. Lexical (symlinks are not followed); nothing is touched on disk."""
    folder_abs = Path(os.path.abspath(folder))
    root_abs = Path(os.path.abspath(root_dir))
    try:
        return folder_abs.relative_to(root_abs).as_posix()
    except ValueError:
        return folder_abs.as_posix()


def output_folder(entry: OutputEntry | str, root_dir: PathLike) -> Path:
    """The folder an index entry (or key) names, on this machine's project root."""
    key = entry if isinstance(entry, str) else entry.path
    path = Path(key)
    return path if path.is_absolute() else Path(root_dir) / path


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _variant(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _when(value: Any) -> _dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_utc(value)
    except ValueError:
        return None


def _entry(
    folder: Path,
    metadata: Mapping[str, Any],
    root_dir: PathLike,
    process_type: str | None = None,
) -> OutputEntry:
    from mlinfra.registry import OutputEntry

    lineage = metadata.get("lineage")
    lineage = lineage if isinstance(lineage, Mapping) else {}
    status = metadata.get("status")
    return OutputEntry(
        path=output_key(folder, root_dir),
        process_type=_text(metadata.get("process_type")) or process_type,
        model=_text(metadata.get("model")) or _text(metadata.get("backbone")),
        environment=_text(metadata.get("environment")),
        spec_fp=_text(metadata.get("spec_fp")),
        exec_fp=_text(metadata.get("exec_fp")),
        conv_fp=_text(metadata.get("conv_fp")),
        variant=_variant(metadata.get("variant")),
        trial_id=_text(metadata.get("trial_id")) or _text(lineage.get("hpo_trial_id")),
        parent_training_id=_text(metadata.get("parent_training_id"))
        or _text(lineage.get("parent_training_id")),
        status=dict(status) if isinstance(status, Mapping) else {},
        run_id=_text(get_mlflow_info(metadata).get("run_id")),
        created_at=_when(metadata.get("created_at")),
        updated_at=_when(metadata.get("last_updated")),
    )


def _record(
    registry: RunRegistry, folder: Path, metadata: Mapping[str, Any], root_dir: PathLike
) -> OutputEntry:
    """Upsert the entry of ``folder`` from its (just written) metadata."""
    return registry.upsert_output(_entry(folder, metadata, root_dir))


def update_metadata_index(
    folder: PathLike, registry: RunRegistry, *, root_dir: PathLike
) -> OutputEntry | None:
    """Record a folder's ``metadata.json`` in the index; return its entry.

    A folder without a metadata file has its entry removed (if any) and ``None`` is returned.

    Raises:
        MetadataCorruptError, MetadataSchemaError: the file cannot be read (the index is not
            changed).
        RegistryError: the registry refused the entry (a value over its length limit).
    """
    path = Path(folder)
    metadata = read_metadata(path)
    if not metadata and not metadata_path(path).is_file():
        registry.remove_output(output_key(path, root_dir))
        return None
    return _record(registry, path, metadata, root_dir)


@contextmanager
def _registry_for(
    root_dir: PathLike,
    config_dir: PathLike | None,
    registry: RunRegistry | None,
    environ: Mapping[str, str] | None,
) -> Iterator[RunRegistry]:
    if registry is not None:
        yield registry
        return
    from mlinfra.registry import open_registry

    with open_registry(root_dir, config_dir, environ=environ) as opened:
        yield opened


def find_outputs(
    root_dir: PathLike,
    config_dir: PathLike | None = None,
    *,
    registry: RunRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    limit: int | None = None,
    **filters: Any,
) -> list[OutputEntry]:
    """Index entries matching every filter (``spec_fp``, ``exec_fp``, ``conv_fp``,
    ``process_type``, ``model``, ``environment``, ``variant``, ``trial_id``, ...), newest first.

    Args:
        root_dir: The project root.
        config_dir: Its config folder (default ``<root_dir>/config``), to find the registry.
        registry: Query this registry instead of opening the project's.
        environ: Environment for the registry's location (default ``os.environ``).
        limit: At most this many entries.
        **filters: Equality filters; ``None`` values are ignored.

    Raises:
        RegistryError: an unknown filter, or the registry cannot be opened.
    """
    with _registry_for(root_dir, config_dir, registry, environ) as reg:
        return reg.find_outputs(limit=limit, **filters)


def find_by_spec_fp(
    root_dir: PathLike,
    spec_fp: str,
    process_type: str | None = None,
    *,
    config_dir: PathLike | None = None,
    registry: RunRegistry | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[OutputEntry]:
    """Outputs with this spec fingerprint (of one process type, or any), newest first."""
    return find_outputs(
        root_dir,
        config_dir,
        registry=registry,
        environ=environ,
        spec_fp=spec_fp,
        process_type=process_type,
    )


def find_by_env(
    root_dir: PathLike,
    environment: str,
    process_type: str | None = None,
    *,
    config_dir: PathLike | None = None,
    registry: RunRegistry | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[OutputEntry]:
    """Outputs made in this environment (``local``, ``colab``, ...), newest first."""
    return find_outputs(
        root_dir,
        config_dir,
        registry=registry,
        environ=environ,
        environment=environment,
        process_type=process_type,
    )


def find_by_model(
    root_dir: PathLike,
    model: str,
    process_type: str | None = None,
    *,
    config_dir: PathLike | None = None,
    registry: RunRegistry | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[OutputEntry]:
    """Outputs of this model (backbone), newest first."""
    return find_outputs(
        root_dir,
        config_dir,
        registry=registry,
        environ=environ,
        model=model,
        process_type=process_type,
    )


def find_by_spec_and_env(
    root_dir: PathLike,
    spec_fp: str,
    environment: str,
    process_type: str | None = None,
    *,
    exec_fp: str | None = None,
    config_dir: PathLike | None = None,
    registry: RunRegistry | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[OutputEntry]:
    """Outputs with this spec fingerprint in this environment (and ``exec_fp`` when given),
    newest first."""
    return find_outputs(
        root_dir,
        config_dir,
        registry=registry,
        environ=environ,
        spec_fp=spec_fp,
        environment=environment,
        exec_fp=exec_fp,
        process_type=process_type,
    )


def get_latest_entry(
    root_dir: PathLike,
    process_type: str | None = None,
    *,
    config_dir: PathLike | None = None,
    registry: RunRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    **filters: Any,
) -> OutputEntry | None:
    """The most recently updated output matching the filters (as :func:`find_outputs`), or
    ``None``."""
    found = find_outputs(
        root_dir,
        config_dir,
        registry=registry,
        environ=environ,
        limit=1,
        process_type=process_type,
        **filters,
    )
    return found[0] if found else None


@dataclass
class RebuildReport:
    """What :func:`rebuild_metadata_index` did.

    Attributes:
        indexed: Folders whose entry was written.
        removed: Entries removed because their folder has no ``metadata.json`` any more.
        skipped: Files that could not be indexed, each with the reason.
    """

    indexed: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)


def _scan_roots(
    root_dir: PathLike,
    config_dir: PathLike | None,
    storage_env: str | None,
    environ: Mapping[str, str] | None,
    process_type: str | None = None,
) -> list[tuple[Path, str]]:
    """``(category folder, process type)`` for each process type's folder in ``paths.yaml``."""
    from mlinfra.paths import PROCESS_LAYOUTS, category_dir, load_paths_config

    folder = Path(config_dir) if config_dir is not None else Path(root_dir) / "config"
    paths = load_paths_config(folder, storage_env, environ=environ)
    found: list[tuple[Path, str]] = []
    for kind, layout in PROCESS_LAYOUTS.items():
        if process_type is not None and kind != process_type:
            continue
        try:
            found.append(
                (category_dir(root_dir, paths, layout.category, layout.cache_subcategory), kind)
            )
        except PathError:
            continue  # this project's paths.yaml has no folder for that process type
    return found


def _guess_process_type(folder: Path, kind: str) -> str:
    if kind in ("hpo", "hpo_refit"):
        return "hpo_refit" if folder.name == "refit" else "hpo"
    return kind


def _metadata_files(
    roots: list[tuple[Path, str]],
) -> Iterator[tuple[Path, str]]:
    """Each ``metadata.json`` below the category folders once, with its guessed process type."""
    seen: set[Path] = set()
    for base, kind in roots:
        if not base.is_dir():
            continue
        for file in sorted(base.rglob(METADATA_FILE)):
            if file in seen or not file.is_file():
                continue
            seen.add(file)
            yield file, _guess_process_type(file.parent, kind)


def rebuild_metadata_index(
    root_dir: PathLike,
    config_dir: PathLike | None = None,
    *,
    registry: RunRegistry | None = None,
    storage_env: str | None = None,
    environ: Mapping[str, str] | None = None,
    prune: bool = False,
) -> RebuildReport:
    """Index every output folder's ``metadata.json`` under the project's output categories.

    The folders are those of ``paths.yaml`` (with ``storage_env``'s overrides) for each process
    type; every ``metadata.json`` below them is upserted. An entry newer than its file (a writer
    raced the rebuild) is kept. Files that cannot be read are reported in ``skipped``, not
    indexed, and left as they are.

    Args:
        root_dir: The project root.
        config_dir: Its config folder (default ``<root_dir>/config``).
        registry: The registry to fill (default: the project's, opened and closed here).
        storage_env: Whose output layout to scan (default ``local``).
        environ: Environment for ``paths.yaml`` and the registry's location.
        prune: Also remove entries whose folder has no ``metadata.json`` on this machine.
            Off by default: a registry shared by several machines holds folders that exist on
            other machines only.

    Raises:
        ConfigError: ``paths.yaml`` cannot be loaded.
        RegistryError: the registry cannot be opened or written.
    """
    report = RebuildReport()
    roots = _scan_roots(root_dir, config_dir, storage_env, environ)
    with _registry_for(root_dir, config_dir, registry, environ) as reg:
        for file, kind in _metadata_files(roots):
            try:
                metadata = read_metadata(file)
                reg.upsert_output(_entry(file.parent, metadata, root_dir, kind))
            except (MetadataError, RegistryError) as exc:
                report.skipped.append(str(exc))
                continue
            report.indexed += 1
        if prune:
            for entry in reg.find_outputs():
                if not (output_folder(entry, root_dir) / METADATA_FILE).is_file():
                    report.removed += int(reg.remove_output(entry.path))
    return report
