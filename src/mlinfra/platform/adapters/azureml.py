"""The AzureML adapter: the job owns its MLflow run and its named outputs."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from mlinfra.platform.adapters.base import PlatformAdapter

__all__ = ["AzureMLAdapter"]

_JOB_SIGNALS = ("AZUREML_RUN_ID", "AZUREML_EXPERIMENT_ID", "AZUREML_CR_EXECUTION_WORKING_DIR_PATH")


class AzureMLAdapter(PlatformAdapter):
    """An AzureML command job.

    Named outputs come from ``$AZURE_ML_OUTPUT_<NAME>`` (what AzureML sets for each output of
    the job), then ``$AZURE_ML_OUTPUT_DIR``, then ``paths.yaml`` (its ``env_overrides.azureml``).
    The job's MLflow run is opened by AzureML: :meth:`mlflow_context` yields the active run (or
    ``None``) and neither starts nor ends one.
    """

    name = "azureml"

    def outputs_root(self) -> Path:
        """``$AZURE_ML_OUTPUT_DIR`` when set, else the project's outputs root on AzureML."""
        forced = self.environ.get("AZURE_ML_OUTPUT_DIR", "").strip()
        return Path(forced) if forced else super().outputs_root()

    def output_path(self, name: str) -> Path:
        """``$AZURE_ML_OUTPUT_<NAME>`` when set, else ``<outputs root>/<name>``."""
        named = self.environ.get(f"AZURE_ML_OUTPUT_{name.upper()}", "").strip()
        return Path(named) if named else super().output_path(name)

    def ensure_output_directory(self, name: str) -> Path:
        """The output folder, created, with an ``output_placeholder.txt`` in it: AzureML
        uploads only outputs that hold at least one file."""
        path = super().ensure_output_directory(name)
        marker = path / "output_placeholder.txt"
        if not any(path.iterdir()):
            marker.write_text("created by mlinfra so that AzureML keeps this output\n")
        return path

    def mlflow_context(
        self, run_name: str | None = None, *, tags: Mapping[str, str] | None = None
    ) -> AbstractContextManager[Any]:
        """The job's own run: yields ``mlflow.active_run()`` and leaves the run to AzureML."""
        from mlinfra.core.imports import require

        mlflow = require("mlflow", feature="MLflow runs")
        if tags and mlflow.active_run() is not None:
            mlflow.set_tags(dict(tags))
        return contextlib.nullcontext(mlflow.active_run())

    def is_platform_job(self) -> bool:
        """Whether AzureML started this process (one of its job variables is set)."""
        return any(self.environ.get(name) for name in _JOB_SIGNALS)
