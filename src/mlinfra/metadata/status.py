"""The specification's training-metadata predicates and getters.

Each takes a metadata dict, an output folder, or a metadata ``.json`` file (such as the
specification's ``outputs/cache/final_training/<training_name>_metadata.json``), and reads the
``status`` block: ``status.training``, ``status.benchmarking`` and ``status.conversion``, each
with ``completed``, ``artifacts_uploaded``, ``checkpoint_path`` / ``onnx_model_path`` and their
``*_at`` timestamps. A flag counts only when it is the JSON value ``true``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlinfra.metadata.store import read_metadata

__all__ = [
    "are_conversion_artifacts_uploaded",
    "are_training_artifacts_uploaded",
    "get_checkpoint_path",
    "get_onnx_model_path",
    "get_stage_status",
    "is_benchmarking_complete",
    "is_conversion_complete",
    "is_training_complete",
]

MetadataSource = Mapping[str, Any] | str | os.PathLike[str]


def get_stage_status(source: MetadataSource, stage: str) -> dict[str, Any]:
    """``status.<stage>`` of the metadata (``{}`` when absent).

    Raises:
        MetadataCorruptError, MetadataSchemaError: ``source`` is a file that cannot be read.
    """
    metadata = source if isinstance(source, Mapping) else read_metadata(source)
    status = metadata.get("status")
    block = status.get(stage) if isinstance(status, Mapping) else None
    return dict(block) if isinstance(block, Mapping) else {}


def _flag(source: MetadataSource, stage: str, name: str) -> bool:
    return get_stage_status(source, stage).get(name) is True


def _path(source: MetadataSource, stage: str, name: str) -> Path | None:
    value = get_stage_status(source, stage).get(name)
    return Path(value) if isinstance(value, str) and value else None


def is_training_complete(source: MetadataSource) -> bool:
    """``status.training.completed`` is true."""
    return _flag(source, "training", "completed")


def are_training_artifacts_uploaded(source: MetadataSource) -> bool:
    """``status.training.artifacts_uploaded`` is true."""
    return _flag(source, "training", "artifacts_uploaded")


def is_benchmarking_complete(source: MetadataSource) -> bool:
    """``status.benchmarking.completed`` is true."""
    return _flag(source, "benchmarking", "completed")


def is_conversion_complete(source: MetadataSource) -> bool:
    """``status.conversion.completed`` is true."""
    return _flag(source, "conversion", "completed")


def are_conversion_artifacts_uploaded(source: MetadataSource) -> bool:
    """``status.conversion.artifacts_uploaded`` is true."""
    return _flag(source, "conversion", "artifacts_uploaded")


def get_checkpoint_path(source: MetadataSource) -> Path | None:
    """``status.training.checkpoint_path`` as stored (relative paths stay relative), or
    ``None``."""
    return _path(source, "training", "checkpoint_path")


def get_onnx_model_path(source: MetadataSource) -> Path | None:
    """``status.conversion.onnx_model_path`` as stored, or ``None``."""
    return _path(source, "conversion", "onnx_model_path")
