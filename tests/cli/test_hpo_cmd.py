"""``mlinfra hpo`` through the CLI (click's runner, in process) in a copy of the example project.

The project's default stores are used from scratch (``mlruns/mlflow.db`` created by the first
sweep, ``study.db`` in the study folder); ``MLFLOW_*``/``MLINFRA_*`` variables are unset.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mlflow import MlflowClient

from mlinfra.cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "resume_ner"
OBJECTIVE = """\
import json


def objective(ctx):
    (ctx.output_dir / "result.json").write_text(json.dumps(ctx.params), encoding="utf-8")
    return ctx.params["learning_rate"] * 1e4
"""
SMOKE = ["-s", "smoke", "hpo.sampling.max_trials=3"]
ENTRY = "++hpo.objective.entrypoint=cli_objective:objective"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the example with ``cli_objective.py``; the working directory."""
    root = tmp_path / "proj"
    shutil.copytree(
        EXAMPLE,
        root,
        ignore=shutil.ignore_patterns("outputs", "mlruns", "__pycache__", ".mypy_cache"),
    )
    (root / "cli_objective.py").write_text(OBJECTIVE, encoding="utf-8")
    for name in list(os.environ):
        if name.startswith(("MLFLOW_", "MLINFRA_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(root)
    yield root
    sys.modules.pop("cli_objective", None)
    if str(root) in sys.path:
        sys.path.remove(str(root))


def _hpo(*args: str) -> Result:
    return CliRunner().invoke(cli, ["hpo", "--no-progress", *args], catch_exceptions=False)


def _runs(root: Path) -> list[object]:
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids, max_results=1000))


def _line(output: str, label: str) -> str:
    found = re.search(rf"^{label}\s+(.*)$", output, re.MULTILINE)
    assert found, f"no {label!r} line in:\n{output}"
    return found.group(1)


@pytest.mark.slow
def test_sweep_then_rerun_adds_nothing(project: Path) -> None:
    first = _hpo(*SMOKE, ENTRY)  # the only experiment: no --experiment needed

    assert first.exit_code == 0, first.output + first.stderr
    assert _line(first.stdout, "trials").startswith(
        "3/3 finished (3 completed, 0 pruned, 0 failed)"
    )
    assert "3 run now" in first.stdout
    best = _line(first.stdout, "best trial")
    assert re.fullmatch(r"#\d: macro-f1 = \d\.\d{4} \(maximize\)", best), best
    assert f"mlflow ui --backend-store-uri 'sqlite:///{project}/mlruns/mlflow.db'" in first.stdout
    runs = _runs(project)
    assert len(runs) == 4
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]  # type: ignore[attr-defined]
    assert len(parents) == 1
    assert parents[0].info.run_id in _line(first.stdout, "sweep run")  # type: ignore[attr-defined]
    names = {r.info.run_name for r in runs}  # type: ignore[attr-defined]
    assert len(names) == 4
    assert _line(first.stdout, "best run") in names
    best_dir = Path(_line(first.stdout, "best output"))
    assert json.loads((best_dir / "result.json").read_text(encoding="utf-8"))
    assert (best_dir / "metadata.json").is_file()

    again = _hpo(*SMOKE, ENTRY)

    assert again.exit_code == 0, again.output + again.stderr
    assert "0 run now" in again.stdout
    assert _line(again.stdout, "best trial") == best
    assert _line(again.stdout, "sweep run") == _line(first.stdout, "sweep run")
    assert {r.info.run_id for r in _runs(project)} == {r.info.run_id for r in runs}  # type: ignore[attr-defined]


def test_no_entrypoint_is_a_clear_error(project: Path) -> None:
    result = _hpo(*SMOKE)

    assert result.exit_code == 1
    assert "names no objective" in result.stderr
    assert "hpo.objective.entrypoint" in result.stderr
    assert "Traceback" not in result.output + result.stderr


@pytest.mark.parametrize(
    ("entrypoint", "words"),
    [
        ("nowhere_module:objective", ("cannot import", "nowhere_module")),
        ("cli_objective:nothing", ("has no", "nothing")),
    ],
)
def test_unusable_entrypoint_is_a_clear_error(
    project: Path, entrypoint: str, words: tuple[str, ...]
) -> None:
    result = _hpo(*SMOKE, f"+hpo.objective.entrypoint={entrypoint}")

    assert result.exit_code == 1
    assert "hpo.objective.entrypoint" in result.stderr
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not (project / "mlruns").exists()  # nothing was tracked


def test_malformed_entrypoint_is_a_clear_error(project: Path) -> None:
    result = _hpo(*SMOKE, "+hpo.objective.entrypoint=not a function")

    assert result.exit_code == 1
    assert "hpo.objective.entrypoint" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_workers_must_be_positive(project: Path) -> None:
    result = _hpo(*SMOKE, ENTRY, "--workers", "0")

    assert result.exit_code == 2
    assert "--workers" in result.stderr
