"""Helpers of the fault-matrix tests (imported as a plain module): fault injectors at the OS
boundary, a clock that steps back, child processes killed with SIGKILL, and invariant checks."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FAULTS = {
    "disk-full": errno.ENOSPC,
    "permission-denied": errno.EACCES,
}


def os_error(code: int, filename: str | None = None, filename2: str | None = None) -> OSError:
    """The error the kernel gives (``PermissionError`` for EACCES), as the OS call raises it."""
    if filename2 is not None:
        return OSError(code, os.strerror(code), filename, None, filename2)
    if filename is not None:
        return OSError(code, os.strerror(code), filename)
    return OSError(code, os.strerror(code))


class FailAt:
    """Wraps an OS function: the ``nth`` call for which ``when(*args)`` holds raises ``error``
    (built by ``make_error(*args)``); every other call goes through."""

    def __init__(
        self,
        real: Callable[..., Any],
        nth: int,
        make_error: Callable[..., OSError],
        when: Callable[..., bool] = lambda *a, **k: True,
    ) -> None:
        self.real, self.nth, self.make_error, self.when = real, nth, make_error, when
        self.calls = 0
        self.fired = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.when(*args, **kwargs):
            self.calls += 1
            if self.calls == self.nth:
                self.fired = True
                raise self.make_error(*args, **kwargs)
        return self.real(*args, **kwargs)


def regular_fd(fd: int, *_: Any, **__: Any) -> bool:
    """Whether ``fd`` is a regular file (``fsync`` of folders is best effort in mlinfra)."""
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def inject_fsync(monkeypatch: pytest.MonkeyPatch, code: int, nth: int = 1) -> FailAt:
    """``os.fsync`` of the ``nth`` regular file raises ``code`` (as the kernel does: no path)."""
    fail = FailAt(os.fsync, nth, lambda fd: os_error(code), regular_fd)
    monkeypatch.setattr(os, "fsync", fail)
    return fail


# ---- the clock --------------------------------------------------------------------------------


class Clock:
    """Replaces the ``datetime`` module that :func:`mlinfra.core.timeutil.utc_now` reads: the
    time it gives is the real time plus ``offset`` (set ``offset`` negative to step back)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)
        clock = self

        class _Shifted(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> Any:
                return dt.datetime.now(tz) + clock.offset

        self.module = types.SimpleNamespace(
            datetime=_Shifted, timezone=dt.timezone, timedelta=dt.timedelta
        )

    def step_back(self, hours: float = 1.0) -> None:
        self.offset -= dt.timedelta(hours=hours)


# ---- child processes --------------------------------------------------------------------------


class Children:
    """Child processes of one test; whatever still runs at the end is killed (by its pid)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, script: str, *args: object) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.folder,
        )
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=10)


def wait_for(
    condition: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[str] | None = None,
    timeout: float = 60,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"the child exited ({proc.returncode}) before {what}:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def sigkill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the child and reap it."""
    import signal

    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


# ---- invariants -------------------------------------------------------------------------------


def integrity(path: Path) -> list[str]:
    """``PRAGMA integrity_check`` of an SQLite file, read-only."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def tree(root: Path, *, internal: bool = True) -> dict[str, bytes]:
    """Every file below ``root`` (relative POSIX path → content); without the store's own
    files (``.<name>.mlinfra*``) unless ``internal``."""
    if not root.exists():
        return {}
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file():
            continue
        if not internal and any(part.startswith(".") and ".mlinfra" in part for part in p.parts):
            continue
        out[rel] = p.read_bytes()
    return out


def all_json_parses(root: Path) -> None:
    """Every ``*.json`` file below ``root`` is whole JSON (temporaries are ``*.tmp``)."""
    for path in root.rglob("*.json"):
        json.loads(path.read_bytes())


def leftovers(folder: Path) -> list[str]:
    """Temporary files of atomic writes left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
