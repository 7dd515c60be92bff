"""Output folders from ``paths.yaml``: by category and pattern, or by a run's identity.

``resolve_output_path`` renders ``patterns.<category>`` below ``outputs/<category>``;
``build_output_path`` renders the hash-based layout of a stage from its
:class:`~mlinfra.naming.NamingContext`. Both apply the storage environment's overrides, normalise
and check every value, and check the finished path; neither creates anything on disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from mlinfra.config import PathsConfig
from mlinfra.core.canonical import short_hash
from mlinfra.core.placeholders import Pattern
from mlinfra.errors import PathError
from mlinfra.naming import NamingContext
from mlinfra.paths.config import apply_env_overrides, load_paths_config, outputs_root
from mlinfra.paths.validation import render_pattern, validate_output_path

__all__ = [
    "PROCESS_LAYOUTS",
    "Layout",
    "build_output_path",
    "category_dir",
    "context_values",
    "resolve_output_path",
]


@dataclass(frozen=True)
class Layout:
    """Where a process type's folders live: a category (or a cache sub-folder) and a pattern."""

    category: str
    pattern_key: str
    cache_subcategory: str | None = None
    suffix: str | None = None


PROCESS_LAYOUTS: Mapping[str, Layout] = MappingProxyType(
    {
        "hpo": Layout("hpo", "hpo_v2"),
        "hpo_refit": Layout("hpo", "hpo_v2", suffix="refit"),
        "benchmarking": Layout("benchmarking", "benchmarking_v2"),
        "final_training": Layout("final_training", "final_training_v2"),
        "conversion": Layout("conversion", "conversion_v2"),
        "best_configurations": Layout("cache", "best_config_v2", "best_configurations"),
    }
)


def category_dir(
    root_dir: str | Path, paths: PathsConfig, category: str, subcategory: str | None = None
) -> Path:
    """``outputs/<outputs.category>`` (or ``outputs/<outputs.cache>/<cache.subcategory>``).

    Raises:
        PathError: an unknown category or cache sub-category; the message lists the known ones.
    """
    base = outputs_root(root_dir, paths)
    if category not in paths.outputs:
        raise PathError(
            f"unknown output category {category!r}; paths.yaml 'outputs' has: "
            f"{', '.join(sorted(paths.outputs)) or 'none'}",
            key=category,
            value=category,
        )
    folder = base / paths.outputs[category]
    if subcategory is None:
        return folder
    if category != "cache":
        raise PathError(f"only the 'cache' category has sub-categories, not {category!r}")
    if subcategory not in paths.cache:
        raise PathError(
            f"unknown cache sub-category {subcategory!r}; paths.yaml 'cache' has: "
            f"{', '.join(sorted(paths.cache)) or 'none'}",
            key=subcategory,
            value=subcategory,
        )
    return folder / paths.cache[subcategory]


def _finish(path: Path, root_dir: str | Path, paths: PathsConfig) -> Path:
    root = Path(root_dir) if not Path(paths.base.outputs).is_absolute() else None
    return validate_output_path(
        path, root=root, max_path_length=paths.normalize_paths.max_path_length
    )


def resolve_output_path(
    root_dir: str | Path,
    config_dir: str | Path,
    category: str,
    *,
    storage_env: str | None = None,
    subcategory: str | None = None,
    paths: PathsConfig | None = None,
    environ: Mapping[str, str] | None = None,
    **placeholders: object,
) -> Path:
    """The folder for ``category``, with ``patterns.<category>`` rendered from ``placeholders``.

    Args:
        root_dir: The project root; a relative ``base.outputs`` is placed below it.
        config_dir: The config folder holding ``paths.yaml`` (ignored when ``paths`` is given).
        category: A key of ``outputs`` in ``paths.yaml`` (``hpo``, ``final_training``, ...).
        storage_env: ``local`` (default), ``colab``, ``kaggle`` or ``azureml``: its
            ``env_overrides`` apply.
        subcategory: For ``category="cache"``, a key of ``cache`` in ``paths.yaml``.
        paths: An already loaded ``paths.yaml`` (overrides are still applied).
        environ: Environment for ``${VAR}`` in ``paths.yaml``.
        **placeholders: Values for the category's pattern. ``None`` means "no value", which
            drops an optional ``[...]`` segment.

    Raises:
        PathError: an unknown category, placeholder or value that is unsafe; nothing is created.

    Example:
        With the example project's ``paths.yaml``
        (``hpo: "{backbone}[/study_{study_hash}]"``)::

            resolve_output_path(Path("."), Path("config/"), "hpo",
                                backbone="distilbert", study_hash="abc123")
            # -> Path("outputs/hpo/distilbert/study_abc123")
    """
    cfg = (
        load_paths_config(config_dir, storage_env, environ=environ)
        if paths is None
        else apply_env_overrides(paths, storage_env)
    )
    folder = category_dir(root_dir, cfg, category, subcategory)
    given = {k: v for k, v in placeholders.items() if v is not None}
    pattern = cfg.patterns.get(category) if subcategory is None else None
    if pattern is None:
        if given:
            raise PathError(
                f"paths.yaml has no pattern for category {category!r}, so placeholder(s) "
                f"{', '.join(sorted(given))} cannot be placed; add patterns.{category}",
                key=category,
                placeholder=sorted(given)[0],
            )
        return _finish(folder, root_dir, cfg)
    rendered = render_pattern(pattern, placeholders, cfg, pattern_key=category)
    return _finish(folder.joinpath(*rendered.parts), root_dir, cfg)


def _short(value: str | None) -> str | None:
    return None if value is None else short_hash(value) if len(value) >= 8 else value


def context_values(context: NamingContext) -> dict[str, object]:
    """The path placeholder values a context provides (short hashes are 8 characters)."""
    return {
        "storage_env": context.storage_env,
        "model": context.model,
        "backbone": context.model,
        "stage": context.stage,
        "study8": _short(context.study_key_hash),
        "study_hash": _short(context.study_key_hash),
        "trial8": _short(context.trial_key_hash),
        "bench8": _short(context.benchmark_config_hash),
        "spec8": _short(context.spec_fp),
        "exec8": _short(context.exec_fp),
        "conv8": _short(context.conv_fp),
        "spec_fp": context.spec_fp,
        "exec_fp": context.exec_fp,
        "conv_fp": context.conv_fp,
        "variant": context.variant,
        "trial_number": context.trial_number,
        "fold_idx": context.fold_idx,
        "trial_id": context.trial_id,
        "parent_training_id": context.parent_training_id,
    }


def build_output_path(
    root_dir: str | Path,
    context: NamingContext,
    *,
    config_dir: str | Path | None = None,
    paths: PathsConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The hash-based folder of a stage run, from ``paths.yaml``'s ``*_v2`` patterns.

    The storage environment is ``context.storage_env``; the layout per process type is
    :data:`PROCESS_LAYOUTS` (``hpo_refit`` adds a ``refit`` folder below the trial's).

    Args:
        root_dir: The project root.
        context: The run's identity.
        config_dir: The config folder (default ``<root_dir>/config``; ignored with ``paths``).
        paths: An already loaded ``paths.yaml``.
        environ: Environment for ``${VAR}`` in ``paths.yaml``.

    Raises:
        PathError: the pattern is missing from ``paths.yaml``, the context lacks a value the
            pattern needs, or a value is unsafe. Nothing is created.
    """
    if paths is None:
        folder_cfg = Path(config_dir) if config_dir is not None else Path(root_dir) / "config"
        cfg = load_paths_config(folder_cfg, context.storage_env, environ=environ)
    else:
        cfg = apply_env_overrides(paths, context.storage_env)
    layout = PROCESS_LAYOUTS[context.process_type]
    pattern = cfg.patterns.get(layout.pattern_key)
    if pattern is None:
        raise PathError(
            f"paths.yaml has no patterns.{layout.pattern_key}, needed for "
            f"{context.process_type} folders; add it (see the example project)",
            key=layout.pattern_key,
        )
    folder = category_dir(root_dir, cfg, layout.category, layout.cache_subcategory)
    values = context_values(context)
    if (context.is_trial or context.process_type == "hpo_refit") and values["trial8"] is None:
        raise PathError(
            f"patterns.{layout.pattern_key}: a trial's folder needs its trial_key_hash; without "
            f"it every trial of study {values['study8']} would share one folder (trial number "
            f"{context.trial_number})",
            pattern=pattern,
            key="trial_key_hash",
            placeholder="trial8",
        )
    needed = [n for n in Pattern.parse(pattern).required() if values.get(n) is None]
    if needed:
        raise PathError(
            f"patterns.{layout.pattern_key} ({pattern!r}) needs {', '.join(needed)}, which this "
            f"{context.process_type} context does not have",
            pattern=pattern,
            placeholder=needed[0],
            key=needed[0],
        )
    used = {k: v for k, v in values.items() if k in Pattern.parse(pattern).names()}
    rendered = render_pattern(pattern, used, cfg, pattern_key=layout.pattern_key)
    path = folder.joinpath(*rendered.parts)
    if layout.suffix:
        path = path / layout.suffix
    return _finish(path, root_dir, cfg)
