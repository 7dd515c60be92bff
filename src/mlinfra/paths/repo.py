"""Finding the project root and its config folder (the specification's helpers).

These wrap :meth:`mlinfra.config.Project.discover`, which caches nothing: a call with other
arguments never returns an earlier call's answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlinfra.config import Project

__all__ = ["detect_repo_root", "resolve_project_paths_with_fallback"]


def detect_repo_root(
    start_path: str | Path | None = None,
    config_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The project root.

    In order: ``config_dir``'s parent; ``$MLINFRA_PROJECT_ROOT``; the nearest folder at or above
    ``output_dir``, else ``start_path``, else the working directory, that holds ``config/`` (with
    ``paths.yaml`` or ``experiment/``) and every marker listed in ``repository_root.markers``.

    Raises:
        ConfigError: no project was found; the message says what was looked for.
    """
    start = output_dir if output_dir is not None else start_path
    return Project.discover(start, config_dir=config_dir, environ=environ).root


def resolve_project_paths_with_fallback(
    output_dir: str | Path | None = None,
    config_dir: str | Path | None = None,
    start_path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[Path, Path]:
    """``(root, config_dir)`` of one project: both always come from the same discovery.

    Raises:
        ConfigError: no project was found.
    """
    start = output_dir if output_dir is not None else start_path
    project = Project.discover(start, config_dir=config_dir, environ=environ)
    return project.root, project.config_dir
