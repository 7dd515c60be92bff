"""MLflow integration. ``mlinfra.tracking.mlflow.index`` holds the specification's run-index and
version functions (they need no MLflow import)."""

from __future__ import annotations

__all__: list[str] = []
