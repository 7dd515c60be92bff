"""Fixtures of the sweep tests: a private copy of the example project with test objectives.

``hpo_project`` copies ``examples/resume_ner`` (no ``outputs/``, ``mlruns/`` or caches), writes
the module ``sweep_objectives`` (below) into its root and puts an already initialised, empty
MLflow SQLite database at the project's default place (``mlruns/mlflow.db``): creating MLflow's
tables takes about two seconds, once per session instead of once per test. Every sweep then uses
the real Optuna storage (``study.db`` in the study folder), the real MLflow store and registry.

``MLFLOW_*`` and ``MLINFRA_*`` variables are removed from the environment of every test, and
from the environment given to subprocesses (:meth:`HpoProject.env`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlinfra.config import Project
from mlinfra.hpo.runner import StudyLocation, SweepResult, locate_study, run_sweep

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "resume_ner"
EXPERIMENT = "resume_ner_baseline"
STAGE = "smoke"  # learning_rate (loguniform) and batch_size ([4]); random sampling
MLINFRA = Path(sys.executable).parent / "mlinfra"

#: The test objectives (``sweep_objectives:<name>``), written into each project copy.
OBJECTIVES = '''\
"""Objectives of the sweep tests (written by tests/hpo/conftest.py)."""

import json
import os
import time


def _value(ctx):
    # maximised; different for every learning rate, and per fold with cross-validation
    value = ctx.params["learning_rate"] * 1e4
    if ctx.fold is not None:
        value += ctx.fold.index
    return value


def _record(ctx, value):
    record = {
        "params": ctx.params,
        "trial": ctx.trial_number,
        "fold": None if ctx.fold is None else ctx.fold.index,
        "refit": ctx.refit,
        "run_id": ctx.run_id,
        "value": value,
        "pid": os.getpid(),
    }
    (ctx.output_dir / "result.json").write_text(json.dumps(record), encoding="utf-8")


def fast(ctx):
    value = _value(ctx)
    _record(ctx, value)
    ctx.log_metrics({"objective_calls": 1.0})
    return value


def slow(ctx):
    """Writes markers/trial-<n>.started, then sleeps: 0.3 s, or 100 s from the trial number
    written in the file hang_from (so a test can kill the process in the middle of a trial)."""
    markers = ctx.project_root / "markers"
    markers.mkdir(exist_ok=True)
    started = markers / f"trial-{ctx.trial_number}.started"
    started.write_text(json.dumps({"params": ctx.params, "pid": os.getpid()}), encoding="utf-8")
    hang = ctx.project_root / "hang_from"
    if hang.exists() and ctx.trial_number >= int(hang.read_text(encoding="utf-8")):
        time.sleep(100)
    time.sleep(0.3)
    return fast(ctx)


def overlapping(ctx):
    """Waits (up to 60 s) until two trials have started, so two workers surely overlap."""
    markers = ctx.project_root / "markers"
    markers.mkdir(exist_ok=True)
    (markers / f"trial-{ctx.trial_number}.started").write_text(str(os.getpid()), encoding="utf-8")
    deadline = time.monotonic() + 60
    while len(list(markers.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    return fast(ctx)


def raises(ctx):
    raise ValueError(f"objective exploded in trial {ctx.trial_number}")


def raises_once(ctx):
    """Fails in trial 1 only."""
    if ctx.trial_number == 1:
        raise ValueError("objective exploded in trial 1")
    return fast(ctx)


def returns_nan(ctx):
    return float("nan")


def returns_string(ctx):
    return "0.5"


def prunable(ctx):
    """Reports a worse value for every later trial: the median pruner prunes them at step 0."""
    value = -float(ctx.trial_number)
    for step in range(3):
        ctx.report(step, value)
    return value
'''

_ENV_PREFIXES = ("MLFLOW_", "MLINFRA_")


def clean_environ() -> dict[str, str]:
    """``os.environ`` without ``MLFLOW_*`` and ``MLINFRA_*`` variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES)}


def base_overrides(objective: str) -> list[str]:
    return [f"++hpo.objective.entrypoint=sweep_objectives:{objective}"]


@dataclass
class HpoProject:
    """A project copy with ``sweep_objectives.py``; helpers to sweep it and read the stores."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def cli_path(self) -> Path:
        """The ``mlinfra`` script of this environment."""
        return MLINFRA

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlruns' / 'mlflow.db'}"

    def project(self) -> Project:
        return Project.discover(project=self.root, environ=clean_environ())

    def overrides(self, objective: str, *extra: str, max_trials: int = 4) -> list[str]:
        return [*base_overrides(objective), f"hpo.sampling.max_trials={max_trials}", *extra]

    def sweep(self, objective: str, *extra: str, max_trials: int = 4, **kwargs: Any) -> SweepResult:
        """``run_sweep`` in this process (stage ``smoke``)."""
        return run_sweep(
            self.project(),
            EXPERIMENT,
            stage=STAGE,
            overrides=self.overrides(objective, *extra, max_trials=max_trials),
            platform="local",
            **kwargs,
        )

    def locate(self, objective: str, *extra: str, max_trials: int = 4) -> StudyLocation:
        return locate_study(
            self.project(),
            EXPERIMENT,
            stage=STAGE,
            overrides=self.overrides(objective, *extra, max_trials=max_trials),
            platform="local",
        )

    def study(self, storage_url: str, study_name: str) -> Any:
        """The study, loaded from its storage (a plain RDBStorage: no heartbeat side effects)."""
        import optuna

        return optuna.load_study(study_name=study_name, storage=storage_url)

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def runs(self, experiment_name: str) -> list[Any]:
        """Every run of the experiment (an empty list if it does not exist)."""
        client = self.client()
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            return []
        return list(client.search_runs([experiment.experiment_id], max_results=1000))

    def all_runs(self) -> list[Any]:
        client = self.client()
        ids = [e.experiment_id for e in client.search_experiments()]
        return list(client.search_runs(ids, max_results=1000)) if ids else []

    def experiment_of(self, study: Any) -> str:
        """The MLflow experiment of the study's parent run."""
        client = self.client()
        run = client.get_run(study.user_attrs["mlflow_parent_run_id"])
        name: str = client.get_experiment(run.info.experiment_id).name
        return name

    @staticmethod
    def children(runs: Sequence[Any], parent_id: str) -> list[Any]:
        """The runs among ``runs`` whose MLflow parent is ``parent_id``."""
        return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]

    def env(self) -> dict[str, str]:
        return clean_environ()

    def cli(
        self, *args: str, timeout: float = 90, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``mlinfra hpo ARGS`` in a subprocess, in the project folder."""
        proc = subprocess.Popen(
            [str(MLINFRA), "hpo", "--no-progress", *args],
            cwd=self.root,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its worker processes too are killed on a timeout
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"mlinfra hpo {' '.join(args)} timed out:\n{stdout}\n{stderr}")
        done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        if check:
            assert done.returncode == 0, f"exit {done.returncode}\n{stdout}\n{stderr}"
        return done

    def hpo_args(
        self, objective: str, *extra: str, max_trials: int = 4, workers: int = 1
    ) -> list[str]:
        return [
            "-e",
            EXPERIMENT,
            "-s",
            STAGE,
            "--workers",
            str(workers),
            *self.overrides(objective, *extra, max_trials=max_trials),
        ]


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite database with MLflow's tables created (by MLflow itself)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(autouse=True)
def _no_tracking_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture
def hpo_project(
    tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HpoProject]:
    """A fresh copy of the example project with ``sweep_objectives.py`` and an empty MLflow
    database at ``mlruns/mlflow.db``."""
    root = tmp_path / "proj"
    shutil.copytree(
        EXAMPLE,
        root,
        ignore=shutil.ignore_patterns("outputs", "mlruns", "__pycache__", ".mypy_cache", "dataset"),
    )
    (root / "sweep_objectives.py").write_text(OBJECTIVES, encoding="utf-8")
    (root / "mlruns").mkdir()
    shutil.copyfile(mlflow_template, root / "mlruns" / "mlflow.db")
    monkeypatch.chdir(root)
    yield HpoProject(root)
    sys.modules.pop("sweep_objectives", None)  # each project has its own copy
    with_root = str(root)
    if with_root in sys.path:
        sys.path.remove(with_root)
