"""HPO benchmark: mlinfra's per-trial overhead around a no-op objective against bare Optuna with
optuna-integration's ``MLflowCallback``, side by side in one run, as a markdown table.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/hpo.py             # 50 timed trials per sweep, 3 repetitions
    .venv/bin/python bench/hpo.py --quick     # 15
    .venv/bin/python bench/hpo.py --profile   # and cProfile's top costs of one more sweep

Everything lives in a temporary folder that is removed at the end. ``MLFLOW_TRACKING_URI``,
``MLINFRA_REGISTRY_URL``, ``MLINFRA_HPO_STORAGE`` and ``MLINFRA_PROJECT_ROOT`` are removed from
this process's environment before every mlinfra sweep, so both sides use their own local SQLite
files: ``MLflowCallback`` calls ``mlflow.set_tracking_uri``, which exports
``MLFLOW_TRACKING_URI``, and mlinfra's ``Project.discover`` would otherwise send mlinfra's runs
to the peer's store.

* **mlinfra**: ``examples/resume_ner`` is copied (without ``outputs/`` and ``mlruns/``) and
  given a module ``noop_obj.py`` whose ``objective(ctx)`` returns a deterministic function of the
  sampled learning rate. ``run_sweep(Project.discover(project=copy), "resume_ner_baseline",
  stage="smoke", overrides=["+hpo.objective.entrypoint=noop_obj:objective",
  "hpo.sampling.max_trials=M", "hpo.sampling.algorithm=random"], workers=1)``: the project's
  own stores, i.e. the Optuna study in ``outputs/.../study.db``, the MLflow tracking store
  ``mlruns/mlflow.db`` and the run registry, all SQLite. Every trial: budget check, params
  sampled, trial folder, find-or-create of the child MLflow run through the registry (version
  reserved and committed, index entry), params, fingerprint tags, the ``mlinfra/fingerprints.json``
  artifact, ``metadata.json`` written at start and end (with the registry's metadata index),
  the metric, a trial-state tag, the run ended; Optuna's heartbeat thread and stale-trial scan;
  between trials, the budget and failure scans of the worker loop.
* **peer**: ``optuna.create_study(storage="sqlite:///<tmp>/peer/study.db",
  sampler=RandomSampler(seed=0), load_if_exists=True)`` and ``study.optimize(objective,
  n_trials=..., callbacks=[MLflowCallback(tracking_uri="sqlite:///<tmp>/peer/mlflow.db",
  metric_name="macro-f1", create_experiment=True)])``: one MLflow run per trial with its params,
  the metric and Optuna's tags. Same search space as the smoke stage (``learning_rate``
  loguniform, ``batch_size`` choice; checked against the composed config), same objective.

What is measured, each repetition on fresh stores for both sides (and which side goes first
alternates between repetitions):

1. **Warm-up, untimed**: 3 trials of each, into the same stores the timed sweep then continues
   (so the timed sweeps do not pay for creating the SQLite schemas, MLflow's migrations, the
   experiment or mlinfra's parent run, and both stores already hold 3 trials).
2. **Sweep of N trials**, wall time with ``time.perf_counter``: mlinfra's ``run_sweep`` with
   ``max_trials = 3 + N`` (a resume that runs N new trials); the peer's ``create_study(...,
   load_if_exists=True)``, the callback and ``optimize(n_trials=N)``. **Per trial = wall time / N**
   (each side's start-up included, as a user sees it).
3. **Start-up**: ``run_sweep`` once more with the same ``max_trials``, which runs 0 trials
   (composition, fingerprints, MLflow setup, parent run found again, study opened, the budget
   read, summary). The peer's start-up is its ``create_study`` plus the callback's construction,
   timed inside step 2. **Marginal per trial = (sweep - start-up) / N** on each side.

The reported figures are medians over the repetitions (3 by default). Checked outside the timed
intervals: mlinfra's sweep ran N new trials, 3 + N finished, one parent run and 3 + N child runs
in its experiment; the resume ran 0; the peer's study has 3 + N complete trials and its
experiment 3 + N runs, each with both params and the metric.

Then, to show where mlinfra's per-trial time goes, one more sweep of N trials (fresh stores,
same warm-up) runs with the functions ``run_sweep`` calls per trial wrapped in timers: total time
in each over the sweep, divided by N. ``--profile`` adds cProfile's top cumulative costs of yet
another such sweep.

This is a benchmark, not a test: apart from the correctness checks above (which stop it with an
error), it asserts nothing and exits 0.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import logging
import math
import os
import platform
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _jsonrows
from _report import commit, cpu, progress

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "resume_ner"
EXPERIMENT = "resume_ner_baseline"
STAGE = "smoke"
METRIC = "macro-f1"
TARGET_RATIO = 1.5  # mlinfra's per-trial time over the peer's
WARMUP = 3
CLEARED_ENV = ("MLFLOW_TRACKING_URI", "MLINFRA_REGISTRY_URL", "MLINFRA_HPO_STORAGE")
CLEARED_ENV += ("MLINFRA_PROJECT_ROOT",)

# The smoke stage's search space (examples/resume_ner/config/hpo/smoke.yaml), checked at setup.
LR_MIN, LR_MAX = 1.0e-5, 5.0e-5
BATCH_SIZES = [4]

OBJECTIVE_MODULE = '''"""No-op objective of bench/hpo.py: a deterministic function of the params."""

import math


def objective(ctx):
    return 1.0 - abs(math.log10(ctx.params["learning_rate"]) + 4.65)
'''


def _value(learning_rate: float) -> float:
    """The peer's objective: the same function as ``OBJECTIVE_MODULE``."""
    return 1.0 - abs(math.log10(learning_rate) + 4.65)


def _overrides(max_trials: int) -> list[str]:
    return [
        "+hpo.objective.entrypoint=noop_obj:objective",
        f"hpo.sampling.max_trials={max_trials}",
        "hpo.sampling.algorithm=random",
    ]


def _clear_env() -> None:
    for name in CLEARED_ENV:
        os.environ.pop(name, None)


def _check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"error: check failed: {message}")


def _quiet() -> None:
    for name in ("mlflow", "alembic", "optuna", "optuna_integration"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ---- mlinfra ----------------------------------------------------------------------------------


class Ours:
    """One copy of the example project and its sweep."""

    def __init__(self, folder: Path) -> None:
        self.root = folder / "project"
        shutil.copytree(
            EXAMPLE, self.root, ignore=shutil.ignore_patterns("outputs", "mlruns", "__pycache__")
        )
        (self.root / "noop_obj.py").write_text(OBJECTIVE_MODULE, encoding="utf-8")

    def sweep(self, max_trials: int) -> Any:
        from mlinfra.config import Project
        from mlinfra.hpo.runner import run_sweep

        _clear_env()  # the peer's MLflowCallback calls mlflow.set_tracking_uri, which exports it
        result = run_sweep(
            Project.discover(project=self.root),
            EXPERIMENT,
            stage=STAGE,
            overrides=_overrides(max_trials),
            workers=1,
        )
        _quiet()  # mlflow sets its own levels when first imported
        return result

    def check_space(self) -> None:
        from mlinfra.config import Project
        from mlinfra.hpo.runner import locate_study

        where = locate_study(
            Project.discover(project=self.root), EXPERIMENT, stage=STAGE, overrides=_overrides(1)
        )
        space = {k: v.model_dump(exclude_none=True) for k, v in where.hpo.search_space.items()}
        want = {
            "learning_rate": {"type": "loguniform", "min": LR_MIN, "max": LR_MAX},
            "batch_size": {"type": "choice", "values": BATCH_SIZES},
        }
        got = {k: {f: v[f] for f in want.get(k, {}) if f in v} for k, v in space.items()}
        _check(got == want, f"the smoke stage's search space changed: {space}")

    def check(self, result: Any, new: int, finished: int) -> None:
        from mlflow import MlflowClient

        _check(result.new_trials == new, f"mlinfra ran {result.new_trials} trials, not {new}")
        _check(result.finished == finished, f"mlinfra: {result.finished} finished, not {finished}")
        _check(result.failed == 0 and result.stopped is None, f"mlinfra: {result.stopped}")
        client = MlflowClient(tracking_uri=result.tracking_uri)
        experiment = client.get_experiment_by_name(result.experiment_name)
        runs = client.search_runs([experiment.experiment_id], max_results=10_000)
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
        _check(len(runs) == finished + 1, f"mlinfra: {len(runs)} runs, not {finished} + 1")
        _check(len(children) == finished, f"mlinfra: {len(children)} child runs")
        _check(
            all(METRIC in r.data.metrics and "learning_rate" in r.data.params for r in children),
            "mlinfra: a child run without the metric or params",
        )


# ---- the peer ---------------------------------------------------------------------------------


class Peer:
    """Bare Optuna with ``MLflowCallback`` on SQLite stores of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "peer"
        self.folder.mkdir()
        self.storage = f"sqlite:///{self.folder / 'study.db'}"
        self.tracking_uri = f"sqlite:///{self.folder / 'mlflow.db'}"

    @staticmethod
    def objective(trial: Any) -> float:
        learning_rate = trial.suggest_float("learning_rate", LR_MIN, LR_MAX, log=True)
        trial.suggest_categorical("batch_size", BATCH_SIZES)
        return _value(learning_rate)

    def sweep(self, n_trials: int) -> tuple[float, float]:
        """Open (or load) the study and run ``n_trials``; (start-up, whole) seconds."""
        import optuna
        from optuna_integration.mlflow import MLflowCallback

        start = time.perf_counter()
        study = optuna.create_study(
            storage=self.storage,
            study_name="peer",
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=0),
            load_if_exists=True,
        )
        callback = MLflowCallback(
            tracking_uri=self.tracking_uri, metric_name=METRIC, create_experiment=True
        )
        opened = time.perf_counter()
        study.optimize(self.objective, n_trials=n_trials, callbacks=[callback])
        end = time.perf_counter()
        _quiet()
        return opened - start, end - start

    def check(self, finished: int) -> None:
        import optuna
        from mlflow import MlflowClient

        study = optuna.load_study(study_name="peer", storage=self.storage)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        complete = optuna.trial.TrialState.COMPLETE
        _check(states == [complete] * finished, f"peer: trial states {states}")
        client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment = client.get_experiment_by_name("peer")
        runs = client.search_runs([experiment.experiment_id], max_results=10_000)
        _check(len(runs) == finished, f"peer: {len(runs)} runs, not {finished}")
        _check(
            all(METRIC in r.data.metrics and "learning_rate" in r.data.params for r in runs),
            "peer: a run without the metric or params",
        )


# ---- one repetition ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Repetition:
    """Seconds measured in one repetition."""

    ours_sweep: float  # run_sweep of N new trials
    ours_startup: float  # run_sweep that runs 0 trials
    peer_sweep: float  # create_study + callback + optimize(N)
    peer_startup: float  # create_study + callback


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def _repetition(folder: Path, n: int, ours_first: bool) -> Repetition:
    ours = Ours(folder)
    peer = Peer(folder)
    total = WARMUP + n
    ours.check(ours.sweep(WARMUP), WARMUP, WARMUP)  # warm-up, untimed
    peer.sweep(WARMUP)
    peer.check(WARMUP)

    def run_ours() -> tuple[float, float]:
        took, result = _timed(lambda: ours.sweep(total))
        ours.check(result, n, total)
        again, resumed = _timed(lambda: ours.sweep(total))
        _check(resumed.new_trials == 0, f"the resume ran {resumed.new_trials} trials")
        return took, again

    if ours_first:
        ours_sweep, ours_startup = run_ours()
        peer_startup, peer_sweep = peer.sweep(n)
    else:
        peer_startup, peer_sweep = peer.sweep(n)
        ours_sweep, ours_startup = run_ours()
    peer.check(total)
    return Repetition(ours_sweep, ours_startup, peer_sweep, peer_startup)


# ---- where the time goes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A timed function: ``label``, where it is looked up, its name there, and its depth."""

    label: str
    owner: str  # "module:attribute path" of the object holding the function
    name: str
    depth: int


STEPS: tuple[Step, ...] = (
    Step("worker loop: `fail_stale_trials` (stale heartbeats)", "mlinfra.hpo.workers", "", 0),
    Step("worker loop: `budget` (`study.get_trials`)", "mlinfra.hpo.workers", "budget", 0),
    Step("worker loop: `_stop_reason` (failed trials, `get_trials`)", "mlinfra.hpo.workers", "", 0),
    Step("`Study.optimize(n_trials=1)`", "optuna.study:Study", "optimize", 0),
    Step("`_run_trial` (mlinfra's trial)", "mlinfra.hpo.workers", "", 1),
    Step("`over_budget` (`study.get_trials`)", "mlinfra.hpo.trial", "", 2),
    Step("`suggest_params` (Optuna suggest, storage writes)", "mlinfra.hpo.trial", "", 2),
    Step("`build_output_path` (trial folder)", "mlinfra.hpo.trial", "", 2),
    Step("`find_or_create_run` (child run)", "mlinfra.tracking.mlflow.trackers", "", 2),
    Step("registry `find_run`", "mlinfra.registry.sql:SqlRegistry", "find_run", 3),
    Step("MLflow `search_runs` by tag (a miss)", "mlflow:MlflowClient", "search_runs", 3),
    Step("registry `reserve_version`", "mlinfra.registry.sql:SqlRegistry", "", 3),
    Step("MLflow `create_run` + params `log_batch`", "mlinfra.tracking.mlflow.runs", "_create", 3),
    Step("registry `commit_version`", "mlinfra.registry.sql:SqlRegistry", "", 3),
    Step("registry `upsert_run` (index entry)", "mlinfra.registry.sql:SqlRegistry", "", 3),
    Step(
        "`_record_fingerprints` (`fingerprints.json` artifact)",
        "mlinfra.tracking.mlflow.trackers",
        "",
        2,
    ),
    Step("`_start_metadata` (`metadata.json`)", "mlinfra.tracking.mlflow.trackers", "", 2),
    Step("`_end_metadata` (`metadata.json`)", "mlinfra.tracking.mlflow.trackers", "", 2),
    Step("`atomic_write_json` (temp file, fsync, rename)", "mlinfra.metadata.store", "", 3),
    Step("registry metadata index (`_record`)", "mlinfra.metadata.index", "_record", 3),
    Step(
        "`Trial.set_user_attr` (`mlflow_run_id`, `mlflow_run_name`)",
        "optuna.trial:Trial",
        "set_user_attr",
        2,
    ),
    Step(
        "`RunTracker.flush` (metric `log_batch`)",
        "mlinfra.tracking.mlflow.trackers:RunTracker",
        "flush",
        2,
    ),
    Step(
        "`RunTracker.set_tags` (trial-state tag)",
        "mlinfra.tracking.mlflow.trackers:RunTracker",
        "set_tags",
        2,
    ),
    Step("MLflow `set_terminated` (run ended)", "mlflow:MlflowClient", "set_terminated", 2),
)

_NAMES = {
    "worker loop: `fail_stale_trials` (stale heartbeats)": "fail_stale_trials",
    "worker loop: `_stop_reason` (failed trials, `get_trials`)": "_stop_reason",
    "`_run_trial` (mlinfra's trial)": "run_trial",
    "`over_budget` (`study.get_trials`)": "over_budget",
    "`suggest_params` (Optuna suggest, storage writes)": "suggest_params",
    "`build_output_path` (trial folder)": "build_output_path",
    "`find_or_create_run` (child run)": "find_or_create_run",
    "registry `reserve_version`": "reserve_version",
    "registry `commit_version`": "commit_version",
    "registry `upsert_run` (index entry)": "upsert_run",
    "`_record_fingerprints` (`fingerprints.json` artifact)": "_record_fingerprints",
    "`_start_metadata` (`metadata.json`)": "_start_metadata",
    "`_end_metadata` (`metadata.json`)": "_end_metadata",
    "`atomic_write_json` (temp file, fsync, rename)": "atomic_write_json",
}


def _attribute(step: Step) -> tuple[Any, str]:
    import importlib

    module_name, _, path = step.owner.partition(":")
    owner: Any = importlib.import_module(module_name)
    for part in filter(None, path.split(".")):
        owner = getattr(owner, part)
    return owner, step.name or _NAMES[step.label]


@contextmanager
def _instrumented(spent: dict[str, float]) -> Iterator[None]:
    """Wrap every step's function in a timer adding to ``spent[label]``; steps nested in
    ``_run_trial`` (depth 2 and more) count only inside it (not for the parent run)."""
    originals: list[tuple[Any, str, Any, bool]] = []
    inside = [0]
    try:
        for step in STEPS:
            owner, name = _attribute(step)
            original = getattr(owner, name)
            own = not isinstance(owner, type) or name in owner.__dict__
            originals.append((owner, name, original, own))
            gate = 1 if step.depth >= 2 else 0
            entry = 1 if name == "run_trial" else 0

            def timed(
                *args: Any,
                _f: Any = original,
                _l: str = step.label,
                _gate: int = gate,
                _entry: int = entry,
                **kwargs: Any,
            ) -> Any:
                inside[0] += _entry
                start = time.perf_counter()
                try:
                    return _f(*args, **kwargs)
                finally:
                    if inside[0] >= _gate:
                        spent[_l] = spent.get(_l, 0.0) + time.perf_counter() - start
                    inside[0] -= _entry

            setattr(owner, name, timed)
        yield
    finally:
        for owner, name, original, own in reversed(originals):
            if own:
                setattr(owner, name, original)
            else:  # inherited: remove the wrapper again
                delattr(owner, name)


@contextmanager
def _counted(counts: dict[str, int]) -> Iterator[None]:
    """Count SQL commits per SQLite file (SQLAlchemy's engine ``commit`` event) and
    ``os.fsync`` calls into ``counts``."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_commit(conn: Any) -> None:
        name = Path(conn.engine.url.database or "?").name
        counts[name] = counts.get(name, 0) + 1

    real = os.fsync

    def fsync(fd: Any) -> None:
        counts["os.fsync"] = counts.get("os.fsync", 0) + 1
        real(fd)

    event.listen(Engine, "commit", on_commit)
    os.fsync = fsync
    try:
        yield
    finally:
        os.fsync = real
        event.remove(Engine, "commit", on_commit)


@dataclass(frozen=True)
class Breakdown:
    """Seconds per trial in each step of one instrumented sweep of ``n`` trials, and durable
    writes per trial on each side."""

    n: int
    total: float  # the sweep's wall time (start-up included)
    steps: dict[str, float]
    ours_writes: dict[str, float]  # per trial: (sweep - 0-trial resume) / n
    peer_writes: dict[str, float]  # per trial: optimize(n) / n


def _per_trial(sweep: dict[str, int], fixed: dict[str, int], n: int) -> dict[str, float]:
    return {k: (sweep.get(k, 0) - fixed.get(k, 0)) / n for k in sorted(sweep)}


def _breakdown(folder: Path, n: int) -> Breakdown:
    ours = Ours(folder)
    ours.sweep(WARMUP)
    spent: dict[str, float] = {}
    with _instrumented(spent):
        took, result = _timed(lambda: ours.sweep(WARMUP + n))
    ours.check(result, n, WARMUP + n)
    # durable writes, counted on sweeps of their own (not timed)
    sweep_counts: dict[str, int] = {}
    with _counted(sweep_counts):
        ours.sweep(WARMUP + 2 * n)
    fixed: dict[str, int] = {}
    with _counted(fixed):
        _check(ours.sweep(WARMUP + 2 * n).new_trials == 0, "the counted resume ran trials")
    peer = Peer(folder)
    peer.sweep(WARMUP)
    peer_fixed: dict[str, int] = {}
    with _counted(peer_fixed):
        peer.sweep(0)
    peer_counts: dict[str, int] = {}
    with _counted(peer_counts):
        peer.sweep(n)
    peer.check(WARMUP + n)
    return Breakdown(
        n,
        took,
        {s.label: spent.get(s.label, 0.0) / n for s in STEPS},
        _per_trial(sweep_counts, fixed, n),
        _per_trial(peer_counts, peer_fixed, n),
    )


def _profile(folder: Path, n: int) -> str:
    """cProfile's top cumulative costs of one sweep of ``n`` trials (after the warm-up)."""
    ours = Ours(folder)
    ours.sweep(WARMUP)
    profiler = cProfile.Profile()
    profiler.enable()
    result = ours.sweep(WARMUP + n)
    profiler.disable()
    ours.check(result, n, WARMUP + n)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(45)
    return out.getvalue()


# ---- report -----------------------------------------------------------------------------------


def _versions() -> str:
    from importlib.metadata import version

    names = ("optuna", "optuna-integration", "mlflow", "SQLAlchemy")
    found = ", ".join(f"{name} {version(name)}" for name in names)
    return f"{found}, SQLite {sqlite3.sqlite_version}"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _write_order(key: str) -> tuple[int, str]:
    return (1 if key == "os.fsync" else 0, key)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def _spread(values: Sequence[float]) -> str:
    return ", ".join(f"{v * 1e3:.1f}" for v in values) + " ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15 timed trials instead of 50")
    parser.add_argument("-n", "--trials", type=int, help="timed trials per sweep (default 50)")
    parser.add_argument("-r", "--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument(
        "--profile", action="store_true", help="also print cProfile's top costs of one sweep"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the headline rows as JSON")
    args = parser.parse_args(argv)
    n = args.trials or (15 if args.quick else 50)
    if n < 1 or args.repeat < 1:
        parser.error("--trials and --repeat must be at least 1")

    _clear_env()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    _quiet()
    began = time.perf_counter()
    load_before = _load()
    print(
        f"# mlinfra HPO benchmark ({n} timed trials per sweep after {WARMUP} warm-up trials, "
        f"{args.repeat} repetitions)",
        flush=True,
    )
    reps: list[Repetition] = []
    with tempfile.TemporaryDirectory(prefix="mlinfra-bench-hpo-") as tmp:
        Ours(Path(tmp) / "space").check_space()
        for i in range(args.repeat):
            rep = _repetition(Path(tmp) / f"rep{i}", n, ours_first=i % 2 == 0)
            reps.append(rep)
            progress(
                f"repetition {i + 1}: mlinfra {_ms(rep.ours_sweep / n)}/trial, start-up "
                f"{_ms(rep.ours_startup)}; peer {_ms(rep.peer_sweep / n)}/trial"
            )
        steps = _breakdown(Path(tmp) / "steps", n)
        progress(f"instrumented sweep: {_ms(steps.total / n)}/trial")
        profile = _profile(Path(tmp) / "profile", n) if args.profile else ""
    load_after = _load()

    ours_trial = [r.ours_sweep / n for r in reps]
    peer_trial = [r.peer_sweep / n for r in reps]
    ours_marginal = [(r.ours_sweep - r.ours_startup) / n for r in reps]
    peer_marginal = [(r.peer_sweep - r.peer_startup) / n for r in reps]
    ours_start = [r.ours_startup for r in reps]
    peer_start = [r.peer_startup for r in reps]
    med = statistics.median

    print()
    print(f"- machine: {os.cpu_count()} CPUs (nproc), {cpu()}, {platform.platform()}")
    print(f"- python: {platform.python_version()} ({sys.executable}); {_versions()}")
    print(f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"- commit: {commit()}")
    command = [os.path.relpath(sys.executable), *sys.argv]
    print(f"- command: `{' '.join(command)}` (working directory {Path.cwd()})")
    elapsed = time.perf_counter() - began
    print(
        f"- stores in a temporary folder under {tempfile.gettempdir()}; whole run {elapsed:.0f} s; "
        f"load average before {load_before}, after {load_after}"
    )
    print()
    print(
        f"| measurement (median of {len(reps)}) | mlinfra | peer: Optuna + `MLflowCallback` "
        "| ratio (mlinfra / peer) | target |"
    )
    print("|---|---:|---:|---:|---:|")
    ratio = med(ours_trial) / med(peer_trial)
    print(
        f"| per trial: sweep wall time / {n} | {_ms(med(ours_trial))} | {_ms(med(peer_trial))} "
        f"| {ratio:.2f} | < {TARGET_RATIO} |"
    )
    print(
        f"| per trial, start-up excluded: (sweep - start-up) / {n} | {_ms(med(ours_marginal))} "
        f"| {_ms(med(peer_marginal))} | {med(ours_marginal) / med(peer_marginal):.2f} | – |"
    )
    print(
        f"| start-up: `run_sweep` that runs 0 trials; peer: `create_study` + callback "
        f"| {_ms(med(ours_start))} | {_ms(med(peer_start))} "
        f"| {med(ours_start) / med(peer_start):.1f} | – |"
    )
    print()
    print("Each repetition (fresh stores), per trial: mlinfra " + _spread(ours_trial))
    print(f"and peer {_spread(peer_trial)}; start-up: mlinfra {_spread(ours_start)}.")
    print()
    print(
        f"Where mlinfra's time goes: one more sweep of {n} trials with these functions timed, "
        f"total time in each / {n} (nested rows are part of the row above them; the sweep took "
        f"{_ms(steps.total / n)} per trial with timers, start-up included):"
    )
    print()
    print("| step | per trial | share of the sweep |")
    print("|---|---:|---:|")
    per_trial = steps.total / steps.n
    for step in STEPS:
        value = steps.steps[step.label]
        indent = "&nbsp;&nbsp;" * step.depth + ("↳ " if step.depth else "")
        print(f"| {indent}{step.label} | {value * 1e3:.2f} ms | {value / per_trial:.0%} |")
    optimize = steps.steps["`Study.optimize(n_trials=1)`"]
    trial = steps.steps["`_run_trial` (mlinfra's trial)"]
    top = sum(steps.steps[s.label] for s in STEPS if s.depth == 0)
    inner = sum(steps.steps[s.label] for s in STEPS if s.depth == 2)
    print(f"| Optuna inside `optimize`, around the trial | {(optimize - trial) * 1e3:.2f} ms | – |")
    print(f"| rest of `_run_trial` | {(trial - inner) * 1e3:.2f} ms | – |")
    print(f"| rest of the sweep (start-up, summary) | {(per_trial - top) * 1e3:.2f} ms | – |")
    print()
    print(
        f"Durable writes per trial (counted on separate sweeps of {n} trials, start-up "
        "subtracted): SQL commits per SQLite file, and `os.fsync` calls (the peer's study and "
        "tracking store are `study.db` and `mlflow.db` too):"
    )
    print()
    print("| writes per trial | mlinfra | peer |")
    print("|---|---:|---:|")
    for key in sorted(set(steps.ours_writes) | set(steps.peer_writes), key=_write_order):
        what = "`os.fsync` calls" if key == "os.fsync" else f"commits to `{key}`"
        ours_w, peer_w = steps.ours_writes.get(key, 0.0), steps.peer_writes.get(key, 0.0)
        print(f"| {what} | {ours_w:.1f} | {peer_w:.1f} |")
    print()
    print(
        "- check: every mlinfra sweep ran its N new trials (3 + N finished, one parent and "
        "3 + N child runs with params and the metric); every resume ran 0; every peer study "
        "has 3 + N complete trials and 3 + N MLflow runs with params and the metric"
    )
    print()
    verdict = "meets" if ratio < TARGET_RATIO else "MISSES"
    print(
        f"Per trial: mlinfra {_ms(med(ours_trial))} against {_ms(med(peer_trial))}, "
        f"{ratio:.2f}x, which {verdict} the {TARGET_RATIO}x target."
    )
    if profile:
        print()
        print("```")
        print(profile.rstrip())
        print("```")
    peer = "Optuna + `MLflowCallback`"
    json_rows = [
        _jsonrows.row(
            "hpo",
            f"per trial: sweep wall time / {n} (median of {len(reps)})",
            med(ours_trial) * 1e3,
            "ms",
            peer,
            med(peer_trial) * 1e3,
            target=f"ratio < {TARGET_RATIO}",
            met=ratio < TARGET_RATIO,
        ),
        _jsonrows.row(
            "hpo",
            "per trial, start-up excluded",
            med(ours_marginal) * 1e3,
            "ms",
            peer,
            med(peer_marginal) * 1e3,
        ),
        _jsonrows.row(
            "hpo",
            "start-up: `run_sweep` of 0 trials (peer: `create_study` + callback)",
            med(ours_start) * 1e3,
            "ms",
            peer,
            med(peer_start) * 1e3,
        ),
    ]
    _jsonrows.write(args.json, json_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
