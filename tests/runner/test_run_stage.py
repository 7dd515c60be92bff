"""`mlinfra run STAGE` / run_stage: identity, run modes and errors, against a real MLflow store,
registry and Optuna study in a copy of the example project."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner

from mlinfra.cli.main import cli
from mlinfra.config import Project
from mlinfra.errors import ConfigError
from mlinfra.metadata import read_metadata
from mlinfra.runner import run_stage, should_reuse_existing

MODULE = """
import os

def train(ctx):
    if os.environ.get("TRAIN_FAILS"):
        raise RuntimeError("out of memory")
    (ctx.output_dir / "model.txt").write_text(f"v{ctx.variant} resumed={ctx.resumed}")
    return {"macro-f1": 0.8}

def convert(ctx):
    assert (ctx.parent_dir / "model.txt").is_file()
    (ctx.output_dir / "model.onnx").write_text("onnx")
    return 1.0

def bench(ctx):
    (ctx.output_dir / "bench.json").write_text("{}")
    return {"latency_ms": 1.5, "n_params": len(ctx.params)}

def objective(ctx):
    return ctx.params["learning_rate"] * 1000

def bad(ctx):
    return "fast"
"""

STAGES = """  final_training:
    entrypoint: stage_funcs:train
  conversion:
    entrypoint: stage_funcs:convert
  benchmarking:
    entrypoint: stage_funcs:bench
    source_stage: smoke
  broken:
    entrypoint: stage_funcs:bad
    process_type: final_training
"""


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in ("MLFLOW_TRACKING_URI", "MLINFRA_PLATFORM", "MLINFRA_REGISTRY_URL", "TRAIN_FAILS"):
        monkeypatch.delenv(name, raising=False)
    (example_project / "stage_funcs.py").write_text(MODULE)
    exp = example_project / "config" / "experiment" / "resume_ner_baseline.yaml"
    text = exp.read_text()
    anchor = "    backbones: [distilbert]\n"
    exp.write_text(text.replace(anchor, anchor + STAGES, 1))
    monkeypatch.syspath_prepend(str(example_project))
    return Project.discover(project=example_project, environ={})


def _runs(project: Project) -> list[object]:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project.root / 'mlruns' / 'mlflow.db'}")
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids))


def test_reuse_if_exists_keeps_a_finished_output(project: Project) -> None:
    first = run_stage(project, "resume_ner_baseline", "final_training")
    assert first.action == "ran" and first.variant == 1 and first.metrics == {"macro-f1": 0.8}
    assert (first.output_dir / "model.txt").read_text() == "v1 resumed=False"
    meta = read_metadata(first.output_dir)
    assert meta["status"]["final_training"]["state"] == "finished"
    assert meta["mlflow"]["run_id"] == first.run_id and meta["variant"] == 1
    again = run_stage(project, "resume_ner_baseline", "final_training")
    assert again.action == "reused" and again.output_dir == first.output_dir
    assert again.run_id == first.run_id
    assert len(_runs(project)) == 1


def test_force_new_starts_the_next_variant(project: Project) -> None:
    first = run_stage(project, "resume_ner_baseline", "final_training")
    second = run_stage(project, "resume_ner_baseline", "final_training", mode="force_new")
    assert (second.action, second.variant) == ("ran", 2)
    assert second.output_dir.name == "v2" and second.output_dir.parent == first.output_dir.parent
    assert second.run_id != first.run_id and second.run_name != first.run_name


def test_resume_if_incomplete_reruns_in_the_same_folder_and_run(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAIN_FAILS", "1")
    with pytest.raises(RuntimeError, match="out of memory"):
        run_stage(project, "resume_ner_baseline", "final_training")
    (failed,) = _runs(project)
    monkeypatch.delenv("TRAIN_FAILS")
    resumed = run_stage(
        project, "resume_ner_baseline", "final_training", mode="resume_if_incomplete"
    )
    assert (resumed.action, resumed.variant) == ("resumed", 1)
    assert resumed.run_id == failed.info.run_id  # type: ignore[attr-defined]
    assert (resumed.output_dir / "model.txt").read_text() == "v1 resumed=True"
    assert len(_runs(project)) == 1
    # now finished: resume_if_incomplete keeps it
    kept = run_stage(project, "resume_ner_baseline", "final_training", mode="resume_if_incomplete")
    assert kept.action == "reused"


def test_reuse_if_exists_after_a_failure_starts_a_new_variant(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAIN_FAILS", "1")
    with pytest.raises(RuntimeError):
        run_stage(project, "resume_ner_baseline", "final_training")
    monkeypatch.delenv("TRAIN_FAILS")
    again = run_stage(project, "resume_ner_baseline", "final_training")
    assert (again.action, again.variant) == ("ran", 2)


def test_conversion_converts_the_finished_training(project: Project) -> None:
    with pytest.raises(ConfigError, match="no finished final training"):
        run_stage(project, "resume_ner_baseline", "conversion")
    trained = run_stage(project, "resume_ner_baseline", "final_training")
    converted = run_stage(project, "resume_ner_baseline", "conversion")
    assert converted.action == "ran" and converted.metrics == {"value": 1.0}
    # outputs/conversion/<env>/<model>/spec-..._exec-.../v1/conv-xxxxxxxx mirrors the training
    assert converted.output_dir.parent.name == trained.output_dir.name == "v1"
    assert converted.output_dir.parent.parent.name == trained.output_dir.parent.name
    assert converted.output_dir.name.startswith("conv-")
    assert run_stage(project, "resume_ner_baseline", "conversion").action == "reused"


def test_benchmarking_measures_the_best_trial_of_the_study(project: Project) -> None:
    from mlinfra.hpo.runner import run_sweep

    overrides = ["+hpo.objective.entrypoint=stage_funcs:objective", "hpo.sampling.max_trials=3"]
    with pytest.raises(ConfigError, match="no study yet"):
        run_stage(project, "resume_ner_baseline", "benchmarking", overrides=overrides)
    sweep = run_sweep(project, "resume_ner_baseline", stage="smoke", overrides=overrides)
    bench = run_stage(project, "resume_ner_baseline", "benchmarking", overrides=overrides)
    assert bench.action == "ran" and bench.metrics == {"latency_ms": 1.5, "n_params": 2.0}
    assert bench.variant is None
    assert f"trial-{bench.output_dir.parent.name.removeprefix('trial-')}" in str(
        sweep.best_output_dir
    )


def test_bad_input_is_a_clear_error(project: Project) -> None:
    with pytest.raises(ConfigError, match="unknown stage 'nope'"):
        run_stage(project, "resume_ner_baseline", "nope")
    with pytest.raises(ConfigError, match="stage 'training' has no entrypoint"):
        run_stage(project, "resume_ner_baseline", "training")
    with pytest.raises(ConfigError, match="unknown run mode 'sometimes'"):
        run_stage(project, "resume_ner_baseline", "final_training", mode="sometimes")
    with pytest.raises(ConfigError, match="returned str"):
        run_stage(project, "resume_ner_baseline", "broken")


def test_run_modes_decision_table() -> None:
    assert should_reuse_existing("reuse_if_exists", True, True)
    assert should_reuse_existing("reuse_if_exists", True, None)
    assert not should_reuse_existing("reuse_if_exists", True, False)
    assert not should_reuse_existing("reuse_if_exists", False, None)
    assert not should_reuse_existing("force_new", True, True)
    assert should_reuse_existing("resume_if_incomplete", True, True)
    assert not should_reuse_existing("resume_if_incomplete", True, False)


def test_cli_runs_and_keeps(project: Project) -> None:
    runner = CliRunner()
    args = ["run", "final_training", "--project", str(project.root)]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "ran final_training" in first.output and "variant  1" in first.output
    second = runner.invoke(cli, args)
    assert second.exit_code == 0 and second.output.startswith("kept ")
    bad = runner.invoke(cli, [*args[:1], "nope", *args[2:]])
    assert bad.exit_code == 1 and "unknown stage 'nope'" in bad.output
