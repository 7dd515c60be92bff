"""The adapter's MLflow run protocol against a real SQLite tracking store."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlinfra.errors import ConfigError, TrackingError
from mlinfra.platform import get_platform_adapter


@pytest.mark.slow
def test_mlflow_context_env_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "exp"}
    adapter = get_platform_adapter(tmp_path / "out", environ=base)
    with pytest.raises(ConfigError, match="no MLflow run to open"):
        adapter.mlflow_context().__enter__()
    with pytest.raises(TrackingError, match="no MLflow run to log to"):
        adapter.metrics_logger().log_metrics({"f1": 0.5})
    with adapter.mlflow_context("parent", tags={"stage": "hpo"}) as parent:
        assert adapter.metrics_logger().log_metrics({"f1": "0.5", "ok": True}) == {
            "f1": 0.5,
            "ok": 1.0,
        }
        adapter.metrics_logger().log_params({"lr": 0.1})
    client = mlflow.tracking.MlflowClient(uri)
    done = client.get_run(parent.info.run_id)
    assert done.info.status == "FINISHED"
    assert done.data.metrics == {"f1": 0.5, "ok": 1.0}
    assert done.data.params == {"lr": "0.1"}
    assert done.data.tags["stage"] == "hpo"
    child_env = {**base, "MLFLOW_PARENT_RUN_ID": parent.info.run_id, "MLFLOW_TRIAL_NUMBER": "3"}
    with (
        pytest.raises(RuntimeError, match="boom"),
        get_platform_adapter(tmp_path / "out", environ=child_env).mlflow_context("t3") as child,
    ):
        raise RuntimeError("boom")
    failed = client.get_run(child.info.run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert failed.data.tags["trial_number"] == "3"
    resume_env = {**base, "MLFLOW_CHILD_RUN_ID": child.info.run_id}
    with get_platform_adapter(tmp_path / "out", environ=resume_env).mlflow_context() as again:
        assert again.info.run_id == child.info.run_id
    aml = get_platform_adapter(tmp_path / "out", environ={"AZUREML_RUN_ID": "j"})
    with aml.mlflow_context("ignored") as run:
        assert run is None  # the job owns its run; none is started here
    assert mlflow.active_run() is None
