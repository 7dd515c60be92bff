"""The MLflow run a stage logs to, opened from the environment variables a launcher sets.

The protocol (every variable optional, read in this order):

1. ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_NAME`` select the store and the experiment;
2. ``MLFLOW_CHILD_RUN_ID`` resumes that run;
3. else ``MLFLOW_PARENT_RUN_ID`` starts a child run of it (``MLFLOW_TRIAL_NUMBER`` becomes the
   ``trial_number`` tag);
4. else a new run named ``run_name`` (or ``MLFLOW_RUN_NAME``) starts.

The run ends with the block: ``FINISHED``, or ``FAILED`` when the block raises (the exception is
re-raised, never replaced).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from mlinfra.core.imports import require
from mlinfra.errors import ConfigError

__all__ = ["mlflow_run_context"]


@contextlib.contextmanager
def mlflow_run_context(
    environ: Mapping[str, str],
    run_name: str | None = None,
    *,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """Open the MLflow run the environment asks for (see the module docstring); yield it.

    Raises:
        ConfigError: no run id and no run name (pass ``run_name`` or set ``MLFLOW_RUN_NAME``).
    """
    mlflow = require("mlflow", feature="MLflow runs")
    uri = environ.get("MLFLOW_TRACKING_URI", "").strip()
    if uri:
        mlflow.set_tracking_uri(uri)
    experiment = environ.get("MLFLOW_EXPERIMENT_NAME", "").strip()
    if experiment:
        mlflow.set_experiment(experiment)
    child = environ.get("MLFLOW_CHILD_RUN_ID", "").strip()
    parent = environ.get("MLFLOW_PARENT_RUN_ID", "").strip()
    name = run_name or environ.get("MLFLOW_RUN_NAME", "").strip() or None
    all_tags = dict(tags or {})
    if child:
        run = mlflow.start_run(run_id=child)
    elif parent:
        trial = environ.get("MLFLOW_TRIAL_NUMBER", "").strip()
        if trial:
            all_tags.setdefault("trial_number", trial)
        run = mlflow.start_run(run_name=name, parent_run_id=parent, nested=True)
    elif name is None:
        raise ConfigError(
            "no MLflow run to open: pass run_name, or set MLFLOW_RUN_NAME, MLFLOW_CHILD_RUN_ID "
            "or MLFLOW_PARENT_RUN_ID",
            key="run_name",
        )
    else:
        run = mlflow.start_run(run_name=name)
    with run:
        if all_tags:
            mlflow.set_tags(all_tags)
        yield run
