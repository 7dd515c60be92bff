"""Start-up and composition benchmark: mlinfra against its peers, printed as a markdown table.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/startup.py            # 20 repetitions of everything
    .venv/bin/python bench/startup.py --quick    # 5 repetitions

What is measured (wall time, one untimed warm-up run before each series):

* ``mlinfra --help`` (the console script next to this interpreter) against ``mlflow --version``
  from the same virtualenv: what a user waits for before a command does anything;
* ``python -c "import mlinfra"`` against ``python -c "import mlflow"``, and a bare
  ``python -c pass`` for the interpreter's own start-up;
* in this process, ``compose_experiment`` of the example experiment (``resume_ner_baseline``,
  stage ``smoke``) against ``yaml.safe_load`` of the same YAML files, and against
  ``yaml.load(Loader=yaml.CSafeLoader)`` (libyaml's C parser, which mlinfra itself uses when
  PyYAML has it): what composition, provenance, overrides, interpolation and validation cost
  over reading the files.

This is a benchmark, not a test: it asserts nothing and always exits 0 unless a command fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "examples" / "resume_ner" / "config"
EXPERIMENT = "resume_ner_baseline"
STAGE = "smoke"
TARGET_HELP_SECONDS = 0.3


@dataclass(frozen=True)
class Timing:
    """Wall times of one repeated measurement, in seconds."""

    label: str
    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)


def _time_command(label: str, argv: Sequence[str], repeat: int) -> Timing:
    """Run ``argv`` once untimed, then ``repeat`` times timed; fail loudly if it fails."""

    def run() -> None:
        subprocess.run(
            list(argv),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )

    return _time_call(label, run, repeat)


def _time_call(label: str, func: Callable[[], object], repeat: int) -> Timing:
    func()  # warm-up: file-system caches, bytecode caches, lazy imports
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return Timing(label, tuple(times))


def _script(bin_dir: Path, name: str) -> Path:
    path = bin_dir / name
    if not path.is_file():
        sys.exit(f"error: {path} not found; install the project into this virtualenv first")
    return path


def _fmt(seconds: float) -> str:
    return f"{seconds:.4f}" if seconds < 1 else f"{seconds:.3f}"


def _row(ours: Timing, peer: Timing | None) -> str:
    if peer is None:
        return f"| `{ours.label}` | {_fmt(ours.median)} | {_fmt(ours.best)} | – | – | – | – |"
    ratio = ours.median / peer.median
    return (
        f"| `{ours.label}` | {_fmt(ours.median)} | {_fmt(ours.best)} | `{peer.label}` | "
        f"{_fmt(peer.median)} | {_fmt(peer.best)} | {ratio:.3f} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--repeat", type=int, default=20, help="repetitions (default 20)")
    parser.add_argument("--quick", action="store_true", help="5 repetitions")
    args = parser.parse_args(argv)
    repeat = 5 if args.quick else args.repeat
    if repeat < 1:
        parser.error("--repeat must be at least 1")

    bin_dir = Path(sys.executable).parent
    python = str(Path(sys.executable))
    mlinfra = str(_script(bin_dir, "mlinfra"))
    mlflow = str(_script(bin_dir, "mlflow"))

    print(f"# mlinfra start-up benchmark ({repeat} runs each, after one warm-up run)", flush=True)
    rows: list[tuple[Timing, Timing | None]] = []

    help_ = _time_command("mlinfra --help", [mlinfra, "--help"], repeat)
    peer = _time_command("mlflow --version", [mlflow, "--version"], repeat)
    rows.append((help_, peer))

    imp = _time_command('python -c "import mlinfra"', [python, "-c", "import mlinfra"], repeat)
    peer = _time_command('python -c "import mlflow"', [python, "-c", "import mlflow"], repeat)
    rows.append((imp, peer))
    rows.append((_time_command('python -c "pass"', [python, "-c", "pass"], repeat), None))

    import yaml

    from mlinfra.config import compose_experiment, load_experiment_config

    exp = load_experiment_config(EXAMPLE_CONFIG, EXPERIMENT, stage=STAGE)
    files = [exp.file, *(p for p in exp.domain_files().values() if p is not None)]

    def read_all() -> None:
        for path in files:
            yaml.safe_load(path.read_text(encoding="utf-8"))

    compose = _time_call(
        f"compose_experiment({EXPERIMENT}, stage={STAGE})",
        lambda: compose_experiment(EXAMPLE_CONFIG, EXPERIMENT, stage=STAGE, environ={}),
        repeat,
    )
    peer = _time_call(f"yaml.safe_load of the same {len(files)} files", read_all, repeat)
    rows.append((compose, peer))
    # mlinfra composes with libyaml's C parser when PyYAML has it; this peer does the same.
    if hasattr(yaml, "CSafeLoader"):

        def read_all_c() -> None:
            for path in files:
                yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)

        peer = _time_call(
            f"yaml.load(CSafeLoader) of the same {len(files)} files", read_all_c, repeat
        )
        rows.append((compose, peer))

    print()
    print(f"- machine: {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"- python: {platform.python_version()} ({sys.executable})")
    print(f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    command = [os.path.relpath(sys.executable), *sys.argv]
    print(f"- command: `{' '.join(command)}` (working directory {Path.cwd()})")
    print(f"- composed files: {', '.join(p.relative_to(EXAMPLE_CONFIG).as_posix() for p in files)}")
    print()
    print("| mlinfra | median (s) | min (s) | peer | median (s) | min (s) | ratio (median) |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for ours, other in rows:
        print(_row(ours, other))
    print()
    verdict = "meets" if help_.median < TARGET_HELP_SECONDS else "MISSES"
    print(
        f"`mlinfra --help` median {_fmt(help_.median)} s {verdict} the "
        f"{TARGET_HELP_SECONDS} s target."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
