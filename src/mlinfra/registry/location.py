"""Where the registry lives: a URL for several machines, else a SQLite file on local disk.

Precedence: an explicit ``url`` > ``$MLINFRA_REGISTRY_URL`` > ``registry.url`` in
``mlflow.yaml`` > ``<outputs>/<cache>/mlinfra_registry.db`` from ``paths.yaml`` (with the
storage environment's overrides). A SQLite file on a network or FUSE mount is refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mlinfra.config import load_infra_config
from mlinfra.core.filesystems import Mount, network_filesystem_reason
from mlinfra.errors import ConfigError, UnsafeStorageError
from mlinfra.paths import category_dir, load_paths_config
from mlinfra.registry.sql import SqlRegistry

__all__ = [
    "REGISTRY_ENV",
    "REGISTRY_FILE",
    "check_local_disk",
    "open_registry",
    "registry_path",
    "resolve_registry_url",
]

REGISTRY_ENV = "MLINFRA_REGISTRY_URL"
REGISTRY_FILE = "mlinfra_registry.db"


def registry_path(
    root_dir: str | Path,
    config_dir: str | Path | None = None,
    *,
    storage_env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The default SQLite registry file: ``<outputs>/<outputs.cache>/mlinfra_registry.db``.

    Nothing is created.
    """
    folder = Path(config_dir) if config_dir is not None else Path(root_dir) / "config"
    paths = load_paths_config(folder, storage_env, environ=environ)
    cache = (
        category_dir(root_dir, paths, "cache")
        if "cache" in paths.outputs
        else (Path(root_dir) / paths.base.outputs / "cache")
    )
    return Path(os.path.abspath(cache / REGISTRY_FILE))


def check_local_disk(
    path: Path, *, mounts: list[Mount] | None = None, what: str = "database"
) -> None:
    """Refuse a SQLite file on a network or FUSE file system.

    Raises:
        UnsafeStorageError: with the reason and what to do instead.
    """
    reason = network_filesystem_reason(path, mounts)
    if reason is not None:
        raise UnsafeStorageError(
            f"refusing to keep the {what} there: {reason}. SQLite's locks do not work on such "
            "file systems and the file can be corrupted. Keep it on local disk (the default "
            "under outputs/cache), back it up to the mount with `mlinfra` backups, or use a "
            f"PostgreSQL URL ({REGISTRY_ENV}) to share it between machines",
            file=str(path),
        )


def resolve_registry_url(
    root_dir: str | Path | None = None,
    config_dir: str | Path | None = None,
    *,
    url: str | None = None,
    storage_env: str | None = None,
    environ: Mapping[str, str] | None = None,
    mounts: list[Mount] | None = None,
) -> str:
    """The registry URL by the precedence in the module docstring.

    Raises:
        ConfigError: neither a URL nor a project to place the file in.
        UnsafeStorageError: the SQLite file would be on a network or FUSE mount.
    """
    env = os.environ if environ is None else environ
    chosen = url or env.get(REGISTRY_ENV) or None
    folder: Path | None = None
    if root_dir is not None or config_dir is not None:
        folder = Path(config_dir) if config_dir is not None else Path(root_dir or ".") / "config"
    if chosen is None and folder is not None and (folder / "mlflow.yaml").is_file():
        chosen = load_infra_config(folder, "mlflow", environ=env).registry.url or None
    if chosen is None:
        if root_dir is None:
            raise ConfigError(f"no registry location: pass a project root, or set {REGISTRY_ENV}")
        path = registry_path(root_dir, config_dir, storage_env=storage_env, environ=env)
        chosen = f"sqlite:///{path}"
    if chosen.startswith("sqlite:///"):
        check_local_disk(Path(chosen.removeprefix("sqlite:///")), mounts=mounts, what="registry")
    return chosen


def open_registry(
    root_dir: str | Path | None = None,
    config_dir: str | Path | None = None,
    *,
    url: str | None = None,
    storage_env: str | None = None,
    environ: Mapping[str, str] | None = None,
    busy_timeout: float = 60.0,
) -> SqlRegistry:
    """Open (creating if needed) the project's registry; see the module docstring for where."""
    resolved = resolve_registry_url(
        root_dir, config_dir, url=url, storage_env=storage_env, environ=environ
    )
    return SqlRegistry(resolved, busy_timeout=busy_timeout)
