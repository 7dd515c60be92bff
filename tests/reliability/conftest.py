"""Fixtures of the fault matrix: a clock that can step back, and child processes to SIGKILL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import Children, Clock

if sys.platform == "win32":  # pragma: no cover - SIGKILL and fork-free children are POSIX
    collect_ignore_glob = ["test_fault_*.py"]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """``mlinfra.core.timeutil.utc_now`` (and so every timestamp mlinfra writes) reads this."""
    from mlinfra.core import timeutil

    fake = Clock()
    monkeypatch.setattr(timeutil, "_dt", fake.module)
    return fake


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    group = Children(tmp_path)
    try:
        yield group
    finally:
        group.kill_all()
