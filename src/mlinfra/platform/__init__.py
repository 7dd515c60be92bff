"""Platforms: which one this process runs on, and an adapter for what differs between them.

``local``, ``colab``, ``kaggle`` and ``azureml`` are the only platform names, and the same names
are the storage-environment keys of ``paths.yaml``. :func:`detect_platform` reads
``$MLINFRA_PLATFORM`` first, then the variables each runtime sets (:data:`SIGNALS`);
:func:`explain_platform` also says why. :func:`get_platform_adapter` returns the adapter: outputs
root, MLflow run, logging, checkpoint resolution.
"""

from __future__ import annotations

from mlinfra.core.platforms import (
    PLATFORM_ENV,
    PLATFORMS,
    SIGNALS,
    PlatformDetection,
    detect_platform,
    explain_platform,
)
from mlinfra.platform.adapters import (
    AzureMLAdapter,
    ColabAdapter,
    KaggleAdapter,
    LocalAdapter,
    PlatformAdapter,
)
from mlinfra.platform.checkpoints import WEIGHT_FILES, resolve_checkpoint_dir
from mlinfra.platform.factory import ADAPTERS, get_platform_adapter
from mlinfra.platform.logs import setup_logging
from mlinfra.platform.metrics import MetricsLogger, metric_value

__all__ = [
    "ADAPTERS",
    "PLATFORMS",
    "PLATFORM_ENV",
    "SIGNALS",
    "WEIGHT_FILES",
    "AzureMLAdapter",
    "ColabAdapter",
    "KaggleAdapter",
    "LocalAdapter",
    "MetricsLogger",
    "PlatformAdapter",
    "PlatformDetection",
    "detect_platform",
    "explain_platform",
    "get_platform_adapter",
    "metric_value",
    "resolve_checkpoint_dir",
    "setup_logging",
]
