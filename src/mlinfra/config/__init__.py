"""Configuration: YAML loading with provenance, composition, merge, overrides, validation.

The entry points:

* :func:`load_experiment_config`: which domain files an experiment (and stage) uses;
* :func:`compose_experiment`: the full tree, overridden, interpolated, validated, with the source
  of every leaf;
* :func:`merge_configs_with_precedence` and :func:`apply_argument_overrides`: the merge and
  override rules, on plain dicts;
* :func:`load_infra_config` and :class:`Project`: the library's own files, validated.
"""

from __future__ import annotations

from mlinfra.config.check import validate_config_dir
from mlinfra.config.files import load_infra_config
from mlinfra.config.loader import (
    ExperimentConfig,
    ResolvedConfig,
    compose_experiment,
    list_experiments,
    load_all_configs,
    load_experiment_config,
)
from mlinfra.config.merge import merge_configs_with_precedence
from mlinfra.config.models import (
    PLATFORMS,
    ExperimentFile,
    HpoSpec,
    MlflowConfig,
    NamingConfig,
    PathsConfig,
    TagsConfig,
)
from mlinfra.config.overrides import ARGUMENT_KEYS, apply_argument_overrides, parse_override
from mlinfra.config.project import Project
from mlinfra.config.tree import Source

__all__ = [
    "ARGUMENT_KEYS",
    "PLATFORMS",
    "ExperimentConfig",
    "ExperimentFile",
    "HpoSpec",
    "MlflowConfig",
    "NamingConfig",
    "PathsConfig",
    "Project",
    "ResolvedConfig",
    "Source",
    "TagsConfig",
    "apply_argument_overrides",
    "compose_experiment",
    "list_experiments",
    "load_all_configs",
    "load_experiment_config",
    "load_infra_config",
    "merge_configs_with_precedence",
    "parse_override",
    "validate_config_dir",
]
