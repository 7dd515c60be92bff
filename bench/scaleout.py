"""Scale-out benchmark: trials per second of ``mlinfra hpo`` with 1, 2 and 4 workers on shared
services (study and registry on PostgreSQL, tracking on a real ``mlflow server`` backed by
PostgreSQL), against bare Optuna with the same number of worker processes on the same
PostgreSQL (RDBStorage, no tracking), side by side in one run, as a markdown table.

Run from the repository root with the project's virtualenv (PostgreSQL at 127.0.0.1:5432, trust
auth, database ``test``; ``scripts/ensure-postgres.sh`` starts it):

    .venv/bin/python bench/scaleout.py           # 60 trials per sweep
    .venv/bin/python bench/scaleout.py --quick   # 24

The objective sleeps 50 ms. For each worker count W, on a fresh database each:

Each side first runs 2 untimed trials into the same study (tables, MLflow experiment, parent
run), so the timed sweep is a resume.

* **mlinfra**: ``run_sweep(..., workers=W)`` on a copy of ``examples/resume_ner`` (stage
  ``smoke``, random sampling) with ``MLINFRA_DATABASE_URL`` and ``MLFLOW_TRACKING_URI`` set: N
  more trials.
* **optuna**: W spawned processes each ``optuna.load_study(...).optimize(objective,
  n_trials=N/W)`` on a plain ``RDBStorage`` of the same server (no tracking).

**Sweep time** is read from the study itself, the same way for both: from the first timed
trial's start to the last one's completion (Optuna's ``datetime_start`` and
``datetime_complete``), so one-time start-up (imports, spawning, composition, MLflow set-up) is
left out without subtracting a separately measured start-up, which under load could exceed the
sweep and give a negative rate. trials/s = N / sweep time; **scaling** = trials/s over the
1-worker figure; **overhead per trial** = (mlinfra sweep time − optuna sweep time) × W / N, the
extra time each trial costs its worker (tracking, registry, budget checks). Everything is
dropped at the end (databases, server, temporary folder).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import _jsonrows

REPO = Path(__file__).resolve().parent.parent
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
_WARMUP = 2
OBJECTIVE = """
import time


def objective(ctx):
    time.sleep(0.05)
    return ctx.params["learning_rate"] * 1e4
"""


def _create_db() -> str:
    import psycopg

    name = f"mlinfra_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_db(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def _optuna_worker(url: str, n_trials: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg://"))
    study = optuna.load_study(study_name="bench", storage=storage)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True)
        trial.suggest_categorical("batch_size", [4])
        time.sleep(0.05)
        return lr * 1e4

    study.optimize(objective, n_trials=n_trials)
    storage.engine.dispose()


def _sweep_seconds(url: str, expected: int) -> float:
    """Seconds from the first timed trial's start to the last one's completion, read from the
    only study in the database at ``url`` (its first ``_WARMUP`` trials are the untimed ones)."""
    import optuna

    storage = url.replace("postgresql://", "postgresql+psycopg://")
    (name,) = optuna.study.get_all_study_names(storage=storage)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == expected, (len(finished), expected)
    timed = sorted(finished, key=lambda t: t.number)[_WARMUP:]
    start = min(t.datetime_start for t in timed if t.datetime_start is not None)
    end = max(t.datetime_complete for t in timed if t.datetime_complete is not None)
    return (end - start).total_seconds()


def _optuna_run(url: str, workers: int, n_trials: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_optuna_worker, args=(url, n_trials // workers)) for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0, proc.exitcode


def _optuna(workers: int, n_trials: int) -> float:
    import optuna

    name = _create_db()
    try:
        url = _url(name)
        storage = optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg://"))
        optuna.create_study(study_name="bench", storage=storage, direction="maximize")
        storage.engine.dispose()
        _optuna_run(url, 1, _WARMUP)  # untimed, like mlinfra's
        _optuna_run(url, workers, n_trials)
        return _sweep_seconds(url, _WARMUP + n_trials // workers * workers)
    finally:
        _drop_db(name)


def _mlinfra(project_root: Path, tracking_uri: str, workers: int, n_trials: int) -> float:
    from mlinfra.config import Project
    from mlinfra.hpo.runner import run_sweep

    name = _create_db()
    try:
        os.environ["MLINFRA_DATABASE_URL"] = _url(name)
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        tag = uuid.uuid4().hex[:8]  # its own study key and parent run

        def sweep(max_trials: int) -> int:
            overrides = [
                "++hpo.objective.entrypoint=bench_obj:objective",
                f"hpo.sampling.max_trials={max_trials}",
                "hpo.sampling.algorithm=random",
                f"++hpo.early_termination.bench_run={tag}",  # in the study key
            ]
            project = Project.discover(project=project_root, environ=dict(os.environ))
            result = run_sweep(
                project,
                "resume_ner_baseline",
                stage="smoke",
                overrides=overrides,
                workers=workers,
                platform="local",
            )
            return result.new_trials

        sweep(_WARMUP)  # untimed: tables, experiment, parent run
        ran = sweep(_WARMUP + n_trials)
        assert ran >= n_trials, ran
        return _sweep_seconds(_url(name), _WARMUP + n_trials)
    finally:
        _drop_db(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24 trials per sweep instead of 60")
    parser.add_argument("--json", metavar="PATH", help="also write the headline rows as JSON")
    args = parser.parse_args(argv)
    n_trials = 24 if args.quick else 60
    for name in [k for k in os.environ if k.startswith(("MLFLOW_", "MLINFRA_"))]:
        del os.environ[name]
    import optuna

    from mlinfra.services.server import start_server, stop_server

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="mlinfra-bench-scaleout-"))
    server_db = _create_db()
    try:
        project = tmp / "proj"
        shutil.copytree(
            REPO / "examples" / "resume_ner",
            project,
            ignore=shutil.ignore_patterns("outputs", "mlruns", "__pycache__"),
        )
        (project / "bench_obj.py").write_text(OBJECTIVE, encoding="utf-8")
        backend = _url(server_db).replace("postgresql://", "postgresql+psycopg://")
        state = start_server(tmp / "server", backend, workers=2)
        try:
            rows = []
            for workers in (1, 2, 4):
                ours = _mlinfra(project, state.url, workers, n_trials)
                peer = _optuna(workers, n_trials)
                rows.append((workers, ours, peer))
                print(
                    f"  {workers} worker(s): mlinfra {ours:.2f} s, optuna {peer:.2f} s",
                    file=sys.stderr,
                )
        finally:
            stop_server(tmp / "server")
    finally:
        _drop_db(server_db)
        shutil.rmtree(tmp, ignore_errors=True)

    base_ours = n_trials / rows[0][1]
    base_peer = n_trials / rows[0][2]
    print(f"{n_trials} trials of a 50 ms objective per sweep; {os.cpu_count()} CPU cores\n")
    print(
        "| workers | mlinfra trials/s | scaling | bare Optuna trials/s | scaling "
        "| mlinfra overhead per trial |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for workers, ours, peer in rows:
        tps, ptps = n_trials / ours, n_trials / peer
        overhead = (ours - peer) * workers / n_trials * 1000
        print(
            f"| {workers} | {tps:.1f} | {tps / base_ours:.2f}x | {ptps:.1f} | "
            f"{ptps / base_peer:.2f}x | {overhead:.0f} ms |"
        )
    json_rows = [
        _jsonrows.row(
            "scaleout",
            f"trials/s, {workers} worker(s), {n_trials} trials of a 50 ms objective "
            "(higher is better)",
            n_trials / ours,
            "/s",
            "bare Optuna on the same PostgreSQL",
            n_trials / peer,
            better="higher",
        )
        for workers, ours, peer in rows
    ]
    _jsonrows.write(args.json, json_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
