"""Moving registries in and out: the spec's JSON files, a JSON export (runs, allocations,
counters and the metadata index), and repair of a damaged SQLite file. Nothing here deletes
data: a repaired file is kept beside the new one.
"""

from __future__ import annotations

import datetime as _dt
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from mlinfra.core.atomic import atomic_write_json
from mlinfra.core.timeutil import format_utc, parse_utc, utc_now
from mlinfra.errors import RegistryError
from mlinfra.registry.base import OutputEntry, RunIndexEntry
from mlinfra.registry.schema import counters, versions
from mlinfra.registry.sql import SqlRegistry, _insert_ignore

__all__ = ["EXPORT_FORMAT", "ImportReport", "export_registry", "import_file", "repair_sqlite"]

EXPORT_FORMAT = "mlinfra-registry/1"
_STATUSES = {"reserved", "committed", "released", "expired"}


@dataclass
class ImportReport:
    """What an import or repair brought in."""

    runs: int = 0
    allocations: int = 0
    outputs: int = 0
    skipped: list[str] = field(default_factory=list)


def _when(text: Any, default: _dt.datetime) -> _dt.datetime:
    """A timestamp from an old file: aware ones as given; naive ones were written by the
    specification's system with ``datetime.now()``, so they are this machine's local time."""
    if not isinstance(text, str) or not text:
        return default
    try:
        return parse_utc(text)
    except ValueError:
        try:
            return _dt.datetime.fromisoformat(text).astimezone(_dt.timezone.utc)
        except ValueError:
            return default


def _add_allocations(
    registry: SqlRegistry,
    rows: list[dict[str, Any]],
    report: ImportReport,
    floors: dict[str, int] | None = None,
) -> None:
    """Insert allocations that are not there yet and move each counter past its highest number."""
    now = utc_now()
    best: dict[tuple[str, int], dict[str, Any]] = {}
    rank = {"committed": 3, "reserved": 2, "expired": 1, "released": 0}
    for row in rows:
        try:
            key = (str(row["counter_key"]), int(row["version"]))
        except (KeyError, TypeError, ValueError):
            report.skipped.append(f"allocation without counter_key/version: {row!r}"[:200])
            continue
        raw_status = row.get("status")
        status = (
            raw_status if isinstance(raw_status, str) and raw_status in _STATUSES else "expired"
        )
        if key not in best or rank[status] > rank[best[key]["status"]]:
            best[key] = {**row, "status": status}
    # a counter never goes below a number it had handed out, even if that row was lost
    highest: dict[str, int] = {k: v - 1 for k, v in (floors or {}).items()}
    with registry._tx(write=True) as conn:
        for (counter_key, version), row in sorted(best.items()):
            reserved = _when(row.get("reserved_at"), now)
            committed = row.get("committed_at")
            result = conn.execute(
                _insert_ignore(registry.dialect, versions).values(
                    counter_key=counter_key,
                    version=version,
                    owner=str(row.get("owner") or row.get("run_id") or "imported"),
                    status=row["status"],
                    run_id=row.get("run_id") if row["status"] == "committed" else None,
                    reserved_at=format_utc(reserved),
                    expires_at=format_utc(_when(row.get("expires_at"), reserved)),
                    committed_at=format_utc(_when(committed, now)) if committed else None,
                )
            )
            report.allocations += int(result.rowcount or 0)
            highest[counter_key] = max(highest.get(counter_key, 0), version)
        for counter_key, top in highest.items():
            conn.execute(
                _insert_ignore(registry.dialect, counters).values(
                    counter_key=counter_key, next_version=top + 1
                )
            )
            current = conn.execute(
                select(counters.c.next_version).where(counters.c.counter_key == counter_key)
            ).scalar_one()
            if current <= top:
                conn.execute(
                    update(counters)
                    .where(counters.c.counter_key == counter_key)
                    .values(next_version=top + 1)
                )


def _add_runs(registry: SqlRegistry, rows: list[dict[str, Any]], report: ImportReport) -> None:
    now = utc_now()
    for row in rows:
        try:
            entry = RunIndexEntry(
                run_key_hash=str(row["run_key_hash"]),
                run_id=str(row["run_id"]),
                experiment_id=str(row["experiment_id"]),
                tracking_uri=str(row["tracking_uri"]),
                run_name=row.get("run_name"),
                stage=row.get("stage"),
                created_at=_when(row.get("created_at") or row.get("updated_at"), now),
                updated_at=_when(row.get("updated_at"), now),
            )
        except KeyError as exc:
            report.skipped.append(f"index entry without {exc.args[0]}: {row!r}"[:200])
            continue
        registry.upsert_run(entry)
        report.runs += 1


def _optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _add_outputs(registry: SqlRegistry, rows: list[dict[str, Any]], report: ImportReport) -> None:
    """Upsert metadata-index entries (an older entry never replaces a newer one)."""
    now = utc_now()
    for row in rows:
        path = row.get("path") if isinstance(row, dict) else None
        if not isinstance(path, str) or not path:
            report.skipped.append(f"output entry without path: {row!r}"[:200])
            continue
        status = row.get("status")
        if isinstance(status, str):  # a row salvaged from the database holds the JSON text
            try:
                status = json.loads(status)
            except ValueError:
                status = {}
        variant = row.get("variant")
        try:
            entry = OutputEntry(
                path=path,
                process_type=_optional_text(row.get("process_type")),
                model=_optional_text(row.get("model")),
                environment=_optional_text(row.get("environment")),
                spec_fp=_optional_text(row.get("spec_fp")),
                exec_fp=_optional_text(row.get("exec_fp")),
                conv_fp=_optional_text(row.get("conv_fp")),
                variant=int(variant) if variant is not None else None,
                trial_id=_optional_text(row.get("trial_id")),
                parent_training_id=_optional_text(row.get("parent_training_id")),
                status=status if isinstance(status, dict) else {},
                run_id=_optional_text(row.get("run_id")),
                created_at=_when(row.get("created_at") or row.get("updated_at"), now),
                updated_at=_when(row.get("updated_at") or row.get("last_updated"), now),
            )
            registry.upsert_output(entry)
        except (TypeError, ValueError, RegistryError) as exc:
            report.skipped.append(f"output entry {path!r}: {exc}"[:200])
            continue
        report.outputs += 1


def import_file(registry: SqlRegistry, path: str | Path) -> ImportReport:
    """Import a JSON file into the registry: the spec's ``mlflow_index.json`` (an object keyed by
    run key hash), its ``run_name_counter.json`` (``{"allocations": [...]}``), or an export of
    this registry. Existing entries win over imported allocations; index entries are upserted.

    Raises:
        RegistryError: the file is not JSON or not one of these formats.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{file}: cannot read it as JSON ({exc})") from exc
    report = ImportReport()
    if isinstance(data, dict) and data.get("format") == EXPORT_FORMAT:
        _add_runs(registry, list(data.get("runs", [])), report)
        # exports made before the metadata index have no "outputs": still importable
        _add_outputs(registry, list(data.get("outputs", [])), report)
        floors = {str(k): int(v) for k, v in dict(data.get("counters", {})).items()}
        _add_allocations(registry, list(data.get("allocations", [])), report, floors)
    elif isinstance(data, dict) and isinstance(data.get("allocations"), list):
        _add_allocations(registry, data["allocations"], report)
    elif isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        rows = [{"run_key_hash": k, **v} for k, v in data.items()]
        _add_runs(registry, rows, report)
    else:
        raise RegistryError(
            f"{file}: not an mlflow_index.json, run_name_counter.json or registry export"
        )
    return report


def export_registry(registry: SqlRegistry, path: str | Path | None = None) -> dict[str, Any]:
    """Every run, allocation, counter and metadata-index entry (``outputs``) as JSON-ready
    data; written atomically to ``path``."""
    data = {
        "format": EXPORT_FORMAT,
        "exported_at": format_utc(),
        "source": registry.location,
        "runs": [e.as_dict() for e in registry.list_runs()],
        "allocations": [
            {
                **a.__dict__,
                "reserved_at": format_utc(a.reserved_at),
                "expires_at": format_utc(a.expires_at),
                "committed_at": format_utc(a.committed_at) if a.committed_at else None,
            }
            for a in registry.allocations()
        ],
        "counters": registry.counter_values(),
        "outputs": [e.as_dict() for e in registry.find_outputs()],
    }
    if path is not None:
        atomic_write_json(path, data)
    return data


def repair_sqlite(path: str | Path) -> tuple[Path, ImportReport]:
    """Salvage a damaged SQLite registry: move it aside (never deleted), create a fresh one at
    the same path, and copy in every row that can still be read. Counters restart above the
    highest number salvaged, so no number is handed out twice.

    Returns:
        The path the damaged file was moved to, and what was salvaged.
    """
    target = Path(path)
    if not target.exists():
        raise RegistryError(f"{target}: no such file to repair")
    stamp = utc_now().strftime("%Y%m%dT%H%M%S%fZ")
    aside = target.with_name(f"{target.name}.damaged-{stamp}")
    n = 1
    while aside.exists():  # never overwrite an earlier damaged copy
        aside = target.with_name(f"{target.name}.damaged-{stamp}-{n}")
        n += 1
    target.rename(aside)
    for suffix in ("-wal", "-shm"):
        extra = target.with_name(target.name + suffix)
        if extra.exists():
            extra.replace(aside.with_name(aside.name + suffix))
    report = ImportReport()
    runs_rows: list[dict[str, Any]] = []
    alloc_rows: list[dict[str, Any]] = []
    counter_rows: list[dict[str, Any]] = []
    output_rows: list[dict[str, Any]] = []
    try:
        source = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        report.skipped.append(f"cannot open the damaged file: {exc}")
        source = None
    if source is not None:
        source.row_factory = sqlite3.Row
        for table, sink in (
            ("mlinfra_runs", runs_rows),
            ("mlinfra_versions", alloc_rows),
            ("mlinfra_counters", counter_rows),
        ):
            try:
                sink.extend(dict(r) for r in source.execute(f"SELECT * FROM {table}"))
            except sqlite3.Error as exc:
                report.skipped.append(f"{table}: {exc}")
        # the metadata index is newer than the other tables: an older file has none to salvage
        try:
            has_outputs = source.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='mlinfra_outputs'"
            ).fetchone()
            if has_outputs is not None:
                output_rows.extend(dict(r) for r in source.execute("SELECT * FROM mlinfra_outputs"))
        except sqlite3.Error as exc:
            report.skipped.append(f"mlinfra_outputs: {exc}")
        source.close()
    registry = SqlRegistry(f"sqlite:///{target}")
    try:
        _add_runs(registry, runs_rows, report)
        floors: dict[str, int] = {}
        for row in counter_rows:
            try:
                floors[str(row["counter_key"])] = int(row["next_version"])
            except (KeyError, TypeError, ValueError):
                report.skipped.append(f"counter row {row!r}"[:200])
        _add_allocations(registry, alloc_rows, report, floors)
        _add_outputs(registry, output_rows, report)
    finally:
        registry.close()
    return aside, report
