"""Tracking benchmark: what ``find_or_create_run`` adds to bare MLflow calls, as a markdown table.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/tracking.py             # 200 timed calls of each measurement
    .venv/bin/python bench/tracking.py --quick     # 30
    .venv/bin/python bench/tracking.py --profile   # and cProfile's top costs of the create path

Everything lives in a temporary folder that is removed at the end: one MLflow SQLite tracking
store (``sqlite:///<tmp>/mlflow.db``, experiment set up with ``setup_mlflow``) shared by mlinfra
and its peer, and one SQLite run registry (``SqlRegistry``). Naming policy and tag keys are the
example project's (``examples/resume_ner/config``). What is measured, in this process, each call
timed on its own (``time.perf_counter``), median of n, after one untimed warm-up call of each:

* **New run** (every call creates): ``find_or_create_run`` of an HPO sweep context whose
  ``study_key_hash`` was never seen, so each call computes the run key and its hash, the tags
  and the name, misses the registry, misses MLflow's search by the ``run_key_hash`` tag, reserves
  a version in the registry, creates the run, commits the version and writes the index entry.
  Peer: ``MlflowClient.create_run(experiment_id, run_name=..., tags=...)`` with the name and tags
  mlinfra would give that run (computed outside the timed interval), i.e. the same run without
  any find-or-create. No params on either side.
* **Run found again**: ``find_or_create_run`` of a context created in the first part (registry
  hit, then ``MlflowClient.get_run`` to check that the run is live and carries its tag). Peer:
  ``MlflowClient.search_runs([experiment_id], filter_string="tags.`code.run_key_hash` =
  '<hash>'", max_results=1)``, how a caller finds a run by its key with MLflow alone.

mlinfra's and the peer's calls alternate (which goes first alternates too), so both see the same
store size; every result is checked outside the timed interval (created runs are new and named
``..._1``, found runs are the ones created, the peer's search finds exactly one run).

Then, to show where the time goes, n more new contexts and the same n found again go through
``find_or_create_run`` with the registry's and MLflow's methods it calls (``find_run``,
``search_runs``, ``reserve_version``, ``create_run``, ``commit_version``, ``upsert_run``,
``get_run``) wrapped in timers: median time per call in each, and the rest of the call (naming,
client construction, Python) as the median of each call's total minus its timed steps.

``--profile`` adds cProfile's top costs (cumulative) of up to 60 more new runs.

This is a benchmark, not a test: apart from the correctness checks above (which stop it with an
error), it asserts nothing and exits 0.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import io
import logging
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _jsonrows
from _report import commit, cpu, progress

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "resume_ner"
PROJECT = "resume-ner"
EXPERIMENT = "bench_tracking"
TARGET_RATIO = 1.3  # find_or_create_run over a bare create_run, new run, median
TAG = "code.run_key_hash"


@dataclass(frozen=True)
class Figure:
    """Seconds of one measured series."""

    label: str
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def cell(self) -> str:
        return f"{self.median * 1e3:.2f} ms"


def _row(measurement: str, ours: Figure, peer: Figure) -> str:
    return (
        f"| {measurement} | {ours.cell()} | {len(ours.values)} | {peer.label} | {peer.cell()} | "
        f"{len(peer.values)} | {ours.median / peer.median:.2f} |"
    )


class Bench:
    """The stores and everything a call needs."""

    def __init__(self, folder: Path) -> None:
        from mlflow import MlflowClient

        from mlinfra.naming.display_policy import load_naming_policy
        from mlinfra.naming.tags import load_tags_registry
        from mlinfra.registry import SqlRegistry
        from mlinfra.tracking.mlflow.setup import setup_mlflow

        config = folder / "project" / "config"
        shutil.copytree(EXAMPLE / "config", config)
        setup = setup_mlflow(
            tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
            experiment_name=EXPERIMENT,
            root_dir=config.parent,
            environ={},
        )
        self.uri = setup.tracking_uri
        self.experiment_id = setup.experiment_id
        self.client = MlflowClient(tracking_uri=self.uri)
        self.registry = SqlRegistry(f"sqlite:///{folder / 'registry.db'}")
        self.policy = load_naming_policy(config, environ={})
        self.tags = load_tags_registry(config, environ={})

    def close(self) -> None:
        self.registry.close()

    def context(self, namespace: str, i: int) -> Any:
        from mlinfra.naming import create_naming_context

        study = hashlib.sha256(f"bench-{namespace}-{i}".encode()).hexdigest()
        return create_naming_context(
            process_type="hpo", model="distilbert", environment="local", study_key_hash=study
        )

    def ours(self, context: Any) -> Any:
        from mlinfra.tracking.mlflow.runs import find_or_create_run

        return find_or_create_run(
            context,
            registry=self.registry,
            tracking_uri=self.uri,
            experiment_id=self.experiment_id,
            policy=self.policy,
            tags=self.tags,
            project_name=PROJECT,
        )

    def naming(self, context: Any) -> tuple[str, str, dict[str, str], str]:
        """What mlinfra computes for a new run before it touches a store: key hash, counter key,
        tags and name (version 1)."""
        from mlinfra.naming.display_policy import build_mlflow_run_name
        from mlinfra.naming.keys import (
            build_counter_key,
            build_mlflow_run_key,
            build_mlflow_run_key_hash,
        )
        from mlinfra.naming.tags import build_mlflow_tags

        key_hash = build_mlflow_run_key_hash(build_mlflow_run_key(context))
        counter = build_counter_key(PROJECT, context.process_type, key_hash, "local")
        tags = build_mlflow_tags(
            context, registry=self.tags, project_name=PROJECT, run_key_hash=key_hash
        )
        name = build_mlflow_run_name(context, policy=self.policy, version=1)
        return key_hash, counter, tags, name

    def search(self, key_hash: str) -> list[Any]:
        return list(
            self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{TAG}` = '{key_hash}'",
                max_results=1,
            )
        )


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def _check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"error: check failed: {message}")


def _measure_pairs(bench: Bench, n: int) -> tuple[list[tuple[str, Figure, Figure]], list[str]]:
    """New-run and found-again pairs, alternating mlinfra and peer calls."""
    # warm-up, untimed: one call of each kind
    warm = bench.ours(bench.context("warm", 0))
    _, _, tags, name = bench.naming(bench.context("warm-peer", 0))
    bench.client.create_run(bench.experiment_id, run_name=name, tags=tags)
    bench.ours(bench.context("warm", 0))
    bench.search(warm.run_key_hash)

    ours_new: list[float] = []
    peer_new: list[float] = []
    created = []
    for i in range(n):
        context = bench.context("ours", i)
        _, _, tags, name = bench.naming(bench.context("peer", i))

        def peer_call(tags: dict[str, str] = tags, name: str = name) -> Any:
            return bench.client.create_run(bench.experiment_id, run_name=name, tags=tags)

        def ours_call(context: Any = context) -> Any:
            return bench.ours(context)

        if i % 2 == 0:
            t_ours, handle = _timed(ours_call)
            t_peer, run = _timed(peer_call)
        else:
            t_peer, run = _timed(peer_call)
            t_ours, handle = _timed(ours_call)
        _check(handle.how == "created", f"new context {i} was {handle.how}, not created")
        _check(handle.run_name.endswith("_1"), f"new run named {handle.run_name}")
        _check(run.info.run_name == name, f"peer run named {run.info.run_name}")
        ours_new.append(t_ours)
        peer_new.append(t_peer)
        created.append(handle)

    ours_again: list[float] = []
    peer_again: list[float] = []
    for i, first in enumerate(created):
        context = bench.context("ours", i)
        if i % 2 == 0:
            t_ours, handle = _timed(lambda c=context: bench.ours(c))
            t_peer, found = _timed(lambda h=first.run_key_hash: bench.search(h))
        else:
            t_peer, found = _timed(lambda h=first.run_key_hash: bench.search(h))
            t_ours, handle = _timed(lambda c=context: bench.ours(c))
        _check(
            (handle.how, handle.run_id) == ("registry", first.run_id),
            f"context {i} found again as {handle.how} {handle.run_id}, not {first.run_id}",
        )
        _check([r.info.run_id for r in found] == [first.run_id], f"peer search for {i}: {found}")
        ours_again.append(t_ours)
        peer_again.append(t_peer)

    runs = bench.client.search_runs([bench.experiment_id], max_results=50_000)
    expected = 2 * n + 2
    _check(len(runs) == expected, f"{len(runs)} runs in the store, expected {expected}")
    checks = [
        f"{n} new contexts: every `find_or_create_run` created its run (named `..._1`); "
        f"every one of the {n} peer runs has the name and tags mlinfra gives such a run",
        f"{n} found again: every call returned the created run through the registry; every "
        "peer search found exactly that run",
        f"store at the end: {len(runs)} runs in one experiment ({n} + {n} + 2 warm-up)",
    ]
    rows = [
        (
            "new run (every call creates)",
            Figure("`find_or_create_run`", tuple(ours_new)),
            Figure("`MlflowClient.create_run` (same name and tags)", tuple(peer_new)),
        ),
        (
            "run found again",
            Figure("`find_or_create_run`", tuple(ours_again)),
            Figure("`MlflowClient.search_runs` by `run_key_hash` tag", tuple(peer_again)),
        ),
    ]
    return rows, checks


STEPS = (
    ("registry `find_run`", "SqlRegistry", "find_run"),
    ("MLflow `search_runs` by tag (a miss, for a new run)", "MlflowClient", "search_runs"),
    ("registry `reserve_version`", "SqlRegistry", "reserve_version"),
    ("MLflow `create_run`", "MlflowClient", "create_run"),
    ("registry `commit_version`", "SqlRegistry", "commit_version"),
    ("registry `upsert_run` (index entry)", "SqlRegistry", "upsert_run"),
    ("MLflow `get_run` (is the found run live?)", "MlflowClient", "get_run"),
)
REST = "the rest: naming (key, hash, tags, name), clients, Python"


@dataclass(frozen=True)
class Breakdown:
    """Per-step medians inside instrumented ``find_or_create_run`` calls (seconds)."""

    steps: dict[str, float]  # label -> median time per call (0 when the step never ran)
    rest: float  # median of (whole call - its timed steps)
    total: float  # median whole call, instrumented


def _breakdown(bench: Bench, n: int) -> tuple[Breakdown, Breakdown]:
    """Time each store call inside real ``find_or_create_run`` calls (wrapping the registry's
    and MLflow's methods), for ``n`` new contexts and then ``n`` found again."""
    from mlflow import MlflowClient

    from mlinfra.registry.sql import SqlRegistry

    owners = {"SqlRegistry": SqlRegistry, "MlflowClient": MlflowClient}
    spent: dict[str, float] = {}
    originals = []

    def wrap(label: str, owner: type, method: str) -> None:
        original = getattr(owner, method)
        originals.append((owner, method, original))

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start

        setattr(owner, method, timed)

    for label, owner_name, method in STEPS:
        wrap(label, owners[owner_name], method)
    try:
        results = []
        for path in ("new", "again"):
            per_step: dict[str, list[float]] = {label: [] for label, _, _ in STEPS}
            rests: list[float] = []
            totals: list[float] = []
            for i in range(n + 1):  # the first call is the warm-up
                context = bench.context("steps", i)
                spent.clear()
                took, handle = _timed(lambda c=context: bench.ours(c))
                want = "created" if path == "new" else "registry"
                _check(handle.how == want, f"instrumented {path} call was {handle.how}")
                if i == 0:
                    continue
                for label in per_step:
                    per_step[label].append(spent.get(label, 0.0))
                rests.append(took - sum(spent.values()))
                totals.append(took)
            results.append(
                Breakdown(
                    {label: statistics.median(v) for label, v in per_step.items()},
                    statistics.median(rests),
                    statistics.median(totals),
                )
            )
    finally:
        for owner, method, original in reversed(originals):
            setattr(owner, method, original)
    return results[0], results[1]


def _profile(bench: Bench, count: int) -> str:
    """cProfile's top costs (cumulative) of ``count`` new-run calls."""
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(count):
        bench.ours(bench.context("profile", i))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(30)
    return out.getvalue()


# ---- report -----------------------------------------------------------------------------------


def _versions() -> str:
    from importlib.metadata import version

    names = ("mlflow", "SQLAlchemy")
    found = ", ".join(f"{name} {version(name)}" for name in names)
    return f"{found}, SQLite {sqlite3.sqlite_version}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 timed calls instead of 200")
    parser.add_argument("-n", "--runs", type=int, help="timed calls of each (default 200)")
    parser.add_argument(
        "--profile", action="store_true", help="also print cProfile's top costs of new runs"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the headline rows as JSON")
    args = parser.parse_args(argv)
    n = args.runs or (30 if args.quick else 200)
    if n < 1:
        parser.error("--runs must be at least 1")

    warnings.filterwarnings("ignore")
    began = time.perf_counter()
    print(f"# mlinfra tracking benchmark ({n} timed calls of each, after one warm-up)", flush=True)
    with tempfile.TemporaryDirectory(prefix="mlinfra-bench-tracking-") as tmp:
        bench = Bench(Path(tmp))
        for name in ("mlflow", "alembic"):  # after import: mlflow sets its own levels
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            rows, checks = _measure_pairs(bench, n)
            progress(
                "pairs: " + "; ".join(f"{m}: {o.cell()} against {p.cell()}" for m, o, p in rows)
            )
            new_steps, again_steps = _breakdown(bench, n)
            progress(
                f"instrumented: new run {new_steps.total * 1e3:.2f} ms, found again "
                f"{again_steps.total * 1e3:.2f} ms"
            )
            profile = _profile(bench, min(n, 60)) if args.profile else ""
        finally:
            bench.close()

    print()
    print(f"- machine: {os.cpu_count()} CPUs (nproc), {cpu()}, {platform.platform()}")
    print(f"- python: {platform.python_version()} ({sys.executable}); {_versions()}")
    print(f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"- commit: {commit()}")
    command = [os.path.relpath(sys.executable), *sys.argv]
    print(f"- command: `{' '.join(command)}` (working directory {Path.cwd()})")
    elapsed = time.perf_counter() - began
    where = tempfile.gettempdir()
    print(f"- stores in a temporary folder under {where}; whole run {elapsed:.0f} s")
    print()
    print("| measurement | mlinfra | n | peer | peer | n | ratio (mlinfra / peer) |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for measurement, ours, peer in rows:
        print(_row(measurement, ours, peer))
    print()
    print("Ratio above 1: mlinfra takes longer. Medians of n calls, each timed on its own.")
    print()
    new_ours, new_peer = rows[0][1], rows[0][2]
    print(
        "Where the time goes: the registry's and MLflow's methods timed inside n more "
        "`find_or_create_run` calls (new contexts, then the same found again); median per call:"
    )
    print()
    print("| step | new run | found again |")
    print("|---|---:|---:|")

    def ms(seconds: float) -> str:
        return f"{seconds * 1e3:.2f} ms" if seconds > 0 else "–"

    for label, _, _ in STEPS:
        print(f"| {label} | {ms(new_steps.steps[label])} | {ms(again_steps.steps[label])} |")
    print(f"| {REST} | {ms(new_steps.rest)} | {ms(again_steps.rest)} |")
    print(f"| whole call (instrumented) | {ms(new_steps.total)} | {ms(again_steps.total)} |")
    print()
    for line in checks:
        print(f"- check: {line}")
    print()
    ratio = new_ours.median / new_peer.median
    verdict = "meets" if ratio < TARGET_RATIO else "MISSES"
    allowed = (TARGET_RATIO - 1) * new_peer.median
    print(
        f"New run: `find_or_create_run` median {new_ours.cell()} against `create_run` "
        f"{new_peer.cell()}, {ratio:.2f}x, which {verdict} the {TARGET_RATIO}x target: "
        f"{(new_ours.median - new_peer.median) * 1e3:.2f} ms on top of the create, where "
        f"{TARGET_RATIO}x allows {allowed * 1e3:.2f} ms."
    )
    if profile:
        print()
        print("```")
        print(profile.rstrip())
        print("```")
    json_rows = [
        _jsonrows.row(
            "tracking",
            f"{measurement} (median)",
            ours.median * 1e3,
            "ms",
            peer.label,
            peer.median * 1e3,
            target=f"ratio < {TARGET_RATIO}" if i == 0 else None,
            met=ratio < TARGET_RATIO if i == 0 else None,
        )
        for i, (measurement, ours, peer) in enumerate(rows)
    ]
    _jsonrows.write(args.json, json_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
