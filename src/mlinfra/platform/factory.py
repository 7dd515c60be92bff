"""``get_platform_adapter``: detect the platform once and build its adapter."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlinfra.core.platforms import PlatformDetection, check_platform, explain_platform
from mlinfra.errors import ConfigError
from mlinfra.platform.adapters import (
    AzureMLAdapter,
    ColabAdapter,
    KaggleAdapter,
    LocalAdapter,
    PlatformAdapter,
)

if TYPE_CHECKING:
    from mlinfra.config import Project
    from mlinfra.storage import BackupStore

__all__ = ["ADAPTERS", "get_platform_adapter"]

#: The adapter class of each platform.
ADAPTERS: dict[str, type[PlatformAdapter]] = {
    "local": LocalAdapter,
    "colab": ColabAdapter,
    "kaggle": KaggleAdapter,
    "azureml": AzureMLAdapter,
}


def get_platform_adapter(
    default_output_dir: str | os.PathLike[str] | None = None,
    *,
    platform: str | None = None,
    project: Project | None = None,
    environ: Mapping[str, str] | None = None,
    backup_store: BackupStore | None = None,
) -> PlatformAdapter:
    """The adapter of the platform this process runs on.

    Args:
        default_output_dir: An outputs root to use instead of the project's ``paths.yaml``.
        platform: Force a platform (default: :func:`~mlinfra.core.platforms.detect_platform`).
        project: The project (default: discovered from the working directory, unless
            ``default_output_dir`` is given).
        environ: The environment to detect from and to read run variables from (default:
            ``os.environ``).
        backup_store: Where outputs are backed up (see :meth:`PlatformAdapter.resolve_checkpoint`).

    Raises:
        ConfigError: an unknown platform name (argument or ``$MLINFRA_PLATFORM``), or no project
            was found and no ``default_output_dir`` given.
    """
    env = dict(os.environ) if environ is None else dict(environ)
    try:
        detection = explain_platform(env)
        name = check_platform(platform) if platform is not None else detection.platform
    except ValueError as exc:
        raise ConfigError(str(exc), key="platform") from None
    if platform is not None:
        detection = PlatformDetection(
            name, "override", (), f"asked for by the caller (detected: {detection.platform})"
        )
    if project is None and default_output_dir is None:
        from mlinfra.config import Project

        project = Project.discover(environ=env)
    return ADAPTERS[name](
        project,
        default_output_dir=default_output_dir,
        environ=env,
        backup_store=backup_store,
        detection=detection,
    )
