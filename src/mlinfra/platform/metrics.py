"""Logging metrics and parameters to the MLflow run of the current platform."""

from __future__ import annotations

import numbers
import os
import time
from collections.abc import Mapping
from typing import Any

from mlinfra.core.imports import require
from mlinfra.errors import TrackingError

__all__ = ["MetricsLogger", "metric_value"]


def metric_value(name: str, value: Any) -> float:
    """``value`` as the float MLflow stores: numbers, booleans, numpy scalars, numeric strings.

    Raises:
        TrackingError: the value is not a number (log it as a parameter or a tag instead).
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    elif hasattr(value, "__float__"):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise TrackingError(
        f"metric {name!r} is not a number (got {type(value).__name__} {value!r}); "
        "log it as a parameter or a tag instead"
    )


class MetricsLogger:
    """Logs to the active MLflow run, or to the run named by ``$MLFLOW_RUN_ID`` when none is
    active (a worker started by a parent process, an AzureML job).

    Args:
        environ: Where ``MLFLOW_RUN_ID`` is read (default: ``os.environ``).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def _run_id(self, mlflow: Any) -> str:
        active = mlflow.active_run()
        if active is not None:
            return str(active.info.run_id)
        run_id = self._environ.get("MLFLOW_RUN_ID", "").strip()
        if run_id:
            return run_id
        raise TrackingError(
            "no MLflow run to log to: none is active and MLFLOW_RUN_ID is not set; open one "
            "with adapter.mlflow_context(run_name)"
        )

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> dict[str, float]:
        """Log ``metrics`` (converted by :func:`metric_value`); return what was logged.

        Raises:
            TrackingError: a value is not a number (nothing is logged), or there is no run.
        """
        values = {name: metric_value(name, value) for name, value in metrics.items()}
        mlflow = require("mlflow", feature="logging metrics")
        run_id = self._run_id(mlflow)
        entities = require("mlflow.entities", feature="logging metrics")
        now = int(time.time() * 1000)
        batch = [entities.Metric(k, v, now, step or 0) for k, v in values.items()]
        mlflow.tracking.MlflowClient().log_batch(run_id, metrics=batch)
        return values

    def log_params(self, params: Mapping[str, Any]) -> dict[str, str]:
        """Log ``params`` as strings; return what was logged.

        Raises:
            TrackingError: there is no run to log to.
        """
        values = {name: str(value) for name, value in params.items()}
        mlflow = require("mlflow", feature="logging parameters")
        run_id = self._run_id(mlflow)
        entities = require("mlflow.entities", feature="logging parameters")
        batch = [entities.Param(k, v) for k, v in values.items()]
        mlflow.tracking.MlflowClient().log_batch(run_id, params=batch)
        return values
