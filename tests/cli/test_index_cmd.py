"""``mlinfra index``: list, find, cleanup, import, export and repair, in a copy of the example."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlinfra.cli.main import cli
from mlinfra.registry import REGISTRY_ENV, RunIndexEntry, SqlRegistry

KEY = "resume-ner:hpo:study-abc:local"
LOCAL_URI = "sqlite:///mlruns/mlflow.db"
AZURE_URI = "azureml://westeurope.api.azureml.ms/mlflow/v1.0/ws"
OLD_INDEX = {
    "a" * 64: {
        "run_id": "0123456789abcdef0123456789abcdef",
        "experiment_id": "1",
        "tracking_uri": LOCAL_URI,
        "updated_at": "2024-05-01T10:15:30.123456",
    },
    "b" * 64: {
        "run_id": "fedcba9876543210fedcba9876543210",
        "experiment_id": "2",
        "tracking_uri": AZURE_URI,
        "updated_at": "2024-05-02T08:00:00",
    },
}
OLD_COUNTER = {
    "allocations": [
        {
            "counter_key": KEY,
            "version": 1,
            "run_id": "run-one",
            "status": "committed",
            "reserved_at": "2024-05-01T10:15:00",
            "committed_at": "2024-05-01T10:16:00",
        },
        {
            "counter_key": KEY,
            "version": 2,
            "run_id": "pending_20240501",
            "status": "reserved",
            "reserved_at": "2024-05-01T11:00:00",
            "committed_at": None,
        },
    ]
}


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(example_project)
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    monkeypatch.delenv("MLINFRA_PROJECT_ROOT", raising=False)
    return example_project


@pytest.fixture
def db(project: Path) -> Path:
    return project / "outputs" / "cache" / "mlinfra_registry.db"


def _index(*args: str) -> Result:
    return CliRunner().invoke(cli, ["index", *args])


def _old_files(folder: Path) -> tuple[Path, Path]:
    index = folder / "mlflow_index.json"
    counter = folder / "run_name_counter.json"
    index.write_text(json.dumps(OLD_INDEX), encoding="utf-8")
    counter.write_text(json.dumps(OLD_COUNTER), encoding="utf-8")
    return index, counter


def test_import_then_find_and_list(project: Path, db: Path, tmp_path: Path) -> None:
    index, counter = _old_files(tmp_path)
    result = _index("import", str(index), str(counter))
    assert result.exit_code == 0, result.output
    assert f"{index}: 2 run(s), 0 allocation(s)" in result.stdout
    assert f"{counter}: 0 run(s), 2 allocation(s)" in result.stdout
    assert db.is_file()

    found = _index("find", "a" * 64)
    assert found.exit_code == 0, found.output
    (line,) = found.stdout.splitlines()
    entry = json.loads(line)
    assert entry["run_id"] == OLD_INDEX["a" * 64]["run_id"]
    assert entry["tracking_uri"] == LOCAL_URI
    assert entry["updated_at"].endswith("Z")

    scoped = _index("find", "b" * 64, "--tracking-uri", AZURE_URI)
    assert scoped.exit_code == 0
    assert json.loads(scoped.stdout)["run_id"] == OLD_INDEX["b" * 64]["run_id"]
    assert _index("find", "b" * 64, "--tracking-uri", LOCAL_URI).exit_code == 1

    listed = _index("list")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("b" * 12)  # newest update first
    assert OLD_INDEX["b" * 64]["run_id"] in lines[0] and AZURE_URI in lines[0]
    assert "2 run(s)" in listed.stderr

    only_local = _index("list", "--tracking-uri", LOCAL_URI)
    assert only_local.stdout.splitlines() == [
        f"{'a' * 12}  {OLD_INDEX['a' * 64]['run_id']}  -  -  {LOCAL_URI}"
    ]

    with SqlRegistry(f"sqlite:///{db}") as reg:
        assert reg.reserve_version(KEY, "new") == 3


def test_find_shows_every_tracking_uri_of_a_key(project: Path, db: Path) -> None:
    with SqlRegistry(f"sqlite:///{db}") as reg:
        reg.upsert_run(RunIndexEntry("c" * 64, "local-run", "1", LOCAL_URI, "hpo_1", "hpo"))
        reg.upsert_run(RunIndexEntry("c" * 64, "azure-run", "1", AZURE_URI, "hpo_1", "hpo"))
        reg.upsert_run(RunIndexEntry("d" * 64, "train-run", "1", LOCAL_URI, "t", "train"))
    result = _index("find", "c" * 64)
    assert result.exit_code == 0
    assert {json.loads(line)["run_id"] for line in result.stdout.splitlines()} == {
        "local-run",
        "azure-run",
    }
    staged = _index("list", "--stage", "train")
    assert staged.stdout.splitlines() == [f"{'d' * 12}  train-run  train  t  {LOCAL_URI}"]
    assert "1 run(s)" in staged.stderr


def test_find_of_a_missing_key_exits_1(project: Path) -> None:
    result = _index("find", "e" * 64)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no run with key hash" in result.stderr
    assert "e" * 64 in result.stderr


def test_list_of_an_empty_registry(project: Path) -> None:
    result = _index("list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "0 run(s)" in result.stderr


def test_export_to_stdout_and_to_a_file(project: Path, db: Path, tmp_path: Path) -> None:
    index, counter = _old_files(tmp_path)
    assert _index("import", str(index), str(counter)).exit_code == 0

    shown = _index("export")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["format"] == "mlinfra-registry/1"
    assert len(data["runs"]) == 2
    assert len(data["allocations"]) == 2
    assert data["counters"] == {KEY: 3}

    out = tmp_path / "exports" / "registry.json"
    out.parent.mkdir()
    written = _index("export", "--output", str(out))
    assert written.exit_code == 0
    assert f"wrote {out}: 2 run(s), 2 allocation(s)" in written.stdout
    from_file = json.loads(out.read_text(encoding="utf-8"))
    assert {k: v for k, v in from_file.items() if k != "exported_at"} == {
        k: v for k, v in data.items() if k != "exported_at"
    }

    # and the export imports into another registry, named with --url
    other = tmp_path / "other.db"
    imported = _index("import", str(out), "--url", f"sqlite:///{other}")
    assert imported.exit_code == 0, imported.output
    assert "2 run(s), 2 allocation(s)" in imported.stdout
    with SqlRegistry(f"sqlite:///{other}") as reg:
        assert len(reg.list_runs()) == 2
        assert reg.counter_values() == {KEY: 3}


def test_cleanup(project: Path, db: Path) -> None:
    with SqlRegistry(f"sqlite:///{db}") as reg:
        # two keys: a reserve on a key sweeps that key's lapsed leases itself
        reg.reserve_version("other:key", "lapsed", lease=dt.timedelta(milliseconds=1))
        reg.reserve_version(KEY, "fresh")
    time.sleep(0.01)
    result = _index("cleanup")
    assert result.exit_code == 0
    assert result.stdout.strip() == "expired 1 reservation(s)"
    assert _index("cleanup", "--stale-minutes", "60").stdout.strip() == ("expired 0 reservation(s)")
    assert _index("cleanup", "--stale-minutes", "0").stdout.strip() == ("expired 1 reservation(s)")
    with SqlRegistry(f"sqlite:///{db}") as reg:
        assert {a.status for a in reg.allocations()} == {"expired"}


def test_the_environment_url_is_used(
    project: Path, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, _ = _old_files(tmp_path)
    elsewhere = tmp_path / "env-registry.db"
    monkeypatch.setenv(REGISTRY_ENV, f"sqlite:///{elsewhere}")
    assert _index("import", str(index)).exit_code == 0
    assert elsewhere.is_file()
    assert not db.exists()


def test_a_corrupt_registry_is_reported_then_repaired(project: Path, db: Path) -> None:
    db.parent.mkdir(parents=True)
    content = json.dumps(OLD_INDEX).encode()
    db.write_bytes(content)

    broken = _index("list")
    assert broken.exit_code == 1
    assert str(db) in broken.stderr
    assert "mlinfra index repair" in broken.stderr
    assert db.read_bytes() == content

    repaired = _index("repair")
    assert repaired.exit_code == 0, repaired.output
    (aside,) = [
        p for p in db.parent.glob(f"{db.name}.damaged-*") if not p.name.endswith(("-wal", "-shm"))
    ]
    assert f"moved the damaged file to {aside}" in repaired.stdout
    assert "salvaged 0 run(s) and 0 allocation(s)" in repaired.stdout
    assert aside.read_bytes() == content

    assert _index("list").exit_code == 0
    # what the moved-aside file held can still be imported
    assert _index("import", str(aside)).exit_code == 0
    assert _index("find", "a" * 64).exit_code == 0


def test_repair_with_an_explicit_path(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "some.db"
    with SqlRegistry(f"sqlite:///{target}") as reg:
        reg.commit_version(KEY, reg.reserve_version(KEY, "o"), "run-1")
    result = _index("repair", "--path", str(target))
    assert result.exit_code == 0, result.output
    assert "salvaged 0 run(s) and 1 allocation(s)" in result.stdout
    (aside,) = [
        p for p in tmp_path.glob("some.db.damaged-*") if not p.name.endswith(("-wal", "-shm"))
    ]
    assert f"moved the damaged file to {aside}" in result.stdout


def test_repair_of_a_missing_file_exits_1(project: Path, tmp_path: Path) -> None:
    result = _index("repair", "--path", str(tmp_path / "nothing.db"))
    assert result.exit_code == 1
    assert "no such file" in result.stderr


def test_import_of_a_file_of_another_kind_exits_1(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "list.json"
    other.write_text("[1, 2]", encoding="utf-8")
    result = _index("import", str(other))
    assert result.exit_code == 1
    assert "list.json" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["find"],
        ["import"],
        ["import", "does-not-exist.json"],
        ["cleanup", "--stale-minutes", "soon"],
        ["list", "--bogus"],
        ["export", "--output"],
        ["nosuch"],
    ],
    ids=[
        "find-no-key",
        "import-no-file",
        "import-missing",
        "cleanup-bad-float",
        "list-bad-option",
        "export-no-value",
        "unknown-command",
    ],
)
def test_usage_errors_exit_2(project: Path, db: Path, args: list[str]) -> None:
    result = _index(*args)
    assert result.exit_code == 2, result.output
    assert "Usage" in result.stderr or "Error" in result.stderr
    assert not db.exists()


def test_outside_a_project_without_a_url_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    monkeypatch.delenv("MLINFRA_PROJECT_ROOT", raising=False)
    result = _index("list")
    assert result.exit_code == 1
    assert "project" in result.stderr
