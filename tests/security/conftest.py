"""Fixtures of the bad-input corpus (``tests/security/``).

* ``no_tracking_env``: ``MLFLOW_*`` and ``MLINFRA_*`` variables removed (autouse), so no test
  reaches a tracking server or project configured on the developer's machine.
* ``work_cwd``: an empty working folder the test runs in; it must still be empty afterwards.
* ``nothing_written``: ``with nothing_written(root, ...):`` records every path below each root
  (type, size, mode, modification time in ns) and asserts afterwards that the trees are identical
  and that no ``outputs/`` or ``mlruns/`` folder appeared.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

_ENV_PREFIXES = ("MLFLOW_", "MLINFRA_")

Snapshot = dict[str, tuple[str, int, int, int]]


def take_snapshot(root: Path) -> Snapshot:
    """Every path below ``root`` (``root`` itself too): kind, size, mode, mtime in ns."""
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, ""]:
            path = Path(dirpath) / name if name else Path(dirpath)
            st = path.lstat()
            kind = "d" if path.is_dir() and not path.is_symlink() else "f"
            size = 0 if kind == "d" else st.st_size
            out[str(path.relative_to(root))] = (kind, size, st.st_mode, st.st_mtime_ns)
    return out


@pytest.fixture(autouse=True)
def no_tracking_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture
def work_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder (outside the project copy) to run commands in."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def _assert_unchanged(root: Path, before: Snapshot) -> None:
    """``root`` is byte-for-byte what ``before`` recorded, and holds no outputs/ or mlruns/."""
    after = take_snapshot(root)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
    assert not (added or removed or changed), (
        f"the tree below {root} changed: added {added[:10]}, removed {removed[:10]}, "
        f"changed {changed[:10]}"
    )
    for name in ("outputs", "mlruns"):
        assert not (root / name).exists(), f"{root / name} was created"


@pytest.fixture
def nothing_written() -> Callable[..., AbstractContextManager[None]]:
    @contextmanager
    def guard(*roots: Path) -> Iterator[None]:
        before = [take_snapshot(root) for root in roots]
        yield
        for root, snap in zip(roots, before, strict=True):
            _assert_unchanged(root, snap)

    return guard
