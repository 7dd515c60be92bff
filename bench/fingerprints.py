"""Data fingerprint benchmark: mlinfra against the machine's read speed and ``sha256sum``.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/fingerprints.py            # 1 GiB file, 10,000 x 4 KiB files
    .venv/bin/python bench/fingerprints.py --quick    # 256 MiB file, 2,000 x 4 KiB files

What is measured (wall time, median of several runs, everything in the page cache after one
untimed warm-up read):

* one large file: ``data_fingerprint(FILE)`` against ``cat FILE > /dev/null`` (the read speed
  from the page cache: no fingerprint can be faster than reading) and ``sha256sum FILE``;
* a tree of small files: a cold ``data_fingerprint`` (no stat cache: every file read) against
  ``find TREE -type f -exec cat {} +`` and ``find ... -exec sha256sum {} +``; a warm one (the
  tree unchanged since the stat cache was written) against a bare stat scan of the tree
  (``os.walk`` + ``os.stat`` of every file), the least any change detection must do.

The files are written to a temporary folder under ``--dir`` (default: the system's temporary
folder) and removed afterwards. This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import _jsonrows

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mlinfra.fingerprints import data_fingerprint  # noqa: E402
from mlinfra.fingerprints.data import RACY_WINDOW_NS  # noqa: E402

TARGET_READ_FRACTION = 0.8
TARGET_WARM_SECONDS = 0.1


def _median(func: Callable[[], object], repeat: int) -> float:
    func()  # warm-up: page cache, imports
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _shell(command: str) -> Callable[[], object]:
    def run() -> None:
        subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)

    return run


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as handle:
        for _ in range(size >> 20):
            handle.write(block)
            block = block[1:] + block[:1]  # not the same block over and over


def _make_tree(root: Path, count: int, size: int) -> None:
    per_folder = 100
    old = time.time() - 2 * RACY_WINDOW_NS / 1e9 - 60  # older than the racy window
    for i in range(count):
        folder = root / f"part-{i // per_folder:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"file-{i:05d}.bin"
        path.write_bytes(os.urandom(size))
        os.utime(path, (old, old))


def _stat_scan(root: Path) -> int:
    count = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            os.stat(os.path.join(folder, name))  # noqa: PTH116, PTH118
            count += 1
    return count


def _row(label: str, ours: float, peer_label: str, peer: float, note: str = "") -> str:
    ratio = peer / ours if ours else float("inf")
    return f"| {label} | {ours:.3f} | {peer_label} | {peer:.3f} | {ratio:.2f} | {note} |"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer repetitions")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the test data")
    parser.add_argument("--json", metavar="PATH", help="also write the headline rows as JSON")
    args = parser.parse_args(argv)
    big_size = (256 if args.quick else 1024) << 20
    files = 2000 if args.quick else 10_000
    repeat = 3 if args.quick else 5

    work = Path(tempfile.mkdtemp(prefix="mlinfra-bench-fp-", dir=args.dir))
    try:
        big = work / "big.bin"
        tree = work / "tree"
        cache = work / "cache"
        print(
            f"writing {big_size >> 20} MiB and {files} x 4 KiB files under {work} ...", flush=True
        )
        _make_file(big, big_size)
        _make_tree(tree, files, 4096)

        t_cat = _median(_shell(f"cat '{big}' > /dev/null"), repeat)
        t_sha = _median(_shell(f"sha256sum '{big}'"), max(1, repeat // 2))
        t_ours = _median(lambda: data_fingerprint(big), repeat)

        t_tree_cat = _median(_shell(f"find '{tree}' -type f -exec cat {{}} + > /dev/null"), repeat)
        t_tree_sha = _median(_shell(f"find '{tree}' -type f -exec sha256sum {{}} +"), repeat)
        t_cold = _median(lambda: data_fingerprint(tree), repeat)
        data_fingerprint(tree, cache_dir=cache)  # writes the stat cache
        t_warm = _median(lambda: data_fingerprint(tree, cache_dir=cache), repeat * 2)
        t_scan = _median(lambda: _stat_scan(tree), repeat * 2)
        warm = data_fingerprint(tree, cache_dir=cache)
        assert warm.bytes_read == 0, "the warm run read files: the stat cache was not used"
    finally:
        shutil.rmtree(work, ignore_errors=True)

    gib = big_size / (1 << 30)
    print()
    print(f"# mlinfra data fingerprint benchmark (median of {repeat} runs after a warm-up)")
    print()
    print(f"- machine: {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"- python: {platform.python_version()} ({sys.executable})")
    print(f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`")
    print()
    print("| mlinfra | time (s) | peer | time (s) | peer / mlinfra | note |")
    print("|---|---:|---|---:|---:|---|")
    read_fraction = t_cat / t_ours
    print(
        _row(
            f"`data_fingerprint`, {big_size >> 20} MiB file",
            t_ours,
            "`cat FILE > /dev/null`",
            t_cat,
            f"{read_fraction:.0%} of read speed ({gib / t_ours:.2f} GiB/s; target "
            f"{TARGET_READ_FRACTION:.0%})",
        )
    )
    print(_row(f"`data_fingerprint`, {big_size >> 20} MiB file", t_ours, "`sha256sum FILE`", t_sha))
    print(
        _row(
            f"`data_fingerprint`, {files} x 4 KiB, cold",
            t_cold,
            "`find -exec cat`",
            t_tree_cat,
            "every file read and hashed",
        )
    )
    print(
        _row(
            f"`data_fingerprint`, {files} x 4 KiB, cold",
            t_cold,
            "`find -exec sha256sum`",
            t_tree_sha,
        )
    )
    print(
        _row(
            f"`data_fingerprint`, {files} x 4 KiB, warm",
            t_warm,
            "bare stat scan (`os.walk` + `os.stat`)",
            t_scan,
            f"unchanged tree, stat cache (target < {TARGET_WARM_SECONDS} s)",
        )
    )
    print()
    verdicts = [
        f"large file at {read_fraction:.0%} of read speed "
        + ("(target met)" if read_fraction >= TARGET_READ_FRACTION else "(TARGET MISSED)"),
        f"warm re-fingerprint {t_warm:.3f} s "
        + ("(target met)" if t_warm < TARGET_WARM_SECONDS else "(TARGET MISSED)"),
    ]
    print("- " + "; ".join(verdicts))
    big_label = f"`data_fingerprint`, {big_size >> 20} MiB file"
    tree_label = f"`data_fingerprint`, {files} x 4 KiB"
    read_target = (
        f"ratio ≤ {1 / TARGET_READ_FRACTION:.2f} (≥ {TARGET_READ_FRACTION:.0%} of read speed)"
    )
    json_rows = [
        _jsonrows.row(
            "fingerprints",
            big_label,
            t_ours,
            "s",
            "`cat FILE > /dev/null`",
            t_cat,
            target=read_target,
            met=read_fraction >= TARGET_READ_FRACTION,
        ),
        _jsonrows.row("fingerprints", big_label, t_ours, "s", "`sha256sum FILE`", t_sha),
        _jsonrows.row(
            "fingerprints", f"{tree_label}, cold", t_cold, "s", "`find -exec cat`", t_tree_cat
        ),
        _jsonrows.row(
            "fingerprints",
            f"{tree_label}, cold",
            t_cold,
            "s",
            "`find -exec sha256sum`",
            t_tree_sha,
        ),
        _jsonrows.row(
            "fingerprints",
            f"{tree_label}, warm (stat cache)",
            t_warm,
            "s",
            "bare stat scan (`os.walk` + `os.stat`)",
            t_scan,
            target=f"mlinfra < {TARGET_WARM_SECONDS} s",
            met=t_warm < TARGET_WARM_SECONDS,
        ),
    ]
    _jsonrows.write(args.json, json_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
