"""``paths.yaml`` with a storage environment's overrides applied.

Every function in :mod:`mlinfra.paths` that produces a path goes through
:func:`load_paths_config` (or takes its result), so the ``env_overrides`` of ``colab``,
``kaggle`` and ``azureml`` apply to all of them alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlinfra.config import PathsConfig, load_infra_config
from mlinfra.config.models import BaseSection
from mlinfra.core.platforms import check_platform
from mlinfra.errors import PathError

__all__ = ["apply_env_overrides", "load_paths_config", "outputs_root"]


def apply_env_overrides(paths: PathsConfig, storage_env: str | None) -> PathsConfig:
    """``paths`` with ``env_overrides[storage_env]`` merged over ``base`` and ``outputs``.

    Raises:
        PathError: ``storage_env`` is not a known platform name.
    """
    if storage_env is None:
        return paths
    try:
        check_platform(storage_env, what="storage environment")
    except ValueError as exc:
        raise PathError(str(exc), key="storage_env", value=storage_env) from None
    override = paths.env_overrides.get(storage_env)  # type: ignore[call-overload]
    if override is None:
        return paths
    base = BaseSection.model_validate({**paths.base.model_dump(), **override.base})
    outputs = {**paths.outputs, **override.outputs}
    return paths.model_copy(update={"base": base, "outputs": outputs})


def load_paths_config(
    config_dir: str | Path,
    storage_env: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> PathsConfig:
    """Read and validate ``<config_dir>/paths.yaml``, with ``storage_env``'s overrides applied.

    Nothing is cached, so two calls for different folders or environments never share a result.

    Raises:
        ConfigError: the file is missing or invalid.
        PathError: ``storage_env`` is not a known platform name.
    """
    return apply_env_overrides(load_infra_config(config_dir, "paths", environ=environ), storage_env)


def outputs_root(root_dir: str | Path, paths: PathsConfig) -> Path:
    """The outputs folder: ``base.outputs`` as is when absolute, else below ``root_dir``."""
    base = Path(paths.base.outputs)
    return base if base.is_absolute() else Path(root_dir) / base
