"""The library's own configuration files.

``paths.yaml``, ``naming.yaml``, ``tags.yaml`` and ``mlflow.yaml``, each read, interpolated and
validated into its frozen model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal, overload

from pydantic import BaseModel

from mlinfra.config.interpolation import resolve_interpolations
from mlinfra.config.loader import display_path
from mlinfra.config.models import MlflowConfig, NamingConfig, PathsConfig, TagsConfig
from mlinfra.config.validation import validate_tree
from mlinfra.config.yamlio import load_yaml_file
from mlinfra.errors import ConfigError

__all__ = ["INFRA_FILES", "InfraName", "load_infra_config"]

InfraName = Literal["paths", "naming", "tags", "mlflow"]

#: File name → model of every configuration file mlinfra owns.
INFRA_FILES: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        "paths.yaml": PathsConfig,
        "naming.yaml": NamingConfig,
        "tags.yaml": TagsConfig,
        "mlflow.yaml": MlflowConfig,
    }
)


@overload
def load_infra_config(
    config_dir: str | Path, name: Literal["paths"], *, environ: Mapping[str, str] | None = ...
) -> PathsConfig: ...
@overload
def load_infra_config(
    config_dir: str | Path, name: Literal["naming"], *, environ: Mapping[str, str] | None = ...
) -> NamingConfig: ...
@overload
def load_infra_config(
    config_dir: str | Path, name: Literal["tags"], *, environ: Mapping[str, str] | None = ...
) -> TagsConfig: ...
@overload
def load_infra_config(
    config_dir: str | Path, name: Literal["mlflow"], *, environ: Mapping[str, str] | None = ...
) -> MlflowConfig: ...
def load_infra_config(
    config_dir: str | Path, name: InfraName, *, environ: Mapping[str, str] | None = None
) -> BaseModel:
    """Read, interpolate and validate one of the library's files from ``config_dir``.

    ``${...}`` references inside the file resolve against the file itself
    (``${project.name}`` in ``paths.yaml``) and the environment.

    Raises:
        ConfigError: the file is missing or invalid; the error names file, line and key.
    """
    folder = Path(config_dir)
    filename = f"{name}.yaml"
    model = INFRA_FILES.get(filename)
    if model is None:
        raise ConfigError(
            f"unknown configuration file '{name}'; known: "
            + ", ".join(n.removesuffix(".yaml") for n in INFRA_FILES)
        )
    path = folder / filename
    shown = display_path(path, folder)
    if not path.is_file():
        raise ConfigError(f"{filename} not found in {folder}; mlinfra needs it", file=shown)
    tree = load_yaml_file(path, display=shown)
    if not isinstance(tree.data, dict):
        raise ConfigError(f"{filename} must be a mapping of keys", file=shown, line=1)
    tree = resolve_interpolations(tree, os.environ if environ is None else environ)
    return validate_tree(model, tree, file=shown)
