"""The SQLite registry file: foreign or damaged files, repair, import/export, where it may live."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlinfra.core.filesystems import Mount, network_filesystem_reason
from mlinfra.errors import ConfigError, RegistryCorruptError, RegistryError, UnsafeStorageError
from mlinfra.registry import (
    REGISTRY_ENV,
    RunIndexEntry,
    SqlRegistry,
    check_local_disk,
    maintenance,
    resolve_registry_url,
)
from mlinfra.registry.maintenance import (
    EXPORT_FORMAT,
    export_registry,
    import_file,
    repair_sqlite,
)

UTC = dt.timezone.utc
KEY = "resume-ner:hpo:study-abc:local"
LOCAL_URI = "sqlite:///mlruns/mlflow.db"

# the spec's files, as the reference implementation wrote them
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
        "tracking_uri": "azureml://westeurope.api.azureml.ms/mlflow/v1.0/ws",
        "updated_at": "2024-05-02T08:00:00",
    },
}
OLD_COUNTER = {
    "allocations": [
        {
            "counter_key": KEY,
            "version": 1,
            "run_id": "pending_20240501_101500",
            "status": "reserved",
            "reserved_at": "2024-05-01T10:15:00.000001",
            "committed_at": None,
        },
        {  # the duplicate the lock race produced: the committed one is kept
            "counter_key": KEY,
            "version": 1,
            "run_id": "run-one",
            "status": "committed",
            "reserved_at": "2024-05-01T10:15:00.000002",
            "committed_at": "2024-05-01T10:16:00",
        },
        {
            "counter_key": KEY,
            "version": 2,
            "run_id": "pending_x",
            "status": "expired",
            "reserved_at": "2024-05-01T11:00:00",
            "committed_at": None,
            "expired_at": "2024-05-01T11:30:00",
        },
        {
            "counter_key": KEY,
            "version": 7,
            "run_id": "run-seven",
            "status": "committed",
            "reserved_at": "2024-05-01T12:00:00",
            "committed_at": "2024-05-01T12:01:00",
        },
        {  # same version again, reserved after it was committed: still committed
            "counter_key": KEY,
            "version": 7,
            "run_id": "pending_y",
            "status": "reserved",
            "reserved_at": "2024-05-01T13:00:00",
            "committed_at": None,
        },
        {
            "counter_key": "other:key",
            "version": 3,
            "run_id": "run-other",
            "status": "committed",
            "reserved_at": "2024-05-01T12:00:00",
            "committed_at": "2024-05-01T12:00:01",
        },
    ]
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "mlinfra_registry.db"


def _open(path: Path) -> SqlRegistry:
    return SqlRegistry(f"sqlite:///{path}")


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def _fill(path: Path, allocations: int = 300, runs: int = 120) -> None:
    with _open(path) as reg:
        for i in range(allocations):
            version = reg.reserve_version(KEY, f"owner-{i}")
            reg.commit_version(KEY, version, f"run-{i:04d}")
        for i in range(runs):
            reg.upsert_run(
                RunIndexEntry(f"{i:064x}", f"run-{i:04d}", "1", LOCAL_URI, "x" * 200, "hpo")
            )


def _pages(path: Path, table: str) -> tuple[int, int, list[int]]:
    """(page size, the table's root page, its leaf pages in key order)."""
    conn = sqlite3.connect(path)
    try:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        leaves = [
            row[0]
            for row in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path",
                (table,),
            )
        ]
    finally:
        conn.close()
    return size, root, leaves


def _smash(path: Path, pages: list[int], page_size: int) -> None:
    data = bytearray(path.read_bytes())
    noise = random.Random(1234)
    for page in pages:
        data[(page - 1) * page_size : page * page_size] = noise.randbytes(page_size)
    path.write_bytes(bytes(data))


# ---- a file that is not a registry: refused, named, untouched ---------------------------------


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(OLD_INDEX, indent=2).encode(),
        json.dumps(OLD_COUNTER).encode(),
        random.Random(7).randbytes(8192),
        b"{}",
    ],
    ids=["mlflow_index.json", "run_name_counter.json", "random-bytes", "tiny"],
)
def test_a_non_sqlite_file_is_refused_and_left_alone(db: Path, content: bytes) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    with pytest.raises(RegistryCorruptError) as caught:
        _open(db)
    message = str(caught.value)
    assert str(db) in message
    assert "mlinfra index repair" in message
    assert caught.value.path == str(db)
    assert "mlinfra index repair" in caught.value.repair
    assert db.read_bytes() == content
    assert _siblings(db) == [db.name]  # no -wal, -shm or journal either


def test_a_folder_at_the_registry_path_is_refused(db: Path) -> None:
    db.mkdir(parents=True)
    with pytest.raises(RegistryCorruptError, match="folder") as caught:
        _open(db)
    assert caught.value.path == str(db)
    assert list(db.iterdir()) == []


def _foreign(db: Path) -> bytes:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE foo (x INTEGER)")
    conn.execute("INSERT INTO foo VALUES (42)")
    conn.commit()
    conn.close()
    return db.read_bytes()


def test_an_sqlite_file_of_another_program_is_refused(db: Path) -> None:
    _foreign(db)
    with pytest.raises(RegistryCorruptError) as caught:
        _open(db)
    message = str(caught.value)
    assert str(db) in message
    assert "another program" in message
    assert "foo" in message
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT x FROM foo").fetchall() == [(42,)]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert tables == {"foo"}  # none of the registry's tables were created in it


def test_an_sqlite_file_of_another_program_is_not_modified(db: Path) -> None:
    before = _foreign(db)
    with pytest.raises(RegistryCorruptError):
        _open(db)
    assert db.read_bytes() == before
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        conn.close()


# ---- a damaged registry -----------------------------------------------------------------------


def test_a_damaged_registry_fails_with_the_file_named_and_repair_salvages_it(db: Path) -> None:
    _fill(db)
    size, _root, leaves = _pages(db, "mlinfra_runs")
    assert len(leaves) >= 6
    _smash(db, leaves[2:4], size)  # two pages in the middle of the run index
    damaged = db.read_bytes()

    with _open(db) as reg:
        with pytest.raises(RegistryCorruptError) as caught:
            reg.list_runs()
        assert str(db) in str(caught.value)
        assert "mlinfra index repair" in str(caught.value)
        # the allocations are on other pages and still readable
        assert len(reg.allocations(KEY)) == 300
    assert db.read_bytes() == damaged

    aside, report = repair_sqlite(db)
    assert aside.parent == db.parent
    assert aside.name.startswith(f"{db.name}.damaged-")
    assert aside.read_bytes() == damaged  # moved aside, not changed, not deleted
    assert report.allocations == 300
    assert 0 < report.runs < 120
    assert any("mlinfra_runs" in s for s in report.skipped)

    with _open(db) as reg:
        assert reg.check() == []
        runs = reg.list_runs()
        assert len(runs) == report.runs
        assert {e.run_id for e in runs} < {f"run-{i:04d}" for i in range(120)}
        allocations = reg.allocations(KEY)
        assert [a.version for a in allocations] == list(range(1, 301))
        assert {a.status for a in allocations} == {"committed"}
        assert allocations[41].run_id == "run-0041"
        assert reg.reserve_version(KEY, "after-repair") == 301


def test_repair_restarts_counters_above_the_highest_salvaged_number(db: Path) -> None:
    with _open(db) as reg:
        for i in range(5):
            reg.commit_version(KEY, reg.reserve_version(KEY, f"o{i}"), f"run-{i}")
        reg.reserve_version(KEY, "still-reserved")  # 6
        reg.release_version(KEY, reg.reserve_version(KEY, "gave-up"), "gave-up")  # 7
    aside, report = repair_sqlite(db)
    assert aside.exists()
    assert report.allocations == 7
    with _open(db) as reg:
        assert [a.status for a in reg.allocations(KEY)] == ["committed"] * 5 + [
            "reserved",
            "released",
        ]
        assert reg.reserve_version(KEY, "next") == 8


def test_repair_never_hands_out_a_number_the_damaged_counters_had_passed(db: Path) -> None:
    _fill(db, allocations=300, runs=10)
    size, root, _ = _pages(db, "mlinfra_versions")
    _smash(db, [root], size)
    with _open(db) as reg, pytest.raises(RegistryCorruptError):
        reg.allocations()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:  # the counters themselves are intact in the damaged file
        assert conn.execute("SELECT next_version FROM mlinfra_counters").fetchall() == [(301,)]
    finally:
        conn.close()
    repair_sqlite(db)
    with _open(db) as reg:
        assert reg.reserve_version(KEY, "after-repair") > 300


def test_two_repairs_in_the_same_second_keep_both_files(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = dt.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)
    monkeypatch.setattr(maintenance, "utc_now", lambda: frozen)
    db.parent.mkdir(parents=True)
    db.write_bytes(b'{"old": "index"}')
    first_aside, _ = repair_sqlite(db)
    second_aside, _ = repair_sqlite(db)
    assert first_aside != second_aside
    assert first_aside.read_bytes() == b'{"old": "index"}'


def test_repair_of_a_json_file_moves_it_aside_and_starts_afresh(db: Path) -> None:
    content = json.dumps(OLD_INDEX).encode()
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    aside, report = repair_sqlite(db)
    assert aside.read_bytes() == content
    assert (report.runs, report.allocations) == (0, 0)
    assert report.skipped
    with _open(db) as reg:
        assert reg.list_runs() == []
        assert reg.reserve_version(KEY, "w") == 1
    # what was in the JSON file can still be imported from where it was moved
    with _open(db) as reg:
        assert import_file(reg, aside).runs == 2


def test_repair_of_a_missing_file_is_an_error(db: Path) -> None:
    with pytest.raises(RegistryError, match="no such file"):
        repair_sqlite(db)
    assert not db.parent.exists()


# ---- import of the spec's files ---------------------------------------------------------------


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_import_the_spec_mlflow_index_json(db: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "mlflow_index.json", OLD_INDEX)
    with _open(db) as reg:
        report = import_file(reg, source)
        assert (report.runs, report.allocations, report.skipped) == (2, 0, [])
        local = reg.find_run("a" * 64, LOCAL_URI)
        assert local is not None
        assert (local.run_id, local.experiment_id) == (OLD_INDEX["a" * 64]["run_id"], "1")
        assert local.updated_at is not None and local.updated_at.tzinfo is not None
        assert local.updated_at.utcoffset() == dt.timedelta(0)
        assert reg.find_run("a" * 64, OLD_INDEX["b" * 64]["tracking_uri"]) is None
        azure = reg.find_run("b" * 64, OLD_INDEX["b" * 64]["tracking_uri"])
        assert azure is not None and azure.run_id == OLD_INDEX["b" * 64]["run_id"]
        # importing again changes nothing
        import_file(reg, source)
        assert len(reg.list_runs()) == 2
    assert json.loads(source.read_text()) == OLD_INDEX  # the old file is left as it was


def test_import_reads_the_spec_naive_times_as_local_time(db: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "mlflow_index.json", OLD_INDEX)
    with _local_zone("IST-5:30"), _open(db) as reg:  # POSIX TZ: UTC+05:30, no zoneinfo
        import_file(reg, source)
        entry = reg.find_run("a" * 64, LOCAL_URI)
    assert entry is not None
    assert entry.updated_at == dt.datetime(2024, 5, 1, 4, 45, 30, 123456, tzinfo=UTC)


@contextmanager
def _local_zone(spec: str) -> Iterator[None]:
    """Run the block with the process's local time zone set to ``spec`` (a POSIX TZ string)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = spec
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_import_the_spec_run_name_counter_json(db: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "run_name_counter.json", OLD_COUNTER)
    with _open(db) as reg:
        report = import_file(reg, source)
        assert report.allocations == 4
        allocations = {(a.counter_key, a.version): a for a in reg.allocations()}
        assert sorted(allocations) == sorted([(KEY, 1), (KEY, 2), (KEY, 7), ("other:key", 3)])
        one = allocations[(KEY, 1)]
        assert (one.status, one.run_id) == ("committed", "run-one")
        assert one.committed_at == dt.datetime(2024, 5, 1, 10, 16, tzinfo=UTC)
        assert allocations[(KEY, 2)].status == "expired"
        seven = allocations[(KEY, 7)]
        assert (seven.status, seven.run_id) == ("committed", "run-seven")
        # next numbers are above everything imported; gaps stay unused
        assert reg.reserve_version(KEY, "new") == 8
        assert reg.reserve_version("other:key", "new") == 4
        # importing again adds nothing and does not move the counters back
        assert import_file(reg, source).allocations == 0
        assert reg.reserve_version(KEY, "newer") == 9


def test_import_keeps_existing_allocations_and_skips_broken_rows(db: Path, tmp_path: Path) -> None:
    source = _write(
        tmp_path / "run_name_counter.json",
        {
            "allocations": [
                {"counter_key": KEY, "version": 1, "run_id": "imported", "status": "committed"},
                {"counter_key": KEY, "version": 4, "status": "weird"},
                {"counter_key": KEY, "run_id": "no-version"},
                {"version": "x"},
            ]
        },
    )
    with _open(db) as reg:
        reg.commit_version(KEY, reg.reserve_version(KEY, "local"), "local-run")
        report = import_file(reg, source)
        assert report.allocations == 1
        assert len(report.skipped) == 2
        statuses = {a.version: (a.status, a.run_id) for a in reg.allocations(KEY)}
        assert statuses == {1: ("committed", "local-run"), 4: ("expired", None)}
        assert reg.reserve_version(KEY, "next") == 5


@pytest.mark.parametrize(
    "content",
    ["not json", "[1, 2, 3]", '{"allocations": 5, "x": 1}', '"text"'],
    ids=["text", "list", "bad-allocations", "string"],
)
def test_import_refuses_other_files(db: Path, tmp_path: Path, content: str) -> None:
    source = tmp_path / "other.json"
    source.write_text(content, encoding="utf-8")
    with _open(db) as reg, pytest.raises(RegistryError, match=r"other\.json"):
        import_file(reg, source)


# ---- export and import round trip -------------------------------------------------------------


def test_export_then_import_round_trips_everything(tmp_path: Path) -> None:
    first_db, second_db = tmp_path / "a" / "r.db", tmp_path / "b" / "r.db"
    with _open(first_db) as reg:
        for i in range(4):
            reg.commit_version(KEY, reg.reserve_version(KEY, f"o{i}"), f"run-{i}")
        reg.reserve_version(KEY, "pending", lease=dt.timedelta(hours=1))
        reg.release_version(KEY, reg.reserve_version(KEY, "quit"), "quit")
        reg.reserve_version("other:key", "o")
        reg.upsert_run(RunIndexEntry("a" * 64, "run-0", "1", LOCAL_URI, "hpo_1", "hpo"))
        reg.upsert_run(RunIndexEntry("a" * 64, "run-x", "2", "http://mlflow:5000"))
        reg.upsert_run(RunIndexEntry("b" * 64, "run-1", "1", LOCAL_URI, None, "train"))
        out = tmp_path / "export.json"
        data = export_registry(reg, out)
        runs, allocations, counters = reg.list_runs(), reg.allocations(), reg.counter_values()

    assert json.loads(out.read_text(encoding="utf-8")) == data
    assert data["format"] == EXPORT_FORMAT
    assert data["source"] == str(first_db)
    assert counters == {KEY: 7, "other:key": 2}

    with _open(second_db) as fresh:
        report = import_file(fresh, out)
        assert (report.runs, report.allocations, report.skipped) == (3, 7, [])
        assert sorted(fresh.list_runs(), key=repr) == sorted(runs, key=repr)
        assert fresh.allocations() == allocations
        assert fresh.counter_values() == counters
        assert fresh.reserve_version(KEY, "next") == 7
        # the still-active reservation came across active: its owner gets it back
        assert fresh.reserve_version(KEY, "pending") == 5


def test_export_without_a_path_writes_nothing(db: Path) -> None:
    with _open(db) as reg:
        data = export_registry(reg)
    assert data["runs"] == data["allocations"] == []
    assert data["counters"] == {}
    assert _siblings(db) == [db.name]


# ---- where the file may live ------------------------------------------------------------------


@pytest.fixture
def nfs_dir() -> Iterator[str]:
    """A folder under the pretend NFS mount; nothing is ever created there."""
    folder = f"/mnt/nfs/mlinfra-test-{os.getpid()}"
    yield folder
    assert not Path(folder).exists()


def _project_with_outputs(example_project: Path, outputs: str) -> Path:
    paths_yaml = example_project / "config" / "paths.yaml"
    text = paths_yaml.read_text(encoding="utf-8")
    assert "base:\n  outputs: outputs\n" in text
    paths_yaml.write_text(
        text.replace("base:\n  outputs: outputs\n", f"base:\n  outputs: {outputs}\n")
    )
    return example_project


LOCAL_ROOT = Mount("/", "ext4", "/dev/vda")
NFS = Mount("/mnt/nfs", "nfs4", "srv:/export")


def test_outputs_on_nfs_are_refused(example_project: Path, nfs_dir: str) -> None:
    root = _project_with_outputs(example_project, f"{nfs_dir}/outputs")
    with pytest.raises(UnsafeStorageError) as caught:
        resolve_registry_url(root, environ={}, mounts=[LOCAL_ROOT, NFS])
    message = str(caught.value)
    expected = f"{nfs_dir}/outputs/cache/mlinfra_registry.db"
    assert caught.value.file == expected
    assert expected in message
    assert "nfs4" in message and "/mnt/nfs" in message
    assert "network file system" in message
    assert "locks" in message  # why
    assert "PostgreSQL" in message and REGISTRY_ENV in message  # what to do instead
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize("fs_type", ["fuse.drive", "fuse", "fuse.blobfuse2", "fuse.sshfs"])
def test_outputs_on_fuse_are_refused(example_project: Path, fs_type: str) -> None:
    root = _project_with_outputs(example_project, "/mnt/gdrive-fuse/outputs")
    mounts = [LOCAL_ROOT, Mount("/mnt/gdrive-fuse", fs_type, "drive")]
    with pytest.raises(UnsafeStorageError, match="FUSE") as caught:
        resolve_registry_url(root, environ={}, mounts=mounts)
    assert fs_type in str(caught.value)


@pytest.mark.parametrize(
    "outputs", ["/content/drive/MyDrive/resume_ner/outputs", "/content/drive/outputs"]
)
def test_google_drive_paths_are_refused_without_a_mount_table(
    example_project: Path, outputs: str
) -> None:
    root = _project_with_outputs(example_project, outputs)
    with pytest.raises(UnsafeStorageError, match="Google Drive"):
        resolve_registry_url(root, environ={}, mounts=[])


def test_outputs_on_local_disk_are_accepted(example_project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "local-outputs"
    root = _project_with_outputs(example_project, str(outputs))
    url = resolve_registry_url(root, environ={}, mounts=[LOCAL_ROOT, NFS])
    assert url == f"sqlite:///{outputs}/cache/mlinfra_registry.db"
    assert not outputs.exists()  # resolving creates nothing


def test_the_default_relative_outputs_resolve_under_the_project(example_project: Path) -> None:
    url = resolve_registry_url(example_project, environ={}, mounts=[LOCAL_ROOT])
    assert url == f"sqlite:///{example_project}/outputs/cache/mlinfra_registry.db"
    assert not (example_project / "outputs").exists()


def test_an_explicit_or_environment_sqlite_url_on_nfs_is_refused(
    example_project: Path, nfs_dir: str
) -> None:
    url = f"sqlite:///{nfs_dir}/registry.db"
    with pytest.raises(UnsafeStorageError):
        resolve_registry_url(example_project, url=url, environ={}, mounts=[LOCAL_ROOT, NFS])
    with pytest.raises(UnsafeStorageError):
        resolve_registry_url(environ={REGISTRY_ENV: url}, mounts=[LOCAL_ROOT, NFS])
    # a server URL is not a file: nothing to refuse
    pg = "postgresql://u@db.internal/registry"
    assert resolve_registry_url(environ={REGISTRY_ENV: pg}, mounts=[LOCAL_ROOT, NFS]) == pg


def test_no_project_and_no_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=REGISTRY_ENV):
        resolve_registry_url(environ={})


def test_check_local_disk(tmp_path: Path) -> None:
    mounts = [
        LOCAL_ROOT,
        NFS,
        Mount("/mnt/nfs/scratch", "ext4", "/dev/sdb1"),  # a local disk mounted inside the share
        Mount("/mnt/smb", "cifs", "//srv/share"),
    ]
    check_local_disk(tmp_path / "study.db", mounts=mounts)
    check_local_disk(Path("/mnt/nfs/scratch/study.db"), mounts=mounts)
    check_local_disk(Path("/mnt/nfs2/study.db"), mounts=mounts)  # not under /mnt/nfs
    for bad in ("/mnt/nfs/study.db", "/mnt/nfs", "/mnt/smb/a/b/study.db"):
        with pytest.raises(UnsafeStorageError, match="optuna study") as caught:
            check_local_disk(Path(bad), mounts=mounts, what="optuna study")
        assert caught.value.file == bad
    with pytest.raises(UnsafeStorageError, match="Google Drive"):
        check_local_disk(Path("/content/drive/MyDrive/x.db"), mounts=[])
    assert network_filesystem_reason("/content/drivers/x.db", []) is None
    assert network_filesystem_reason("/srv/x.db", []) is None  # no table: nothing known


def test_check_local_disk_reads_the_real_mount_table(tmp_path: Path) -> None:
    # this test suite keeps its files on local disk; the default mount table must agree
    check_local_disk(tmp_path / "registry.db")


def test_a_symlink_onto_a_network_mount_is_refused(tmp_path: Path, nfs_dir: str) -> None:
    link = tmp_path / "cache"
    link.symlink_to(nfs_dir, target_is_directory=True)  # dangling: nothing is created there
    with pytest.raises(UnsafeStorageError):
        check_local_disk(link / "mlinfra_registry.db", mounts=[LOCAL_ROOT, NFS])
