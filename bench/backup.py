"""Backup benchmark: mlinfra's incremental backup of an HPO study folder against a full
``shutil.copytree``, side by side in one run, printed as a markdown table.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/backup.py            # 1,000 files of 1 MiB, 200-trial study.db, 5 runs
    .venv/bin/python bench/backup.py --quick    # 200 files of 256 KiB, 50 trials, 3 runs

Everything lives in a temporary folder that is removed at the end; a second folder on the same
disk stands in for Google Drive (on Colab the peer's full copy crosses the network, so the local
figures are the peer's best case). What is measured, each the median of ``n`` timed runs:

* **Incremental backup, 1 changed file among N** (the folder also holds ``study.db``, unchanged):
  before each run (untimed) one trial file is rewritten. mlinfra:
  ``DriveBackupStore.backup(study_dir)``: it stats every file against its manifest, uploads the
  changed file to staging, reads it back, commits through its journal, moves it into place and
  fsyncs. Peer: ``shutil.copytree`` of the whole folder to a fresh destination (which
  byte-copies ``study.db``, the unsafe way the specification's system did it). Target: at least
  20 times faster.
* **Incremental backup, 1 changed file plus a new trial in study.db**: the same, with one Optuna
  trial added (untimed) before each run, so mlinfra also snapshots ``study.db`` through SQLite's
  backup API and verifies the snapshot (integrity check, every row read back, the study loaded
  through Optuna and its trials counted) before uploading it.
* **Backup with nothing changed**: mlinfra's backup when nothing changed since the last one,
  against the same ``copytree``.
* **First backup (everything new)**: mlinfra's full first backup (every file hashed, copied,
  read back and fsynced) against ``copytree``, for the cost of those guarantees.

Checks outside the timed interval: after each incremental run exactly 2 files were copied, the
backed-up trial file has the new content, and the backed-up ``study.db`` holds every trial.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _jsonrows
from _report import commit, progress

REPO = Path(__file__).resolve().parent.parent
TARGET_SPEEDUP = 20.0


@dataclass(frozen=True)
class Row:
    """One measurement: mlinfra's times and the peer's, in seconds."""

    measurement: str
    ours: tuple[float, ...]
    peer: tuple[float, ...]

    @property
    def speedup(self) -> float:
        return statistics.median(self.peer) / statistics.median(self.ours)

    def line(self) -> str:
        ours, peer = statistics.median(self.ours), statistics.median(self.peer)
        return (
            f"| {self.measurement} | {ours * 1e3:,.1f} ms | {len(self.ours)} | "
            f"`shutil.copytree` (full copy) | {peer * 1e3:,.1f} ms | {len(self.peer)} | "
            f"{self.speedup:,.1f}× |"
        )


def _make_study_folder(study: Path, files: int, size: int, trials: int) -> list[Path]:
    """A study folder: ``files`` trial files of ``size`` bytes and a study.db with ``trials``."""
    import optuna

    made = []
    per_trial = 10
    for i in range(files):
        folder = study / f"trial-{i // per_trial:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{i % per_trial}.bin"
        path.write_bytes(os.urandom(size))
        made.append(path)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = optuna.create_study(storage=f"sqlite:///{study / 'study.db'}", study_name="s")
    db.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=trials)
    return made


def _add_trial(study: Path) -> None:
    import optuna

    loaded = optuna.load_study(study_name="s", storage=f"sqlite:///{study / 'study.db'}")
    loaded.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _copytree(study: Path, scratch: Path) -> float:
    dest = scratch / "copytree"
    if dest.exists():
        shutil.rmtree(dest)
    took = _timed(lambda: shutil.copytree(study, dest))
    shutil.rmtree(dest)
    return took


def _trials_in(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM trials").fetchone()[0])
    finally:
        conn.close()


def _incremental(
    store: Any,
    study: Path,
    project: Path,
    drive: Path,
    scratch: Path,
    made: list[Path],
    repeat: int,
    with_trial: bool,
) -> tuple[list[float], list[float]]:
    """Time ``repeat`` incremental backups, each after one file changed (and a trial was added)."""
    ours, peer = [], []
    for i in range(repeat):
        changed = made[(i * 7919 + (1 if with_trial else 0)) % len(made)]
        changed.write_bytes(os.urandom(changed.stat().st_size))
        if with_trial:
            _add_trial(study)
        result = None

        def run() -> None:
            nonlocal result
            result = store.backup(study).raise_for_error()

        ours.append(_timed(run))
        peer.append(_copytree(study, scratch))
        assert result is not None and result.copied == (2 if with_trial else 1), result
        assert (drive / changed.relative_to(project)).read_bytes() == changed.read_bytes()
        if with_trial:
            backed = _trials_in(drive / "outputs/hpo/study-1/study.db")
            assert backed == _trials_in(study / "study.db")
    return ours, peer


def _measure(files: int, size: int, trials: int, repeat: int) -> tuple[list[Row], list[str]]:
    from mlinfra.storage import DriveBackupStore

    with tempfile.TemporaryDirectory(prefix="mlinfra-bench-backup-") as tmp:
        base = Path(tmp)
        project = base / "project"
        study = project / "outputs" / "hpo" / "study-1"
        drive = base / "MyDrive" / "project"
        scratch = base / "scratch"
        scratch.mkdir()
        progress(f"making {files:,} files of {size // 1024:,} KiB and a {trials}-trial study")
        made = _make_study_folder(study, files, size, trials)
        store = DriveBackupStore(project, drive)

        first_ours, first_peer = [], []
        for _ in range(repeat):
            if drive.exists():
                shutil.rmtree(drive)
            first_ours.append(_timed(lambda: store.backup(study).raise_for_error()))
            first_peer.append(_copytree(study, scratch))
        progress(f"first backup: {statistics.median(first_ours):.3f} s")

        checks: list[str] = []
        args = (store, study, project, drive, scratch, made, repeat)
        inc_ours, inc_peer = _incremental(*args, False)
        checks.append(
            f"each of {repeat} runs with study.db unchanged copied exactly 1 file, with its new "
            "content"
        )
        progress(f"incremental backup: {statistics.median(inc_ours) * 1e3:.1f} ms")
        db_ours, db_peer = _incremental(*args, True)
        checks.append(
            f"each of {repeat} runs with a new trial copied exactly 2 files (the trial file and "
            "study.db); the backed-up study.db holds every trial"
        )
        progress(f"incremental backup with a new trial: {statistics.median(db_ours) * 1e3:.1f} ms")

        same_ours, same_peer = [], []
        for _ in range(repeat):
            same_ours.append(_timed(lambda: store.backup(study).raise_for_error()))
            same_peer.append(_copytree(study, scratch))
        rows = [
            Row(
                f"incremental backup: 1 changed file among {files:,} (study.db unchanged)",
                tuple(inc_ours),
                tuple(inc_peer),
            ),
            Row(
                "incremental backup: 1 changed file + a new trial in study.db (snapshot, "
                "Optuna read-back)",
                tuple(db_ours),
                tuple(db_peer),
            ),
            Row("backup with nothing changed", tuple(same_ours), tuple(same_peer)),
            Row(
                "first backup (everything new; hashed, read back, fsynced)",
                tuple(first_ours),
                tuple(first_peer),
            ),
        ]
        return rows, checks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 files of 256 KiB, 3 runs")
    parser.add_argument("-n", "--repeat", type=int, help="timed runs each (default 5, quick 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the headline rows as JSON")
    args = parser.parse_args(argv)
    files, size, trials = (200, 256 * 1024, 50) if args.quick else (1_000, 1024 * 1024, 200)
    repeat = args.repeat or (3 if args.quick else 5)
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    warnings.filterwarnings("ignore")
    logging.getLogger("optuna").setLevel(logging.WARNING)

    began = time.perf_counter()
    print("# mlinfra backup benchmark", flush=True)
    rows, checks = _measure(files, size, trials, repeat)
    from importlib.metadata import version

    print()
    print(f"- machine: {os.cpu_count()} CPUs (nproc), {platform.platform()}")
    print(
        f"- python: {platform.python_version()}; optuna {version('optuna')}, "
        f"SQLite {sqlite3.sqlite_version}"
    )
    print(f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"- commit: {commit()}")
    command = [os.path.relpath(sys.executable), *sys.argv]
    print(f"- command: `{' '.join(command)}` (working directory {Path.cwd()})")
    print(
        f"- data: {files:,} files of {size // 1024:,} KiB plus a study.db of {trials}+ trials, "
        f"in a temporary folder under {tempfile.gettempdir()} (source and stand-in Drive on the "
        f"same disk); whole run {time.perf_counter() - began:.0f} s"
    )
    print()
    print("| measurement | mlinfra | n | peer | peer | n | speed-up (peer / mlinfra) |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for row in rows:
        print(row.line())
    print()
    for line in checks:
        print(f"- check: {line}")
    print()
    speedup = rows[0].speedup
    verdict = "meets" if speedup >= TARGET_SPEEDUP else "MISSES"
    print(
        f"Incremental backup is {speedup:,.1f}× faster than a full copy, which {verdict} the "
        f"{TARGET_SPEEDUP:g}× target."
    )
    json_rows = [
        _jsonrows.row(
            "backup",
            row.measurement,
            statistics.median(row.ours) * 1e3,
            "ms",
            "`shutil.copytree` (full copy)",
            statistics.median(row.peer) * 1e3,
            target=f"ratio ≤ {1 / TARGET_SPEEDUP:g} (≥ {TARGET_SPEEDUP:g}× faster)"
            if i == 0
            else None,
            met=speedup >= TARGET_SPEEDUP if i == 0 else None,
        )
        for i, row in enumerate(rows)
    ]
    _jsonrows.write(args.json, json_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
