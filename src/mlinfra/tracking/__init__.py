"""Tracking: MLflow setup and the run registry (run index and run-name versions).

Heavy parts load on first use: ``setup_mlflow`` imports MLflow when called, and
``mlinfra.tracking.registry`` loads SQLAlchemy when imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlinfra.tracking.mlflow.setup import MlflowSetup, setup_mlflow

__all__ = ["MlflowSetup", "setup_mlflow"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mlinfra.tracking.mlflow import setup

        return getattr(setup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
