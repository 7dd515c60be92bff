"""Running one stage of an experiment (``mlinfra run STAGE``) under mlinfra's identity."""

from __future__ import annotations

from mlinfra.runner.stage import (
    RUN_MODES,
    RunMode,
    StageContext,
    StageResult,
    run_stage,
    should_reuse_existing,
)

__all__ = [
    "RUN_MODES",
    "RunMode",
    "StageContext",
    "StageResult",
    "run_stage",
    "should_reuse_existing",
]
