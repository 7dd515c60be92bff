"""Per-output metadata: ``metadata.json`` in each output folder, and its index in the registry.

* :mod:`~mlinfra.metadata.store`: read and update ``metadata.json`` (schema-versioned, UTC
  timestamps, deep-merge updates under an inter-process lock, atomic writes).
* :mod:`~mlinfra.metadata.fingerprinted`: the specification's ``save_metadata_with_fingerprints``,
  ``load_metadata_by_fingerprints`` and ``find_metadata_by_spec_fp``.
* :mod:`~mlinfra.metadata.status`: the training-metadata predicates and getters.
* :mod:`~mlinfra.metadata.index`: the metadata index in the run registry and its finders.

Importing this package loads neither SQLAlchemy nor the config layer; the functions that need
the registry or ``paths.yaml`` load them on first use.
"""

from __future__ import annotations

from mlinfra.metadata.fingerprinted import (
    context_identity,
    find_metadata_by_spec_fp,
    load_metadata_by_fingerprints,
    save_metadata_with_fingerprints,
)
from mlinfra.metadata.index import (
    RebuildReport,
    find_by_env,
    find_by_model,
    find_by_spec_and_env,
    find_by_spec_fp,
    find_outputs,
    get_latest_entry,
    output_folder,
    output_key,
    rebuild_metadata_index,
    update_metadata_index,
)
from mlinfra.metadata.status import (
    are_conversion_artifacts_uploaded,
    are_training_artifacts_uploaded,
    get_checkpoint_path,
    get_onnx_model_path,
    get_stage_status,
    is_benchmarking_complete,
    is_conversion_complete,
    is_training_complete,
)
from mlinfra.metadata.store import (
    LOCK_SUFFIX,
    METADATA_FILE,
    SCHEMA,
    get_mlflow_info,
    metadata_path,
    read_metadata,
    update_metadata,
    update_mlflow_info_in_metadata,
    update_status,
)

__all__ = [
    "LOCK_SUFFIX",
    "METADATA_FILE",
    "SCHEMA",
    "RebuildReport",
    "are_conversion_artifacts_uploaded",
    "are_training_artifacts_uploaded",
    "context_identity",
    "find_by_env",
    "find_by_model",
    "find_by_spec_and_env",
    "find_by_spec_fp",
    "find_metadata_by_spec_fp",
    "find_outputs",
    "get_checkpoint_path",
    "get_latest_entry",
    "get_mlflow_info",
    "get_onnx_model_path",
    "get_stage_status",
    "is_benchmarking_complete",
    "is_conversion_complete",
    "is_training_complete",
    "load_metadata_by_fingerprints",
    "metadata_path",
    "output_folder",
    "output_key",
    "read_metadata",
    "rebuild_metadata_index",
    "save_metadata_with_fingerprints",
    "update_metadata",
    "update_metadata_index",
    "update_mlflow_info_in_metadata",
    "update_status",
]
