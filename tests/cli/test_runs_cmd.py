"""``mlinfra runs list|find`` against a real MLflow SQLite store, in a copy of the example."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from click.testing import CliRunner, Result

from mlinfra.cli.main import cli
from mlinfra.naming import NamingContext, create_naming_context
from mlinfra.naming.display_policy import load_naming_policy
from mlinfra.naming.tags import load_tags_registry
from mlinfra.registry import SqlRegistry, open_registry
from mlinfra.tracking.mlflow.runs import RunHandle, find_or_create_run
from mlinfra.tracking.mlflow.setup import setup_mlflow

STUDY = "350a79aa" * 8
TRIAL = "747428f2" * 8
ENV_VARS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLINFRA_REGISTRY_URL",
    "MLINFRA_PLATFORM",
    "MLINFRA_PROJECT_ROOT",
)


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(example_project)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return example_project


@dataclass
class Made:
    uri: str
    registry: SqlRegistry
    sweep: RunHandle
    bench: RunHandle


def _sweep() -> NamingContext:
    return create_naming_context(
        process_type="hpo", model="distilbert", environment="local", study_key_hash=STUDY
    )


def _bench() -> NamingContext:
    return create_naming_context(
        process_type="benchmarking",
        model="distilbert",
        environment="local",
        study_key_hash=STUDY,
        trial_key_hash=TRIAL,
    )


@pytest.fixture
def made(project: Path) -> Iterator[Made]:
    """Two runs made by find_or_create_run: an HPO sweep (finished, with a metric), then a
    benchmark (running), in the project's default MLflow database and registry."""
    config = project / "config"
    setup = setup_mlflow(root_dir=project, environ={})
    registry = open_registry(project, config, environ={})
    kwargs: dict[str, Any] = {
        "registry": registry,
        "tracking_uri": setup.tracking_uri,
        "experiment_id": setup.experiment_id,
        "policy": load_naming_policy(config, environ={}),
        "tags": load_tags_registry(config, environ={}),
        "project_name": "resume-ner",
    }
    sweep = find_or_create_run(_sweep(), **kwargs)
    client = mlflow.MlflowClient(tracking_uri=setup.tracking_uri)
    client.log_metric(sweep.run_id, "f1", 0.5)
    client.log_metric(sweep.run_id, "f1", 0.75)
    client.set_terminated(sweep.run_id)
    time.sleep(0.01)  # start times are in milliseconds: keep the order unambiguous
    bench = find_or_create_run(_bench(), **kwargs)
    yield Made(setup.tracking_uri, registry, sweep, bench)
    registry.close()


def _runs(*args: str) -> Result:
    return CliRunner().invoke(cli, ["runs", *args])


def _find_sweep(*extra: str) -> Result:
    return _runs("find", "process=hpo", "model=distilbert", f"study_key_hash={STUDY}", *extra)


# ---- runs list ---------------------------------------------------------------------------------


def test_list_shows_names_statuses_stages_and_keys_newest_first(made: Made) -> None:
    result = _runs("list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["run", "name", "status", "stage", "key"]
    assert lines[1].split() == [
        "local_distilbert_benchmark_study-350a79aa_trial-747428f2_1",
        "RUNNING",
        "benchmarking",
        made.bench.run_key_hash[:12],
    ]
    assert lines[2].split() == [
        "local_distilbert_hpo_study-350a79aa_1",
        "FINISHED",
        "hpo",
        made.sweep.run_key_hash[:12],
    ]
    assert len(lines) == 3
    assert "2 run(s) in experiment 'resume-ner'" in result.stderr


def test_list_filters_by_stage_and_shows_a_metric(made: Made) -> None:
    result = _runs("list", "--stage", "hpo", "--metric", "f1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["run", "name", "status", "stage", "key", "f1"]
    assert lines[1].split()[0] == "local_distilbert_hpo_study-350a79aa_1"
    assert lines[1].split()[-1] == "0.75"  # the latest value
    assert len(lines) == 2
    assert "with code.stage=hpo" in result.stderr


def test_a_metric_a_run_lacks_shows_a_dash(made: Made) -> None:
    result = _runs("list", "--metric", "f1")
    assert result.exit_code == 0, result.output
    bench_line = result.stdout.splitlines()[1]
    assert bench_line.startswith("local_distilbert_benchmark_") and bench_line.split()[-1] == "-"


def test_list_respects_the_limit(made: Made) -> None:
    result = _runs("list", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
    assert "--limit reached" in result.stderr


def test_a_stage_without_runs_lists_nothing(made: Made) -> None:
    result = _runs("list", "--stage", "conversion")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "0 run(s)" in result.stderr


def test_an_unknown_experiment_lists_the_existing_ones(made: Made) -> None:
    result = _runs("list", "--experiment", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no experiment 'nope'")
    assert "resume-ner" in result.stderr and "Default" in result.stderr


def test_the_experiment_name_comes_from_the_environment_before_mlflow_yaml(
    made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "other")
    result = _runs("list")
    assert result.exit_code == 1
    assert "no experiment 'other'" in result.stderr


def test_without_a_database_it_says_so_and_creates_nothing(project: Path) -> None:
    result = _runs("list")
    assert result.exit_code == 0, result.output
    db = project / "mlruns" / "mlflow.db"
    assert result.stdout.strip() == f"no runs yet (no MLflow database at {db})"
    assert not (project / "mlruns").exists()


def test_a_quote_in_the_stage_is_a_usage_error(made: Made) -> None:
    result = _runs("list", "--stage", "hpo' OR '1'='1")
    assert result.exit_code == 2
    assert "Invalid value for --stage: must not contain quotes" in result.stderr


def test_an_unreachable_server_is_an_error_not_a_hang(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    started = time.monotonic()
    result = _runs("list")
    assert result.exit_code == 1
    assert "the tracking server does not answer" in result.stderr
    assert "mlinfra doctor" in result.stderr
    assert time.monotonic() - started < 30


# ---- runs find ---------------------------------------------------------------------------------


def test_find_through_the_registry(made: Made) -> None:
    result = _find_sweep()
    assert result.exit_code == 0, result.output
    assert f"run id:     {made.sweep.run_id}" in result.stdout
    assert "run name:   local_distilbert_hpo_study-350a79aa_1" in result.stdout
    assert "status:     FINISHED" in result.stdout
    assert "found by:   registry" in result.stdout
    assert "experiment: resume-ner" in result.stdout
    assert f"key hash:   {made.sweep.run_key_hash}" in result.stdout


def test_find_by_tag_when_the_registry_lost_the_entry(made: Made) -> None:
    assert made.registry.remove_run(made.sweep.run_key_hash, made.uri)
    result = _find_sweep()
    assert result.exit_code == 0, result.output
    assert f"run id:     {made.sweep.run_id}" in result.stdout
    assert "found by:   tag search" in result.stdout
    # find only reads: the registry is not repaired
    assert made.registry.find_run(made.sweep.run_key_hash, made.uri) is None


def test_find_accepts_stage_names_aliases_and_a_platform(made: Made) -> None:
    result = _runs(
        "find",
        "process=benchmark",
        "backbone=distilbert",
        f"study_hash={STUDY}",
        f"trial_key_hash={TRIAL}",
        "--platform",
        "local",
    )
    assert result.exit_code == 0, result.output
    assert f"run id:     {made.bench.run_id}" in result.stdout


def test_a_context_without_a_run_is_not_found(made: Made) -> None:
    result = _runs("find", "process=hpo", "model=distilbert", f"study_key_hash={TRIAL}")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no MLflow run found for run key hpo:distilbert:")
    assert "has no entry for it" in result.stderr
    assert "has the tag code.run_key_hash=" in result.stderr


def test_a_deleted_run_is_not_found(made: Made) -> None:
    mlflow.MlflowClient(tracking_uri=made.uri).delete_run(made.sweep.run_id)
    result = _find_sweep()
    assert result.exit_code == 1
    assert f"the registry's run {made.sweep.run_id} is deleted" in result.stderr


def test_find_without_a_database_creates_nothing(project: Path) -> None:
    result = _find_sweep()
    assert result.exit_code == 1
    assert "there is no registry yet" in result.stderr
    assert "there is no MLflow database at" in result.stderr
    assert not (project / "mlruns").exists()
    assert not (project / "outputs").exists()


def test_find_needs_the_process(project: Path) -> None:
    result = _runs("find", "model=distilbert", f"study_key_hash={STUDY}")
    assert result.exit_code == 2
    assert "give the process as process=" in result.stderr


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("process=nope", "model=distilbert"), "unknown process 'nope'"),
        (("process=hpo", "colour=red"), "unknown field 'colour'"),
        (("process=hpo", "process=hpo"), "process is given twice"),
        (("process=hpo_trial", "stage=hpo_sweep"), "disagrees with process=hpo_trial"),
    ],
)
def test_bad_fields_are_usage_errors(project: Path, fields: tuple[str, ...], message: str) -> None:
    result = _runs("find", *fields)
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_context_missing_a_key_field_is_an_error(project: Path) -> None:
    result = _runs("find", "process=hpo", "model=distilbert")
    assert result.exit_code == 1
    assert result.stderr.startswith("error:") and "study_key_hash" in result.stderr
