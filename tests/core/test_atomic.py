"""Tests for mlinfra.core.atomic: atomic, durable file writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mlinfra.core import atomic
from mlinfra.core.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    fsync_dir,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- happy paths


def test_write_bytes_creates_file_and_returns_path(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    result = atomic_write_bytes(target, b"\x00\x01payload")
    assert result == target
    assert isinstance(result, Path)
    assert target.read_bytes() == b"\x00\x01payload"
    assert _names(tmp_path) == ["out.bin"]


def test_write_accepts_string_paths(tmp_path: Path) -> None:
    target = tmp_path / "s.txt"
    assert atomic_write_text(str(target), "hello") == target
    assert target.read_text(encoding="utf-8") == "hello"


def test_write_replaces_existing_content(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old content that is longer", encoding="utf-8")
    atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert _names(tmp_path) == ["f.txt"]


def test_write_text_encoding(tmp_path: Path) -> None:
    target = tmp_path / "latin.txt"
    atomic_write_text(target, "café", encoding="latin-1")
    assert target.read_bytes() == b"caf\xe9"
    atomic_write_text(target, "café")
    assert target.read_bytes() == "café".encode()


def test_write_json_sorted_indented_with_trailing_newline(tmp_path: Path) -> None:
    target = tmp_path / "v.json"
    atomic_write_json(target, {"b": 1, "a": ["é", None]})
    text = target.read_text(encoding="utf-8")
    assert text == '{\n  "a": [\n    "é",\n    null\n  ],\n  "b": 1\n}\n'
    assert json.loads(text) == {"a": ["é", None], "b": 1}


def test_write_json_custom_indent(tmp_path: Path) -> None:
    target = tmp_path / "v.json"
    atomic_write_json(target, {"a": 1}, indent=4)
    assert target.read_text(encoding="utf-8") == '{\n    "a": 1\n}\n'


# --------------------------------------------------------------------------- permissions


def test_new_file_gets_0o644(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "n.txt", "x")
    finally:
        os.umask(old_umask)
    assert _mode(tmp_path / "n.txt") == 0o644


def test_replacing_keeps_the_old_files_mode(tmp_path: Path) -> None:
    target = tmp_path / "secret.txt"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o600)
    atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert _mode(target) == 0o600

    target.chmod(0o751)
    atomic_write_json(target, [1])
    assert _mode(target) == 0o751


def test_explicit_mode_wins(tmp_path: Path) -> None:
    target = tmp_path / "m.txt"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o644)
    atomic_write_bytes(target, b"x", mode=0o640)
    assert _mode(target) == 0o640
    atomic_write_text(tmp_path / "fresh.txt", "y", mode=0o600)
    assert _mode(tmp_path / "fresh.txt") == 0o600


# --------------------------------------------------------------------------- failures


def _raise_os_error(*args: object, **kwargs: object) -> None:
    raise OSError("simulated rename failure")


@pytest.mark.parametrize("patch", ["os.replace", "Path.replace"])
def test_failed_rename_keeps_old_content_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patch: str
) -> None:
    target = tmp_path / "state.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o600)
    if patch == "os.replace":
        monkeypatch.setattr(os, "replace", _raise_os_error)
    else:
        monkeypatch.setattr(Path, "replace", _raise_os_error)

    with pytest.raises(OSError, match="simulated rename failure"):
        atomic_write_text(target, "new")

    assert target.read_text(encoding="utf-8") == "old"
    assert _mode(target) == 0o600
    assert _names(tmp_path) == ["state.json"]


def test_failed_rename_of_new_file_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Path, "replace", _raise_os_error)
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "new.bin", b"data")
    assert _names(tmp_path) == []


def test_failed_fsync_keeps_old_content_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old", encoding="utf-8")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert _names(tmp_path) == ["f.txt"]


def test_interrupt_during_write_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BaseException (Ctrl-C) must also remove the temporary file."""
    target = tmp_path / "f.txt"
    target.write_text("old", encoding="utf-8")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "chmod", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert _names(tmp_path) == ["f.txt"]


def test_json_that_cannot_be_encoded_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "v.json"
    target.write_text("{}\n", encoding="utf-8")
    with pytest.raises(ValueError):
        atomic_write_json(target, {"x": float("nan")})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert target.read_text(encoding="utf-8") == "{}\n"
    assert _names(tmp_path) == ["v.json"]


def test_unencodable_text_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "snowman ☃", encoding="ascii")
    assert _names(tmp_path) == []


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "no" / "such" / "f.txt", "x")
    assert _names(tmp_path) == []


def test_temp_file_lives_in_destination_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename must stay on one file system: the temp file is a sibling of the target."""
    seen: list[tuple[Path, Path]] = []
    real_replace = Path.replace

    def spy(self: Path, target: Path) -> Path:
        seen.append((Path(self), Path(target)))
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", spy)
    target = tmp_path / "t.txt"
    atomic_write_text(target, "x")
    assert len(seen) == 1
    tmp, dest = seen[0]
    assert dest == target
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(".t.txt.")
    assert tmp.name.endswith(".tmp")
    assert not tmp.exists()


def test_fsync_dir_tolerates_missing_folder(tmp_path: Path) -> None:
    fsync_dir(tmp_path / "does-not-exist")
    fsync_dir(tmp_path)
    assert tmp_path.is_dir()
