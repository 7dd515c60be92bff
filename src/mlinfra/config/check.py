"""Checking a whole config folder at once, collecting every problem instead of stopping at one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mlinfra.config.files import INFRA_FILES, load_infra_config
from mlinfra.config.loader import (
    compose_experiment,
    display_path,
    list_experiments,
    load_experiment_config,
)
from mlinfra.config.yamlio import load_yaml_file
from mlinfra.errors import ConfigError, ConfigErrorGroup

__all__ = ["validate_config_dir"]


def _collect(problems: list[ConfigError], exc: ConfigError) -> None:
    items = exc.errors if isinstance(exc, ConfigErrorGroup) else [exc]
    for item in items:
        if str(item) not in {str(p) for p in problems}:
            problems.append(item)


def validate_config_dir(
    config_dir: str | Path,
    *,
    experiment: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[ConfigError]:
    """Check every YAML file under ``config_dir`` and every experiment (or only ``experiment``).

    Checks, in order: each file parses safely (syntax, tags, duplicate keys, size); the library's
    own files validate against their models; each experiment composes, with and without each of
    its stages. Returns every problem found (an empty list means the folder is valid).
    """
    folder = Path(config_dir)
    env = os.environ if environ is None else environ
    problems: list[ConfigError] = []
    if not folder.is_dir():
        return [ConfigError(f"config folder not found: {folder}")]
    broken: set[Path] = set()
    for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
        try:
            load_yaml_file(path, display=display_path(path, folder))
        except ConfigError as exc:
            broken.add(path.resolve())
            _collect(problems, exc)
    for filename in INFRA_FILES:
        path = folder / filename
        if path.is_file() and path.resolve() not in broken:
            try:
                load_infra_config(folder, filename.removesuffix(".yaml"), environ=env)  # type: ignore[call-overload]
            except ConfigError as exc:
                _collect(problems, exc)
    names = [experiment] if experiment is not None else list_experiments(folder)
    for name in names:
        try:
            exp = load_experiment_config(folder, name)
        except ConfigError as exc:
            _collect(problems, exc)
            continue
        for stage in [None, *exp.stages]:
            try:
                compose_experiment(folder, name, stage=stage, environ=env)
            except ConfigError as exc:
                _collect(problems, exc)
    return problems
