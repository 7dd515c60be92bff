"""Tracking: the run registry (run index and run-name versions) and MLflow integration.

Heavy parts load on first use: ``mlinfra.tracking.registry`` (SQLAlchemy) and the MLflow helpers
import their dependencies only when imported themselves.
"""

from __future__ import annotations

__all__: list[str] = []
