"""Tracking: MLflow setup and the run registry (run index and run-name versions).

Heavy parts load on first use: ``setup_mlflow`` imports MLflow when called, and
``mlinfra.registry`` loads SQLAlchemy when imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlinfra.tracking.mlflow.runs import (
        ParamsChangedError,
        RunHandle,
        find_mlflow_run,
        find_or_create_run,
    )
    from mlinfra.tracking.mlflow.setup import MlflowSetup, setup_mlflow
    from mlinfra.tracking.mlflow.trackers import (
        RunTracker,
        TrackingTarget,
        track_benchmark,
        track_conversion,
        track_cv_fold,
        track_final_training,
        track_hpo_sweep,
        track_hpo_trial,
        track_refit,
        track_run,
    )

__all__ = [
    "MlflowSetup",
    "ParamsChangedError",
    "RunHandle",
    "RunTracker",
    "TrackingTarget",
    "find_mlflow_run",
    "find_or_create_run",
    "setup_mlflow",
    "track_benchmark",
    "track_conversion",
    "track_cv_fold",
    "track_final_training",
    "track_hpo_sweep",
    "track_hpo_trial",
    "track_refit",
    "track_run",
]

_HOMES = {
    "MlflowSetup": "setup",
    "setup_mlflow": "setup",
    "ParamsChangedError": "runs",
    "RunHandle": "runs",
    "find_mlflow_run": "runs",
    "find_or_create_run": "runs",
    **{name: "trackers" for name in __all__ if name.startswith("track") or name == "RunTracker"},
    "TrackingTarget": "trackers",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        module = importlib.import_module(f"mlinfra.tracking.mlflow.{_HOMES[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
