"""Where the registry lives: a URL for several machines, else a SQLite file on local disk.

Precedence: an explicit ``url`` > ``$MLINFRA_REGISTRY_URL`` > ``$MLINFRA_DATABASE_URL`` (the
shared database) > ``registry.url`` in ``mlflow.yaml`` > ``shared.database`` in ``mlflow.yaml`` >
``<outputs>/<cache>/mlinfra_registry.db`` from ``paths.yaml`` (with the storage environment's
overrides). The environment beats files; within one source the specific setting beats the shared
one. A SQLite file on a network or FUSE mount is refused.

The shared database (:data:`DATABASE_ENV`, ``shared.database``) also holds the Optuna studies
(:func:`mlinfra.hpo.study.study_storage_url`); :func:`sqlalchemy_url` turns the
``postgresql://`` URLs users write into the psycopg 3 form SQLAlchemy (Optuna, MLflow) needs.
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
    "DATABASE_ENV",
    "REGISTRY_ENV",
    "REGISTRY_FILE",
    "check_local_disk",
    "open_registry",
    "registry_path",
    "resolve_registry_url",
    "sqlalchemy_url",
]

REGISTRY_ENV = "MLINFRA_REGISTRY_URL"
#: One PostgreSQL URL for the study storage and the registry of every worker.
DATABASE_ENV = "MLINFRA_DATABASE_URL"
REGISTRY_FILE = "mlinfra_registry.db"


def sqlalchemy_url(url: str) -> str:
    """``url`` with ``postgres://``/``postgresql://`` turned into ``postgresql+psycopg://``.

    SQLAlchemy opens a bare ``postgresql://`` URL with psycopg2; mlinfra's ``postgres`` extra
    installs psycopg 3. A URL that names its driver (``postgresql+psycopg2://``) is kept.
    """
    text = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    return text


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
    chosen = url or env.get(REGISTRY_ENV) or env.get(DATABASE_ENV) or None
    folder: Path | None = None
    if root_dir is not None or config_dir is not None:
        folder = Path(config_dir) if config_dir is not None else Path(root_dir or ".") / "config"
    if chosen is None and folder is not None and (folder / "mlflow.yaml").is_file():
        configured = load_infra_config(folder, "mlflow", environ=env)
        chosen = configured.registry.url or configured.shared.database or None
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
