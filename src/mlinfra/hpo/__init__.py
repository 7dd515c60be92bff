"""Hyperparameter sweeps of a user's objective: resumable, tracked, budgeted (``mlinfra hpo``)."""

from __future__ import annotations

from mlinfra.hpo.context import FoldInfo, TrialContext, TrialPrunedError

__all__ = ["FoldInfo", "TrialContext", "TrialPrunedError"]
