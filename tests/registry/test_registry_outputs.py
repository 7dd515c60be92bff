"""The metadata index (``mlinfra_outputs``) on every registry backend: one row per folder,
filters, newest first, an older entry never replacing a newer one, an old registry gaining the
table on open, and export / import / repair carrying it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import inspect

from mlinfra.errors import RegistryError
from mlinfra.registry import OutputEntry, SqlRegistry
from mlinfra.registry.maintenance import export_registry, import_file, repair_sqlite

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SPEC, EXEC = "a" * 64, "b" * 64


def _entry(path: str, minutes: int = 0, **fields: object) -> OutputEntry:
    values: dict[str, object] = {
        "process_type": "final_training",
        "model": "distilbert",
        "environment": "local",
        "spec_fp": SPEC,
        "exec_fp": EXEC,
        "variant": 1,
        "updated_at": T0 + dt.timedelta(minutes=minutes),
    }
    values.update(fields)
    return OutputEntry(path, **values)  # type: ignore[arg-type]


def test_upsert_twice_keeps_one_row_and_its_creation_time(registry: SqlRegistry) -> None:
    first = registry.upsert_output(
        _entry("outputs/ft/v1", status={"training": {"completed": False}})
    )
    assert first.created_at == first.updated_at == T0
    second = registry.upsert_output(
        _entry("outputs/ft/v1", 5, status={"training": {"completed": True}}, run_id="r1")
    )
    assert registry.find_outputs() == [second]
    assert second.created_at == T0
    assert second.updated_at == T0 + dt.timedelta(minutes=5)
    assert second.status == {"training": {"completed": True}}
    assert second.run_id == "r1"
    assert registry.get_output("outputs/ft/v1") == second
    assert registry.get_output("outputs/other") is None


def test_an_older_entry_does_not_replace_a_newer_one(registry: SqlRegistry) -> None:
    newer = registry.upsert_output(_entry("o/v1", 10, run_id="new"))
    kept = registry.upsert_output(_entry("o/v1", 1, run_id="old"))
    assert kept == newer
    assert registry.find_outputs()[0].run_id == "new"


def test_an_entry_without_updated_at_is_stamped_now(registry: SqlRegistry) -> None:
    before = dt.datetime.now(UTC)
    stored = registry.upsert_output(OutputEntry("o/x"))
    assert stored.updated_at is not None and stored.updated_at >= before - dt.timedelta(seconds=5)
    assert stored.updated_at.tzinfo is not None
    assert stored.status == {} and stored.process_type is None


def test_filters_and_newest_first(registry: SqlRegistry) -> None:
    registry.upsert_output(_entry("a", 1))
    registry.upsert_output(_entry("b", 3, variant=2))
    registry.upsert_output(_entry("c", 2, environment="colab", model="deberta"))
    registry.upsert_output(_entry("d", 4, exec_fp="c" * 64))
    registry.upsert_output(
        _entry("e", 5, process_type="conversion", conv_fp="d" * 64, parent_training_id="p/v1")
    )
    registry.upsert_output(_entry("f", 6, process_type="hpo", spec_fp=None, trial_id="t7"))

    def paths(**filters: object) -> list[str]:
        return [e.path for e in registry.find_outputs(**filters)]

    assert paths() == ["f", "e", "d", "b", "c", "a"]
    assert paths(spec_fp=SPEC) == ["e", "d", "b", "c", "a"]
    assert paths(spec_fp=SPEC, exec_fp=EXEC, process_type="final_training") == ["b", "c", "a"]
    assert paths(process_type="conversion") == ["e"]
    assert paths(conv_fp="d" * 64) == ["e"]
    assert paths(parent_training_id="p/v1") == ["e"]
    assert paths(environment="colab") == ["c"]
    assert paths(model="deberta") == ["c"]
    assert paths(variant=2) == ["b"]
    assert paths(trial_id="t7") == ["f"]
    assert paths(spec_fp=SPEC, environment=None) == paths(spec_fp=SPEC)  # None: no filter
    assert [e.path for e in registry.find_outputs(limit=2)] == ["f", "e"]
    assert paths(spec_fp="f" * 64) == []
    with pytest.raises(RegistryError, match="unknown output filter"):
        registry.find_outputs(stage="hpo")


def test_remove_output(registry: SqlRegistry) -> None:
    registry.upsert_output(_entry("a"))
    assert registry.remove_output("a") is True
    assert registry.remove_output("a") is False
    assert registry.find_outputs() == []


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (OutputEntry(""), "path must be a non-empty"),
        (OutputEntry("p" * 1025), "path is 1025 characters"),
        (OutputEntry("p", model="m" * 300), "model is 300 characters"),
        (OutputEntry("p", variant="1"), "variant must be an integer"),  # type: ignore[arg-type]
    ],
)
def test_bad_entries_are_refused(registry: SqlRegistry, entry: OutputEntry, match: str) -> None:
    with pytest.raises(RegistryError, match=match):
        registry.upsert_output(entry)
    assert registry.find_outputs() == []


def test_a_registry_from_before_the_table_gains_it_on_open(registry_url: str) -> None:
    reg = SqlRegistry(registry_url)
    reg.reserve_version("k", "owner")
    with reg._tx(write=True) as conn:
        conn.exec_driver_sql("DROP TABLE mlinfra_outputs")
        assert "mlinfra_outputs" not in inspect(conn).get_table_names()
    reg.close()

    with SqlRegistry(registry_url) as reopened:
        with reopened._tx(write=False) as conn:
            assert "mlinfra_outputs" in inspect(conn).get_table_names()
        assert [a.version for a in reopened.allocations("k")] == [1]  # nothing else changed
        reopened.upsert_output(_entry("a"))
        assert [e.path for e in reopened.find_outputs()] == ["a"]


def test_export_and_import_carry_the_index(tmp_path: Path) -> None:
    with SqlRegistry(f"sqlite:///{tmp_path / 'a.db'}") as reg:
        reg.upsert_output(_entry("a", 1, status={"training": {"completed": True}}))
        reg.upsert_output(_entry("b", 2, run_id="r"))
        data = export_registry(reg, tmp_path / "export.json")
        entries = reg.find_outputs()
    assert [o["path"] for o in data["outputs"]] == ["b", "a"]
    assert data["outputs"][0]["last_updated"] == data["outputs"][0]["updated_at"]
    with SqlRegistry(f"sqlite:///{tmp_path / 'b.db'}") as fresh:
        report = import_file(fresh, tmp_path / "export.json")
        assert (report.outputs, report.skipped) == (2, [])
        assert fresh.find_outputs() == entries


def test_an_export_from_before_the_index_still_imports(tmp_path: Path) -> None:
    old = {"format": "mlinfra-registry/1", "runs": [], "allocations": [], "counters": {}}
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    with SqlRegistry(f"sqlite:///{tmp_path / 'r.db'}") as reg:
        report = import_file(reg, tmp_path / "old.json")
        assert (report.runs, report.outputs, report.skipped) == (0, 0, [])
        assert reg.find_outputs() == []


def test_repair_salvages_the_index(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with SqlRegistry(f"sqlite:///{db}") as reg:
        reg.upsert_output(_entry("a", 1, status={"conversion": {"completed": True}}))
        before = reg.find_outputs()
    _aside, report = repair_sqlite(db)
    assert report.outputs == 1
    with SqlRegistry(f"sqlite:///{db}") as repaired:
        assert repaired.find_outputs() == before
