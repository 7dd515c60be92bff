"""Readable run names from the patterns of ``naming.yaml``.

A run name is chosen by a *naming key* (``hpo_trial``, ``final_training``, ...) that follows from
the context (:func:`naming_key_for`), rendered from that key's pattern, and validated against the
policy's limits. Placeholder values:

* ``{env}``: the context's ``storage_env``, normalised with ``normalize.env``;
* ``{model}``: the context's model, normalised with ``normalize.model``;
* ``{version}``: empty, or the registry's version number rendered with ``version.format``;
* ``{semantic_suffix}``: the study name made safe by :func:`sanitize_semantic_suffix`, or empty;
* any other placeholder: ``components.<name>.source`` (a :class:`NamingContext` field), or the
  field the token stands for (``study_hash`` → ``study_key_hash`` cut to 8 characters), then cut
  to ``length``, padded with ``zero_pad``, shaped by ``format`` (``"{number}"``) and cut to
  ``max_length``; ``default`` is used when the field has no value.

A placeholder without a value is an error naming the placeholder, the pattern and the field, never
a silent ``unknown``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

from mlinfra.config.files import load_infra_config
from mlinfra.config.models import NamingConfig
from mlinfra.config.project import Project
from mlinfra.core.placeholders import Pattern
from mlinfra.errors import NamingError
from mlinfra.naming.components import (
    PlaceholderValues,
    build_parent_training_id,
    parse_parent_training_id,
    sanitize_semantic_suffix,
)
from mlinfra.naming.context import NamingContext

__all__ = [
    "MLFLOW_RUN_NAME_MAX_LENGTH",
    "build_mlflow_run_name",
    "build_parent_training_id",
    "format_run_name",
    "load_naming_policy",
    "naming_key_for",
    "parse_parent_training_id",
    "sanitize_semantic_suffix",
    "validate_run_name",
]

logger = logging.getLogger(__name__)

#: The longest run name MLflow accepts.
MLFLOW_RUN_NAME_MAX_LENGTH = 250

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def load_naming_policy(
    config_dir: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> NamingConfig:
    """Read and validate ``naming.yaml`` from ``config_dir`` (read afresh on every call).

    Args:
        config_dir: The config folder; when ``None``, the project's is found as
            :meth:`mlinfra.config.Project.discover` does (``$MLINFRA_PROJECT_ROOT``, else the
            working directory and its parents).
        environ: The environment for ``${VAR}`` references and discovery (default:
            ``os.environ``).

    Raises:
        ConfigError: no project is found, or the file is missing or invalid; the error names
            file, line and key.
    """
    if config_dir is None:
        config_dir = Project.discover(environ=environ).config_dir
    return load_infra_config(config_dir, "naming", environ=environ)


def naming_key_for(context: NamingContext) -> str:
    """The ``run_names`` key a context is named by.

    ``hpo`` gives ``hpo_trial_fold`` (a fold index is set), ``hpo_trial`` (the context names a
    trial, see :attr:`NamingContext.is_trial`) or ``hpo_sweep``; every other process type is its
    own key (``hpo_refit``, ``benchmarking``, ``final_training``, ``conversion``,
    ``best_configurations``).
    """
    if context.process_type == "hpo":
        if not context.is_trial:
            return "hpo_sweep"
        return "hpo_trial_fold" if context.fold_idx is not None else "hpo_trial"
    return context.process_type


def validate_run_name(name: str, policy: NamingConfig) -> str:
    """Return ``name`` if it fits ``policy.validation`` and MLflow, else raise.

    A name must be non-empty, at most ``validation.max_length`` characters (and never more than
    MLflow's 250), and free of ``validation.forbidden_chars`` and control characters. A name
    longer than ``validation.warn_length`` is logged.

    Raises:
        NamingError: the message names the run name, the offending length or character and the
            limit.
    """
    limit = min(policy.validation.max_length, MLFLOW_RUN_NAME_MAX_LENGTH)
    if not name:
        raise NamingError("the run name is empty; check the pattern in naming.yaml")
    if len(name) > limit:
        raise NamingError(
            f"run name {name!r} is {len(name)} characters long, over the limit of {limit} "
            "(naming.yaml validate.max_length); shorten the pattern, the model name or the "
            "study name",
            key="validate.max_length",
        )
    for char in policy.validation.forbidden_chars:
        if char and char in name:
            raise NamingError(
                f"run name {name!r} contains the forbidden character {char!r} "
                "(naming.yaml validate.forbidden_chars); rename the value that brings it in "
                "or map it in naming.yaml normalize",
                key="validate.forbidden_chars",
            )
    control = _CONTROL.search(name)
    if control is not None:
        raise NamingError(
            f"run name {name!r} contains the control character {control.group()!r}",
            key="validate.forbidden_chars",
        )
    if len(name) > policy.validation.warn_length:
        logger.warning(
            "run name %r is %d characters long (naming.yaml validate.warn_length is %d)",
            name,
            len(name),
            policy.validation.warn_length,
        )
    return name


def format_run_name(
    context: NamingContext,
    policy: NamingConfig | None = None,
    *,
    config_dir: str | Path | None = None,
    key: str | None = None,
    version: int | None = None,
) -> str:
    """The run name of ``context`` under ``policy`` (see the module docstring for the values).

    Args:
        context: The run to name.
        policy: The naming policy; when ``None`` it is read from ``config_dir``.
        config_dir: The config folder holding ``naming.yaml``, used when ``policy`` is ``None``.
        key: The ``run_names`` key to use instead of :func:`naming_key_for` of the context.
        version: The unique version reserved for this name (``_3``), or ``None`` for none.

    Raises:
        NamingError: no policy, an unknown key, a placeholder without a value, a bad version, or a
            name that breaks the policy's limits.
        ConfigError: ``naming.yaml`` cannot be read.

    Example:
        >>> from mlinfra.naming import create_naming_context
        >>> ctx = create_naming_context(backbone="distilbert", stage="hpo", study_hash="abc123",
        ...                             environment="local")
        >>> format_run_name(context=ctx, policy=load_naming_policy("config"))  # doctest: +SKIP
        'local_distilbert_hpo_study-abc123'
    """
    if policy is None:
        if config_dir is None:
            raise NamingError("give the naming policy, or the config_dir holding naming.yaml")
        policy = load_naming_policy(config_dir)
    name_key = key if key is not None else naming_key_for(context)
    spec = policy.run_names.get(name_key)
    if spec is None:
        raise NamingError(
            f"naming.yaml has no run_names.{name_key} pattern (for a {context.process_type} "
            f"context); available: {', '.join(sorted(policy.run_names))}",
            key=f"run_names.{name_key}",
        )
    pattern = Pattern.parse(spec.pattern)
    if version is not None and "version" not in pattern.names():
        raise NamingError(
            f"pattern {spec.pattern!r} of run_names.{name_key} has no {{version}} placeholder, "
            "so it cannot carry a version; add one or pass no version",
            key=f"run_names.{name_key}",
        )
    values = PlaceholderValues(context, policy, name_key, spec.pattern)
    optional = set(pattern.optional())
    rendered: dict[str, str | None] = {}
    for placeholder in pattern.names():
        component = spec.components.get(placeholder)
        if placeholder == "version":
            rendered[placeholder] = _version_text(policy, version)
        else:
            rendered[placeholder] = values.text(placeholder, component, placeholder in optional)
    return validate_run_name(pattern.render(rendered), policy)


def build_mlflow_run_name(
    context: NamingContext,
    *,
    policy: NamingConfig | None = None,
    config_dir: str | Path | None = None,
    version: int | None = None,
) -> str:
    """The MLflow run name of ``context``: :func:`format_run_name` with its version suffix.

    ``version`` is the number reserved for this name from the run-name registry (``None`` when
    the process is not auto-incremented).

    Raises:
        NamingError, ConfigError: as :func:`format_run_name`.
    """
    return format_run_name(context, policy, config_dir=config_dir, version=version)


def _version_text(policy: NamingConfig, version: int | None) -> str:
    if version is None:
        return ""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise NamingError(
            f"version must be an integer of at least 1, got {version!r}", key="version"
        )
    try:
        return Pattern.parse(policy.version.format).render(
            {"separator": policy.version.separator, "number": version},
            allowed=("separator", "number"),
        )
    except ValueError as exc:
        raise NamingError(f"naming.yaml version.format: {exc}", key="version.format") from None
