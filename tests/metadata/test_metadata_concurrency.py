"""Real processes: concurrent updaters lose nothing, readers never see a partial file, and a
writer killed with SIGKILL mid-update leaves the previous complete file."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest

from mlinfra.metadata import read_metadata, update_metadata, update_status

WORKERS = 8
UPDATES = 25
CTX = multiprocessing.get_context("spawn")  # no fork of a threaded test process


def _updater(folder: str, worker: int, start: Barrier) -> None:
    start.wait(60)  # every process is imported and ready: the updates really overlap
    for i in range(UPDATES):
        update_metadata(folder, {f"field_{worker}": i, "workers": {f"w{worker}": i}})
        if i % 5 == 0:
            update_status(folder, f"stage_{worker}", completed=True, step=i)


def _reader(folder: str, start: Barrier, stop: Event, out: multiprocessing.Queue[object]) -> None:
    start.wait(60)
    file = Path(folder) / "metadata.json"
    reads, problems = 0, []
    while not stop.is_set():
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            continue
        try:
            value = json.loads(raw)
            assert isinstance(value, dict) and value["schema"] == "mlinfra.metadata/1"
        except Exception as exc:  # any partial or bad read is a failure
            problems.append(f"{type(exc).__name__}: {raw[:80]!r}")
        reads += 1
    out.put((reads, problems))


def test_concurrent_updates_of_different_fields_lose_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    update_metadata(folder, {"seed": True})
    start, stop = CTX.Barrier(WORKERS + 2), CTX.Event()
    results: multiprocessing.Queue[object] = CTX.Queue()
    reader = CTX.Process(target=_reader, args=(str(folder), start, stop, results))
    workers = [CTX.Process(target=_updater, args=(str(folder), w, start)) for w in range(WORKERS)]
    for proc in [reader, *workers]:
        proc.start()
    start.wait(60)
    for proc in workers:
        proc.join(90)
        assert proc.exitcode == 0
    stop.set()
    reads, problems = results.get(timeout=30)  # type: ignore[misc]
    reader.join(30)

    assert problems == []
    assert reads > 0
    meta = read_metadata(folder)
    assert meta["seed"] is True
    assert meta["workers"] == {f"w{w}": UPDATES - 1 for w in range(WORKERS)}
    for w in range(WORKERS):
        assert meta[f"field_{w}"] == UPDATES - 1
        assert meta["status"][f"stage_{w}"]["step"] == 20
        assert meta["status"][f"stage_{w}"]["completed"] is True
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", "metadata.json.lock"]


_LOOP = """
import sys
from mlinfra.metadata import update_metadata
folder = sys.argv[1]
i = 0
while True:
    i += 1
    update_metadata(folder, {"counter": i, "blob": "x" * 200_000, "list": list(range(2000))})
"""


@pytest.mark.parametrize("min_count", [3, 10, 25])
def test_writer_killed_mid_update_leaves_the_previous_file(tmp_path: Path, min_count: int) -> None:
    folder = tmp_path / "out"
    update_metadata(folder, {"counter": 0, "kept": "from before"})
    proc = subprocess.Popen([sys.executable, "-c", _LOOP, str(folder)])
    try:
        deadline = time.monotonic() + 60
        while read_metadata(folder)["counter"] < min_count:
            assert proc.poll() is None, "the writer died on its own"
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.005)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    meta = read_metadata(folder)  # a complete file: one of the writer's versions
    assert meta["counter"] >= min_count
    assert meta["kept"] == "from before"
    assert meta["blob"] == "x" * 200_000
    # the dead writer holds no lock: the next update goes through at once
    after = update_metadata(folder, {"after": True}, lock_timeout=5)
    assert after["counter"] == meta["counter"] and after["after"] is True


_HOLDER = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])
with lock:
    print("held", flush=True)
    time.sleep(30)
"""


def test_a_writer_that_cannot_get_the_lock_times_out_and_changes_nothing(tmp_path: Path) -> None:
    from mlinfra.errors import MetadataTimeoutError

    folder = tmp_path / "run"
    update_metadata(folder, {"kept": 1})
    before = (folder / "metadata.json").read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder / "metadata.json.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(MetadataTimeoutError, match=r"metadata\.json\.lock.*retry") as info:
            update_metadata(folder, {"kept": 2}, lock_timeout=0.3)
        assert isinstance(info.value, TimeoutError)
    finally:
        holder.kill()
        holder.communicate(timeout=30)  # closes the pipe
    assert (folder / "metadata.json").read_bytes() == before
