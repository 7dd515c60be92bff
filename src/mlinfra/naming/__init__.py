"""Naming: the identity of a stage run as a context, a readable unique run name, run keys, tags.

* :func:`create_naming_context` builds the validated :class:`NamingContext` everything else uses;
* :func:`format_run_name` / :func:`build_mlflow_run_name` render its run name from
  ``naming.yaml`` (:func:`load_naming_policy`);
* :func:`build_mlflow_run_key` and the study and trial key functions define identity (what each
  key holds is documented in :mod:`mlinfra.naming.keys`);
* :func:`build_mlflow_tags` records that identity as MLflow tags keyed by ``tags.yaml``;
* :func:`build_mlflow_experiment_name` names the MLflow experiment.
"""

from __future__ import annotations

from mlinfra.naming.context import (
    PROCESS_TYPES,
    STAGE_NAMES,
    NamingContext,
    create_naming_context,
    process_type_for_stage,
)
from mlinfra.naming.display_policy import (
    MLFLOW_RUN_NAME_MAX_LENGTH,
    build_mlflow_run_name,
    build_parent_training_id,
    format_run_name,
    load_naming_policy,
    naming_key_for,
    parse_parent_training_id,
    sanitize_semantic_suffix,
    validate_run_name,
)
from mlinfra.naming.experiments import (
    MAX_EXPERIMENT_NAME_LENGTH,
    build_aml_experiment_name,
    build_mlflow_experiment_name,
)
from mlinfra.naming.keys import (
    STUDY_KEY_SCHEMA,
    TRIAL_KEY_SCHEMA,
    build_counter_key,
    build_hpo_study_key,
    build_hpo_trial_key,
    build_mlflow_run_key,
    build_mlflow_run_key_hash,
    compute_study_key_hash,
    compute_trial_key_hash,
    get_or_compute_study_key_hash,
    get_or_compute_trial_key_hash,
)
from mlinfra.naming.tags import (
    TagKeyError,
    TagsRegistry,
    build_mlflow_tags,
    load_tags_registry,
    sanitize_tag_value,
)

__all__ = [
    "MAX_EXPERIMENT_NAME_LENGTH",
    "MLFLOW_RUN_NAME_MAX_LENGTH",
    "PROCESS_TYPES",
    "STAGE_NAMES",
    "STUDY_KEY_SCHEMA",
    "TRIAL_KEY_SCHEMA",
    "NamingContext",
    "TagKeyError",
    "TagsRegistry",
    "build_aml_experiment_name",
    "build_counter_key",
    "build_hpo_study_key",
    "build_hpo_trial_key",
    "build_mlflow_experiment_name",
    "build_mlflow_run_key",
    "build_mlflow_run_key_hash",
    "build_mlflow_run_name",
    "build_mlflow_tags",
    "build_parent_training_id",
    "compute_study_key_hash",
    "compute_trial_key_hash",
    "create_naming_context",
    "format_run_name",
    "get_or_compute_study_key_hash",
    "get_or_compute_trial_key_hash",
    "load_naming_policy",
    "load_tags_registry",
    "naming_key_for",
    "parse_parent_training_id",
    "process_type_for_stage",
    "sanitize_semantic_suffix",
    "sanitize_tag_value",
    "validate_run_name",
]
