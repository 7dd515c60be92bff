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
  over reading the files;
* optionally, when ``hydra-core`` is importable, the same composition done by Hydra: the same
  domain files copied into a temporary Hydra config folder (one config group per domain, picked
  by a primary config's defaults list), then ``initialize_config_dir`` + ``compose`` with the
  stage's override, in this process, each call a fresh ``initialize_config_dir`` as a script
  that composes once pays it (Hydra neither resolves ``${...}`` nor validates at compose time;
  mlinfra does both); the row is skipped with a note when Hydra is not importable.

``--json PATH`` also writes the headline rows as JSON (for ``bench/all.py``).

This is a benchmark, not a test: it asserts nothing and always exits 0 unless a command fails.
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
from dataclasses import dataclass
from pathlib import Path

import _jsonrows

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


def _hydra_compose(
    files: dict[str, Path], root: Path, overrides: list[str], repeat: int
) -> tuple[Timing | None, str]:
    """Time a Hydra compose of the same domain files, or return a note why it was not run."""
    try:
        from hydra import compose, initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra
    except ImportError:
        return None, "hydra-core is not installed in this environment"
    config_dir = root / "hydra"
    defaults = []
    for domain, path in files.items():
        (config_dir / domain).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, config_dir / domain / path.name)
        defaults.append(f"  - {domain}: {path.stem}")
    primary = "defaults:\n" + "\n".join(defaults) + "\n  - _self_\n"
    (config_dir / "config.yaml").write_text(primary, encoding="utf-8")

    def run() -> None:
        GlobalHydra.instance().clear()
        with initialize_config_dir(version_base=None, config_dir=str(config_dir)):
            compose(config_name="config", overrides=overrides)

    label = f"hydra compose of the same {len(files)} domain files (+ override)"
    return _time_call(label, run, repeat), ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-n", "--repeat", type=int, help="repetitions (default 20, quick 5; wins over --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="5 repetitions")
    parser.add_argument("--json", metavar="PATH", help="also write the headline rows as JSON")
    args = parser.parse_args(argv)
    repeat = args.repeat or (5 if args.quick else 20)
    if args.repeat is not None and args.repeat < 1:
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

    # The stage's overrides (``train.training.epochs=1``) are the same dotted keys in Hydra.
    overrides = list(exp.stage_overrides)
    with tempfile.TemporaryDirectory(prefix="mlinfra-bench-startup-") as tmp:
        domains = {d: p for d, p in exp.domain_files().items() if p is not None}
        hydra, hydra_note = _hydra_compose(domains, Path(tmp), overrides, repeat)
    if hydra is not None:
        rows.append((compose, hydra))

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
    if hydra is None:
        print(f"| `{compose.label}` | – | – | Hydra compose | not run: {hydra_note} | – | – |")
    print()
    met = help_.median < TARGET_HELP_SECONDS
    verdict = "meets" if met else "MISSES"
    print(
        f"`mlinfra --help` median {_fmt(help_.median)} s {verdict} the "
        f"{TARGET_HELP_SECONDS} s target."
    )
    _write_json(args.json, rows, met)
    return 0


def _write_json(path: str | None, rows: list[tuple[Timing, Timing | None]], met: bool) -> None:
    out = []
    for i, (ours, peer) in enumerate(rows):
        if peer is None:
            continue  # the bare interpreter: a reference point, not a rival
        target = f"mlinfra < {TARGET_HELP_SECONDS * 1e3:g} ms" if i == 0 else None
        out.append(
            _jsonrows.row(
                "startup",
                f"{ours.label} (median)",
                ours.median * 1e3,
                "ms",
                peer.label,
                peer.median * 1e3,
                target=target,
                met=met if i == 0 else None,
            )
        )
    _jsonrows.write(path, out)


if __name__ == "__main__":
    sys.exit(main())
