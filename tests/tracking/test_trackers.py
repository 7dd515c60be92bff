"""Stage trackers against a real MLflow SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

from mlinfra.errors import TrackingError
from mlinfra.naming import NamingContext, create_naming_context
from mlinfra.naming.display_policy import load_naming_policy
from mlinfra.naming.tags import load_tags_registry
from mlinfra.registry import SqlRegistry
from mlinfra.tracking.mlflow.setup import setup_mlflow
from mlinfra.tracking.mlflow.trackers import (
    TrackingTarget,
    track_benchmark,
    track_cv_fold,
    track_hpo_sweep,
    track_hpo_trial,
    track_refit,
    track_run,
)

STUDY = "350a79aa" * 8
TRIAL = "747428f2" * 8


@pytest.fixture
def target(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TrackingTarget]:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = example_project / "config"
    setup = setup_mlflow(experiment_name="trackers", root_dir=example_project, environ={})
    registry = SqlRegistry(f"sqlite:///{example_project / 'registry.db'}")
    yield TrackingTarget(
        registry,
        setup.tracking_uri,
        setup.experiment_id,
        load_naming_policy(cfg, environ={}),
        load_tags_registry(cfg, environ={}),
        "resume-ner",
    )
    registry.close()


def _client(target: TrackingTarget) -> Any:
    return mlflow.MlflowClient(tracking_uri=target.tracking_uri)


def _sweep(**fields: Any) -> NamingContext:
    return create_naming_context(
        process_type="hpo", model="distilbert", environment="local", study_key_hash=STUDY, **fields
    )


class _Trial:
    def __init__(self, number: int) -> None:
        self.number = number
        self.user_attrs: dict[str, Any] = {}

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value


def test_a_run_ends_finished_with_params_and_batched_metrics(target: TrackingTarget) -> None:
    with track_hpo_sweep(target, _sweep(), params={"sampler": "tpe"}) as run:
        for step in range(2500):  # more than one log_batch request holds
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"best": 0.9, "trials": 3}, step=0)
        run.set_tags({"note": "x" * 6000})
    client = _client(target)
    finished = client.get_run(run.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.data.params == {"sampler": "tpe"}
    assert len(client.get_metric_history(run.run_id, "loss")) == 2500
    assert finished.data.metrics["best"] == 0.9
    assert len(finished.data.tags["note"]) <= 5000


class _Boom(Exception):
    pass


def test_an_exception_marks_the_run_failed_and_propagates_unchanged(
    target: TrackingTarget,
) -> None:
    error = _Boom("training diverged")
    with pytest.raises(_Boom) as caught, track_hpo_sweep(target, _sweep()) as run:
        run.log_metric("loss", 3.0)
        raise error
    assert caught.value is error
    failed = _client(target).get_run(run.run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.metrics["loss"] == 3.0  # queued values are flushed first


def test_ctrl_c_marks_the_run_killed(target: TrackingTarget) -> None:
    with pytest.raises(KeyboardInterrupt), track_hpo_sweep(target, _sweep()) as run:
        raise KeyboardInterrupt
    assert _client(target).get_run(run.run_id).info.status == "KILLED"


def test_a_rerun_reopens_the_same_run(target: TrackingTarget) -> None:
    with pytest.raises(_Boom), track_hpo_sweep(target, _sweep()) as first:
        raise _Boom
    with track_hpo_sweep(target, _sweep()) as again:
        assert _client(target).get_run(again.run_id).info.status == "RUNNING"
    assert again.run_id == first.run_id
    assert _client(target).get_run(again.run_id).info.status == "FINISHED"


def test_sweep_trial_fold_refit_lineage(target: TrackingTarget) -> None:
    client = _client(target)
    trial = _Trial(3)
    with track_hpo_sweep(target, _sweep()) as sweep:
        trial_ctx = _sweep(trial_number=3, trial_key_hash=TRIAL)
        with track_hpo_trial(target, trial_ctx, parent_run_id=sweep.run_id, trial=trial) as t:
            fold_ctx = trial_ctx.with_(fold_idx=1)
            with track_cv_fold(target, fold_ctx, parent_run_id=t.run_id) as fold:
                fold.log_metric("f1", 0.8)
        refit_ctx = trial_ctx.with_(process_type="hpo_refit")
        with track_refit(
            target, refit_ctx, parent_run_id=sweep.run_id, trial_run_id=t.run_id
        ) as refit:
            pass
    assert trial.user_attrs == {"mlflow_run_id": t.run_id, "mlflow_run_name": t.run_name}
    trial_run = client.get_run(t.run_id)
    assert trial_run.data.tags["mlflow.parentRunId"] == sweep.run_id
    assert trial_run.data.tags["code.hpo.trial_number"] == "3"
    assert client.get_run(fold.run_id).data.tags["mlflow.parentRunId"] == t.run_id
    assert fold.run_name == "local_distilbert_hpo_trial_study-350a79aa_t03_fold1"
    refit_tags = client.get_run(refit.run_id).data.tags
    assert refit_tags["code.lineage.hpo_trial_run_id"] == t.run_id
    assert refit_tags["code.lineage.hpo_sweep_run_id"] == sweep.run_id


def test_stage_helpers_check_the_context(target: TrackingTarget) -> None:
    trial = _sweep(trial_number=1, trial_key_hash=TRIAL)
    with (
        pytest.raises(TrackingError, match="must not name a trial"),
        track_hpo_sweep(target, trial),
    ):
        pass
    with (
        pytest.raises(TrackingError, match="needs a benchmarking context"),
        track_benchmark(target, _sweep()),
    ):
        pass
    with (
        pytest.raises(TrackingError, match="needs fold_idx"),
        track_cv_fold(target, trial, parent_run_id="x"),
    ):
        pass
    assert _client(target).search_runs([target.experiment_id]) == []  # nothing was created


def test_benchmark_with_lineage(target: TrackingTarget) -> None:
    ctx = create_naming_context(
        process_type="benchmarking",
        model="distilbert",
        environment="local",
        study_key_hash=STUDY,
        trial_key_hash=TRIAL,
        benchmark_config_hash="abcdef12" * 8,
    )
    with track_benchmark(target, ctx, lineage={"hpo_trial_run_id": "abc"}) as run:
        run.log_metric("latency_ms", 12.5)
    tags = _client(target).get_run(run.run_id).data.tags
    assert tags["code.lineage.hpo_trial_run_id"] == "abc"
    assert run.run_name.startswith("local_distilbert_benchmark_study-350a79aa_trial-747428f2")


def test_artifacts_and_missing_artifact(target: TrackingTarget, tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("ok")
    with track_run(target, _sweep()) as run:
        run.log_artifact(tmp_path / "report.txt")
        with pytest.raises(TrackingError, match="no such file"):
            run.log_artifact(tmp_path / "missing.txt")
    names = [a.path for a in _client(target).list_artifacts(run.run_id)]
    assert names == ["report.txt"]


# ---- fingerprints and metadata.json ---------------------------------------------------------


def _final(**fields: Any) -> NamingContext:
    return create_naming_context(
        process_type="final_training",
        model="distilbert",
        environment="local",
        spec_fp="ab" * 32,
        exec_fp="cd" * 32,
        **fields,
    )


@pytest.fixture
def indexed(target: TrackingTarget, example_project: Path) -> TrackingTarget:
    """The target with a project root: metadata is indexed in its registry."""
    import dataclasses

    return dataclasses.replace(target, root_dir=example_project)


def test_fingerprints_become_tags_and_an_artifact(
    target: TrackingTarget, example_project: Path
) -> None:
    import json

    from mlinfra.fingerprints import fingerprint_experiment

    fps = fingerprint_experiment(example_project / "config", "resume_ner_baseline", stage="smoke")
    with track_hpo_sweep(target, _sweep(), fingerprints=fps) as run:
        pass
    client = _client(target)
    tags = client.get_run(run.run_id).data.tags
    hashes = fps.hashes()
    assert tags["code.fingerprint.config"] == hashes["config"]
    assert tags["code.fingerprint.data"] == hashes["data"]
    assert tags["code.fingerprint.code"] == hashes["code"]
    assert tags["code.fingerprint.env"] == hashes["env"]
    assert tags["code.spec_fp"] == hashes["spec"] and tags["code.exec_fp"] == hashes["exec"]
    local = client.download_artifacts(run.run_id, "mlinfra/fingerprints.json", str(example_project))
    assert json.loads(Path(local).read_text())["hashes"] == hashes


def test_a_context_with_its_own_spec_fp_keeps_it_in_the_tags(
    target: TrackingTarget, example_project: Path
) -> None:
    from mlinfra.fingerprints import fingerprint_experiment

    fps = fingerprint_experiment(example_project / "config", "resume_ner_baseline")
    from mlinfra.tracking.mlflow.trackers import fingerprint_tags

    tags = fingerprint_tags(target.tags, fps, _final())
    assert "code.spec_fp" not in tags and "code.exec_fp" not in tags
    assert tags["code.fingerprint.config"] == fps.config.hash


def test_an_output_folder_gets_metadata_indexed_in_the_registry(
    indexed: TrackingTarget, example_project: Path
) -> None:
    from mlinfra.fingerprints import fingerprint_experiment
    from mlinfra.metadata import find_by_spec_fp, read_metadata

    fps = fingerprint_experiment(example_project / "config", "resume_ner_baseline")
    folder = example_project / "outputs" / "final_training" / "v1"
    context = _final()
    with track_run(indexed, context, fingerprints=fps, output_dir=folder) as run:
        running = read_metadata(folder)
        assert running["status"]["final_training"]["state"] == "running"
    meta = read_metadata(folder)
    assert meta["mlflow"]["run_id"] == run.run_id
    assert meta["mlflow"]["run_name"] == run.run_name
    assert meta["mlflow"]["tracking_uri"] == indexed.tracking_uri
    assert meta["fingerprints"] == fps.hashes()
    assert meta["fingerprint_details"]["config"]["values"] == fps.config.values
    assert meta["spec_fp"] == "ab" * 32 and meta["model"] == "distilbert"
    status = meta["status"]["final_training"]
    assert status["state"] == "finished" and status["ended_at"] >= status["started_at"]
    tags = _client(indexed).get_run(run.run_id).data.tags
    assert tags["code.output_dir"] == "outputs/final_training/v1"
    entries = find_by_spec_fp(example_project, "ab" * 32, registry=indexed.registry)
    assert [e.path for e in entries] == ["outputs/final_training/v1"]
    assert entries[0].run_id == run.run_id


def test_a_failed_block_marks_the_metadata_failed_and_propagates(
    target: TrackingTarget, example_project: Path
) -> None:
    from mlinfra.metadata import read_metadata

    folder = example_project / "outputs" / "final_training" / "v2"
    with (
        pytest.raises(ZeroDivisionError),
        track_run(target, _final(variant=2), output_dir=folder),
    ):
        _ = 1 / 0
    meta = read_metadata(folder)
    assert meta["status"]["final_training"]["state"] == "failed"
    assert "fingerprints" not in meta


def test_credentials_in_params_and_tags_never_reach_mlflow(target: TrackingTarget) -> None:
    params = {"lr": 0.1, "db_password": "hunter2", "dsn": "postgresql://u:hunter2@h/db"}
    with track_hpo_sweep(target, _sweep(), params=params, tags={"api_token": "hunter2"}) as run:
        run.log_params({"hf_token": "hunter2", "batch": 8})
        run.set_tags({"store": "https://u:hunter2@blob/x"})
    data = _client(target).get_run(run.run_id).data
    seen = json.dumps({"params": data.params, "tags": data.tags})
    assert "hunter2" not in seen
    assert data.params["db_password"] == "***" and data.params["hf_token"] == "***"
    assert data.params["dsn"] == "postgresql://u:***@h/db" and data.params["lr"] == "0.1"
    assert data.tags["api_token"] == "***" and data.tags["store"] == "https://u:***@blob/x"
