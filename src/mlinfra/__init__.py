"""mlinfra: the infrastructure layer for machine-learning experiments.

One identity for every stage of an experiment: layered validated config, a deterministic key, an
output folder from a pattern, a readable unique run name, an MLflow run found again instead of
duplicated, fingerprints and durable backups.

``import mlinfra`` is light on purpose: mlflow, optuna, azure, pandas and sqlalchemy load on first
use. Import the area you need (``mlinfra.config``, ``mlinfra.paths``, ...).
"""

from __future__ import annotations

from mlinfra.errors import ConfigError, MlinfraError

__all__ = ["ConfigError", "MlinfraError", "__version__"]

__version__ = "0.1.0"
