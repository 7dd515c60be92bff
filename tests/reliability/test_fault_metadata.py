"""Fault matrix of ``mlinfra.metadata.update_metadata``: disk full and permission denied at the
OS boundary of its atomic write (``os.open`` of the temporary file, ``os.fsync``,
``os.replace``), and the clock stepping back. (SIGKILL mid-update and a dead lock holder are
tests/metadata/test_metadata_concurrency.py.)

Tests may run as root, where ``chmod`` stops no write: a denied write is injected as the
``PermissionError`` the kernel would raise, at the same boundary as ENOSPC.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fault_helpers import FAULTS, Clock, FailAt, leftovers, os_error, regular_fd

from mlinfra.metadata import read_metadata, update_metadata
from mlinfra.registry import SqlRegistry

BOUNDARIES = ["open-temp", "fsync", "replace"]


def _is_temp(path: object, *_: object, **__: object) -> bool:
    return Path(os.fspath(path)).name.startswith(".metadata.json.")  # type: ignore[arg-type]


def _inject(monkeypatch: pytest.MonkeyPatch, boundary: str, code: int) -> FailAt:
    if boundary == "open-temp":  # tempfile.mkstemp creates the temporary file with os.open
        fail = FailAt(os.open, 1, lambda path, *a, **k: os_error(code, os.fspath(path)), _is_temp)
        monkeypatch.setattr(os, "open", fail)
    elif boundary == "fsync":  # the kernel's error names no file
        fail = FailAt(os.fsync, 1, lambda fd: os_error(code), regular_fd)
        monkeypatch.setattr(os, "fsync", fail)
    else:
        fail = FailAt(
            os.replace, 1, lambda src, dst, **k: os_error(code, os.fspath(src), os.fspath(dst))
        )
        monkeypatch.setattr(os, "replace", fail)
    return fail


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "outputs" / "run"
    update_metadata(out, {"kept": "from before", "counter": 1})
    return out


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_write_fault_leaves_the_previous_file_and_no_temporary(
    folder: Path, monkeypatch: pytest.MonkeyPatch, boundary: str, fault: str
) -> None:
    before = (folder / "metadata.json").read_bytes()
    fail = _inject(monkeypatch, boundary, FAULTS[fault])
    with pytest.raises(OSError) as info:
        update_metadata(folder, {"counter": 2, "new": True})
    assert fail.fired and info.value.errno == FAULTS[fault]
    monkeypatch.undo()
    assert (folder / "metadata.json").read_bytes() == before  # byte-identical, parses
    assert read_metadata(folder)["counter"] == 1
    assert leftovers(folder) == []
    after = update_metadata(folder, {"counter": 2}, lock_timeout=5)  # the lock was released
    assert after["counter"] == 2 and after["kept"] == "from before"


@pytest.mark.parametrize(
    "boundary",
    [
        "open-temp",
        "fsync",
        "replace",
    ],
)
def test_disk_full_error_names_the_metadata_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch, boundary: str
) -> None:
    _inject(monkeypatch, boundary, FAULTS["disk-full"])
    with pytest.raises(OSError) as info:
        update_metadata(folder, {"counter": 2})
    assert str(folder) in str(info.value)


def test_clock_stepping_back_keeps_the_latest_content(folder: Path, clock: Clock) -> None:
    first = read_metadata(folder)
    clock.step_back(1)
    second = update_metadata(folder, {"counter": 2})
    clock.step_back(1)
    third = update_metadata(folder, {"counter": 3, "status": {"train": {"done": True}}})
    meta = read_metadata(folder)
    assert meta == third and meta["counter"] == 3 and meta["kept"] == "from before"
    assert meta["created_at"] == first["created_at"]  # set once, never rewritten
    # the stamps of one file never go backwards, even when the clock does
    assert first["last_updated"] < second["last_updated"] < third["last_updated"]


def test_clock_stepping_back_keeps_the_metadata_index_in_line(tmp_path: Path, clock: Clock) -> None:
    root = tmp_path / "project"
    folder = root / "outputs" / "run"
    registry = SqlRegistry(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        update_metadata(folder, {"mlflow": {"run_id": "run-old"}}, registry=registry, root_dir=root)
        clock.step_back(1)
        update_metadata(folder, {"mlflow": {"run_id": "run-new"}}, registry=registry, root_dir=root)
        assert read_metadata(folder)["mlflow"]["run_id"] == "run-new"
        [entry] = registry.find_outputs()
        assert entry.run_id == "run-new"
    finally:
        registry.close()
