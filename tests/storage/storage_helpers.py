"""Helpers shared by the storage tests (imported as a plain module)."""

from __future__ import annotations

import os
from pathlib import Path


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative POSIX path → content)."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def make_study(db: Path, n_trials: int, name: str = "s") -> None:
    """Create (or extend) the Optuna study ``name`` in the SQLite file ``db``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{db}", study_name=name, load_if_exists=True)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0) ** 2, n_trials=n_trials)


def count_trials(db: Path, name: str = "s") -> int:
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    try:
        return len(optuna.load_study(study_name=name, storage=storage).trials)
    finally:
        storage.remove_session()
        storage.engine.dispose()


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` older."""
    st = path.stat()
    delta = int(seconds * 1e9)
    os.utime(path, ns=(st.st_atime_ns - delta, st.st_mtime_ns - delta))
