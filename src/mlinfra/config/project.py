"""A project: its root and config folder, discovered once at the edge and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mlinfra.config.files import load_infra_config
from mlinfra.config.models import MlflowConfig, NamingConfig, PathsConfig, TagsConfig
from mlinfra.errors import ConfigError

__all__ = ["PROJECT_ENV", "Project"]

#: Environment variable naming the project root, used when no folder is given.
PROJECT_ENV = "MLINFRA_PROJECT_ROOT"
_MARKERS = ("paths.yaml", "experiment")


def _is_config_dir(folder: Path) -> bool:
    return folder.is_dir() and any((folder / m).exists() for m in _MARKERS)


def _missing_markers(root: Path, config_dir: Path, environ: Mapping[str, str]) -> list[str]:
    """Markers that ``paths.yaml`` (``repository_root.markers``) requires but ``root`` lacks."""
    if not (config_dir / "paths.yaml").is_file():
        return []
    markers = load_infra_config(config_dir, "paths", environ=environ).repository_root.markers
    return [m for m in markers if not (root / m).exists()]


@dataclass(frozen=True)
class Project:
    """A project root and its config folder; the library's files load on first access.

    Attributes:
        root: The project root (outputs and the default MLflow database live under it).
        config_dir: The config folder (default ``<root>/config``).
        environ: The environment ``${VAR}`` expressions read.
    """

    root: Path
    config_dir: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    @classmethod
    def discover(
        cls,
        start: str | Path | None = None,
        *,
        project: str | Path | None = None,
        config_dir: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Project:
        """Find the project, in this order: ``config_dir``; ``project``;
        ``$MLINFRA_PROJECT_ROOT``; the nearest folder at or above ``start`` (default: the working
        directory) that has a ``config/`` folder holding ``paths.yaml`` or ``experiment/`` and
        every marker ``paths.yaml`` lists under ``repository_root.markers``.

        Nothing is cached: two calls with different arguments never share an answer.

        Raises:
            ConfigError: nothing was found, or a given folder is not a project.
        """
        env = dict(os.environ) if environ is None else dict(environ)
        if config_dir is not None:
            cfg = Path(config_dir).resolve()
            if not cfg.is_dir():
                raise ConfigError(f"config folder not found: {cfg}")
            root = Path(project).resolve() if project is not None else cfg.parent
            return cls(root, cfg, env)
        given = project if project is not None else env.get(PROJECT_ENV) or None
        if given is not None:
            root = Path(given).resolve()
            origin = "--project" if project is not None else PROJECT_ENV
            if not _is_config_dir(root / "config"):
                raise ConfigError(
                    f"{origin} {root} has no config/ folder with paths.yaml or experiment/"
                )
            missing = _missing_markers(root, root / "config", env)
            if missing:
                raise ConfigError(
                    f"{origin} {root} lacks the markers paths.yaml requires: {', '.join(missing)}"
                )
            return cls(root, root / "config", env)
        here = Path(start).resolve() if start is not None else Path.cwd().resolve()
        if here.is_file():
            here = here.parent
        for folder in (here, *here.parents):
            for root, cfg in ((folder, folder / "config"), (folder.parent, folder)):
                if (
                    cfg.name == "config"
                    and _is_config_dir(cfg)
                    and not _missing_markers(root, cfg, env)
                ):
                    return cls(root, cfg, env)
        raise ConfigError(
            f"no mlinfra project at or above {here}: expected a config/ folder holding paths.yaml "
            f"or experiment/; pass --project or --config-dir, or set {PROJECT_ENV}"
        )

    @cached_property
    def paths(self) -> PathsConfig:
        """``paths.yaml``, validated."""
        return load_infra_config(self.config_dir, "paths", environ=self.environ)

    @cached_property
    def naming(self) -> NamingConfig:
        """``naming.yaml``, validated."""
        return load_infra_config(self.config_dir, "naming", environ=self.environ)

    @cached_property
    def tags(self) -> TagsConfig:
        """``tags.yaml``, validated."""
        return load_infra_config(self.config_dir, "tags", environ=self.environ)

    @cached_property
    def mlflow(self) -> MlflowConfig:
        """``mlflow.yaml``, validated."""
        return load_infra_config(self.config_dir, "mlflow", environ=self.environ)
