"""MLflow tag keys from ``tags.yaml``, and the tags that record a run's identity.

Code names a tag by ``(section, name)``, for example ``("grouping", "study_key_hash")``; the
project's ``tags.yaml`` says which MLflow key that is (``code.study_key_hash``). A pair the file
does not define is an error naming the section's names: there are no built-in defaults that
would hide a missing or misspelt entry.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlinfra.config.files import load_infra_config
from mlinfra.config.models import TagsConfig
from mlinfra.config.project import Project
from mlinfra.errors import NamingError
from mlinfra.naming.context import NamingContext
from mlinfra.naming.keys import build_mlflow_run_key_hash

__all__ = [
    "TagKeyError",
    "TagsRegistry",
    "build_mlflow_tags",
    "load_tags_registry",
    "sanitize_tag_value",
]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ELLIPSIS = "..."


class TagKeyError(NamingError, KeyError):
    """``tags.yaml`` has no key for a ``(section, name)`` pair.

    Attributes:
        section: The section asked for.
        name: The name asked for inside it.
    """

    def __init__(self, reason: str, *, section: str, name: str) -> None:
        self.section = section
        self.name = name
        super().__init__(reason, key=f"{section}.{name}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self._render()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_tag_key_error, (self.reason, self.section, self.name))


def _rebuild_tag_key_error(reason: str, section: str, name: str) -> TagKeyError:
    return TagKeyError(reason, section=section, name=name)


@dataclass(frozen=True)
class TagsRegistry:
    """The tag keys of one project, by section and name.

    Attributes:
        sections: ``section → {name → MLflow tag key}``, read-only.
        schema_version: ``tags.yaml``'s schema version.
    """

    sections: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    schema_version: int = 1

    def __post_init__(self) -> None:
        frozen: dict[str, Mapping[str, str]] = {}
        for section, entries in self.sections.items():
            if not isinstance(entries, Mapping):
                raise NamingError(
                    f"tags section '{section}' must map names to tag keys, got "
                    f"{type(entries).__name__}",
                    key=str(section),
                )
            frozen[str(section)] = MappingProxyType(dict(entries))
        object.__setattr__(self, "sections", MappingProxyType(frozen))

    def __hash__(self) -> int:
        items = sorted((s, tuple(sorted(e.items()))) for s, e in self.sections.items())
        return hash((self.schema_version, tuple(items)))

    @classmethod
    def from_config(cls, config: TagsConfig) -> TagsRegistry:
        """The registry of a validated ``tags.yaml``."""
        return cls(config.sections(), config.schema_version)

    def key(self, section: str, name: str) -> str:
        """The MLflow tag key of ``(section, name)``.

        Raises:
            TagKeyError: the section or the name is not in ``tags.yaml``; the message lists the
                section's names, or the sections.
        """
        entries = self.sections.get(section)
        if entries is None:
            raise TagKeyError(
                f"tags.yaml has no section '{section}'; sections: "
                + (", ".join(sorted(self.sections)) or "none"),
                section=section,
                name=name,
            )
        value = entries.get(name)
        if value is None:
            raise TagKeyError(
                f"tags.yaml section '{section}' has no '{name}'; add '{name}: <tag key>' to it "
                f"(it has: {', '.join(sorted(entries)) or 'nothing'})",
                section=section,
                name=name,
            )
        return value

    def has(self, section: str, name: str) -> bool:
        """Whether ``tags.yaml`` defines ``(section, name)``."""
        return name in self.sections.get(section, {})

    def key_or(self, section: str, name: str, default: str) -> str:
        """The tag key of ``(section, name)``, or ``default`` (mlinfra's built-in key) when
        ``tags.yaml`` does not define it."""
        return self.sections.get(section, {}).get(name, default)


def load_tags_registry(
    config_dir: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> TagsRegistry:
    """Read and validate ``tags.yaml`` from ``config_dir`` (read afresh on every call).

    Args:
        config_dir: The config folder; when ``None``, the project's is found as
            :meth:`mlinfra.config.Project.discover` does (``$MLINFRA_PROJECT_ROOT``, else the
            working directory and its parents).
        environ: The environment for ``${VAR}`` references and discovery (default:
            ``os.environ``).

    Raises:
        ConfigError: no project is found, or the file is missing or invalid.
    """
    if config_dir is None:
        config_dir = Project.discover(environ=environ).config_dir
    return TagsRegistry.from_config(load_infra_config(config_dir, "tags", environ=environ))


def sanitize_tag_value(value: object, max_length: int = 5000) -> str:
    """``value`` as an MLflow tag value.

    ``None`` gives ``""``, booleans ``true``/``false``, anything else its ``str``. Surrounding
    whitespace and control characters other than tab and newline are removed; a value longer
    than ``max_length`` is cut and ends with ``...``.

    Raises:
        NamingError: ``max_length`` is below 1.
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise NamingError(f"max_length must be at least 1, got {max_length!r}", key="max_length")
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    text = _CONTROL.sub("", text).strip()
    if len(text) <= max_length:
        return text
    if max_length <= len(_ELLIPSIS):
        return text[:max_length]
    return text[: max_length - len(_ELLIPSIS)] + _ELLIPSIS


def _run_type(context: NamingContext) -> str | None:
    if context.process_type == "hpo":
        return "trial" if context.is_trial else "sweep"
    if context.process_type == "hpo_refit":
        return "refit"
    return None


def _agree(name: str, given: str | None, from_context: str | None) -> str | None:
    if given is None:
        return from_context
    value = given.strip().lower()
    if from_context is not None and value != from_context:
        raise NamingError(
            f"{name} {given!r} disagrees with the context's {from_context!r}; give one",
            key=name,
        )
    return value


def build_mlflow_tags(
    context: NamingContext,
    *,
    registry: TagsRegistry,
    project_name: str,
    output_dir: str | Path | None = None,
    parent_run_id: str | None = None,
    run_key_hash: str | None = None,
    study_key_hash: str | None = None,
    trial_key_hash: str | None = None,
    created_by: str | None = None,
    max_length: int = 5000,
) -> dict[str, str]:
    """The tags that record a run's identity, keyed by ``registry``.

    Always: ``process.stage`` (the process type), ``process.model``, ``process.storage_env``,
    ``process.execution_platform``, ``process.project`` and ``process.created_by`` (default: the
    login name). ``process.run_type`` for HPO (``sweep``, ``trial``, ``refit``);
    ``grouping.run_key_hash`` (computed from the context when not given and the context has a
    run key); ``grouping.study_key_hash`` and ``grouping.trial_key_hash``; ``hpo.trial_number``;
    ``paths.spec_fp``, ``paths.exec_fp``, ``paths.conv_fp`` and ``paths.output_dir``;
    ``grouping.parent_run_id``: each when known. Values pass through :func:`sanitize_tag_value`.

    Raises:
        TagKeyError: ``tags.yaml`` lacks a key that is needed.
        NamingError: an empty project name, a given hash that disagrees with the context's, or
            no login name (pass ``created_by``).
    """
    ctx = context
    if not isinstance(project_name, str) or not project_name.strip():
        raise NamingError(
            "build_mlflow_tags needs the project name (mlflow.yaml naming.project_name)",
            key="project_name",
        )
    if created_by is None:
        try:
            created_by = getpass.getuser()
        except (OSError, KeyError) as exc:
            raise NamingError(
                "cannot tell who creates the run (no login name); pass created_by=",
                key="created_by",
            ) from exc
    if run_key_hash is None:
        try:
            run_key_hash = build_mlflow_run_key_hash(ctx)
        except NamingError:
            run_key_hash = None  # e.g. a sweep whose study key is not known yet: no run key
    values: list[tuple[str, str, object]] = [
        ("process", "stage", ctx.process_type),
        ("process", "model", ctx.model.strip()),
        ("process", "storage_env", ctx.storage_env),
        ("process", "execution_platform", ctx.environment),
        ("process", "project", project_name),
        ("process", "created_by", created_by),
        ("process", "run_type", _run_type(ctx)),
        ("grouping", "run_key_hash", run_key_hash),
        (
            "grouping",
            "study_key_hash",
            _agree("study_key_hash", study_key_hash, ctx.study_key_hash),
        ),
        (
            "grouping",
            "trial_key_hash",
            _agree("trial_key_hash", trial_key_hash, ctx.trial_key_hash),
        ),
        ("hpo", "trial_number", ctx.trial_number),
        ("paths", "spec_fp", ctx.spec_fp),
        ("paths", "exec_fp", ctx.exec_fp),
        ("paths", "conv_fp", ctx.conv_fp),
        ("paths", "output_dir", Path(output_dir).as_posix() if output_dir is not None else None),
        ("grouping", "parent_run_id", parent_run_id),
    ]
    return {
        registry.key(section, name): sanitize_tag_value(value, max_length)
        for section, name, value in values
        if value is not None
    }
