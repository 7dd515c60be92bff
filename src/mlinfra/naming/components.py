"""The text of each placeholder of a run-name pattern, taken from a naming context.

Also the two identifier formats run names use: the semantic suffix made from a study name
(:func:`sanitize_semantic_suffix`) and the parent training id a conversion refers to
(:func:`build_parent_training_id`, :func:`parse_parent_training_id`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from mlinfra.config.models import ComponentSpec, NamingConfig
from mlinfra.core.names import normalize_value, raw_value_problem
from mlinfra.core.placeholders import Pattern
from mlinfra.errors import NamingError
from mlinfra.naming.context import (
    NamingContext,
    build_parent_training_id,
    parse_parent_training_id,
)

__all__ = [
    "PlaceholderValues",
    "build_parent_training_id",
    "parse_parent_training_id",
    "sanitize_semantic_suffix",
]

_CONTEXT_FIELDS = frozenset(f.name for f in fields(NamingContext))
# token → (context field, display length) for placeholders used without a ``components`` entry.
_IMPLICIT: Mapping[str, tuple[str, int | None]] = {
    "stage": ("stage", None),
    "study_hash": ("study_key_hash", 8),
    "trial_hash": ("trial_key_hash", 8),
    "bench_hash": ("benchmark_config_hash", 8),
    "spec_hash": ("spec_fp", 8),
    "exec_hash": ("exec_fp", 8),
    "conv_hash": ("conv_fp", 8),
    "study8": ("study_key_hash", 8),
    "trial8": ("trial_key_hash", 8),
    "bench8": ("benchmark_config_hash", 8),
    "spec8": ("spec_fp", 8),
    "exec8": ("exec_fp", 8),
    "conv8": ("conv_fp", 8),
    "semantic_suffix": ("study_name", None),
}
_HEX = re.compile(r"[0-9a-f]{6,64}")
_SUFFIX_DROP = re.compile(r"[^A-Za-z0-9_-]")


def sanitize_semantic_suffix(name: str | None, max_length: int = 30) -> str:
    """A study name as a run-name suffix: ``"_"`` plus the cleaned name, or ``""``.

    Spaces are dropped, ``/`` becomes ``-``, characters outside ``[A-Za-z0-9_-]`` are dropped and
    the result is cut to ``max_length`` characters; an empty result gives ``""``.

    Example:
        >>> sanitize_semantic_suffix("hpo_distilbert_smoke test/v3")
        '_hpo_distilbert_smoketest-v3'
    """
    if max_length < 1:
        raise NamingError(f"max_length must be at least 1, got {max_length}", key="max_length")
    if not name:
        return ""
    cleaned = _SUFFIX_DROP.sub("", name.replace(" ", "").replace("/", "-"))[:max_length]
    return f"_{cleaned}" if cleaned else ""


class PlaceholderValues:
    """The text of each placeholder of one run-name pattern, for one context.

    Args:
        context: The run being named.
        policy: The naming policy (its ``normalize`` rules apply to ``{env}`` and ``{model}``).
        key: The ``run_names`` key of the pattern, for error messages.
        pattern: The pattern text, for error messages.
    """

    def __init__(self, context: NamingContext, policy: NamingConfig, key: str, pattern: str):
        self.context = context
        self.policy = policy
        self.key = key
        self.pattern = pattern
        self._parent: tuple[str, str, int] | None = None

    def _field(self, name: str) -> Any:
        ctx = self.context
        from_parent = ctx.process_type == "conversion" and (
            ctx.spec_fp is None or ctx.exec_fp is None
        )
        if from_parent and name in ("spec_fp", "exec_fp", "variant") and ctx.parent_training_id:
            if self._parent is None:
                self._parent = parse_parent_training_id(ctx.parent_training_id)
            return self._parent[("spec_fp", "exec_fp", "variant").index(name)]
        return getattr(ctx, name)

    def _normalised(self, which: str, value: str) -> str:
        rule = self.policy.normalize.get(which)
        if rule is None:
            return value
        return normalize_value(value, replace=rule.replace, lowercase=rule.lowercase)

    def text(self, placeholder: str, spec: ComponentSpec | None, optional: bool) -> str | None:
        """The text of ``placeholder`` (rules in :mod:`mlinfra.naming.display_policy`).

        Args:
            placeholder: The placeholder name (not ``version``, which the policy renders).
            spec: Its ``components`` entry, if any.
            optional: Whether it sits in an optional ``[...]`` segment; a missing value then
                gives ``None`` (the segment is dropped) instead of an error.

        Raises:
            NamingError: the source is not a context field, the field is not set and there is no
                default, or the ``format`` is malformed.
        """
        if placeholder == "env":
            return self._normalised("env", str(self.context.storage_env))
        if placeholder == "model":
            model = self.context.model.strip()
            why = raw_value_problem(model)
            if why is not None:
                raise NamingError(
                    f"model name {model!r} cannot be part of a run name: {why}",
                    key="model",
                )
            return self._normalised("model", model)
        if spec is not None and not spec.enabled:
            return ""
        source, length = _IMPLICIT.get(placeholder, (placeholder, None))
        if spec is not None and spec.source is not None:
            source = spec.source
        if source not in _CONTEXT_FIELDS:
            raise NamingError(
                f"placeholder {{{placeholder}}} in pattern {self.pattern!r} (run_names.{self.key}) "
                f"has source {source!r}, which is not a naming context field; use one of: "
                + ", ".join(sorted(_CONTEXT_FIELDS)),
                key=f"run_names.{self.key}.components.{placeholder}.source",
            )
        raw = self._field(source)
        if placeholder == "semantic_suffix":
            text = raw if raw is not None else (spec.default if spec is not None else None)
            limit = spec.max_length if spec is not None and spec.max_length else 30
            return sanitize_semantic_suffix(text, limit)
        if raw is None:
            if spec is not None and spec.default is not None:
                return spec.default
            if optional:
                return None
            raise NamingError(
                f"placeholder {{{placeholder}}} in pattern {self.pattern!r} (run_names.{self.key}) "
                f"needs the context field {source!r}, which is not set for this "
                f"{self.context.process_type} context; set {source}= or give the component a "
                "default in naming.yaml",
                key=source,
            )
        return self._shape(placeholder, spec, raw, length)

    def _shape(
        self, placeholder: str, spec: ComponentSpec | None, raw: Any, length: int | None
    ) -> str:
        text = str(raw)
        if spec is not None and spec.length is not None:
            length = spec.length
        if length is not None:
            text = text[:length]
        if spec is None:
            return text
        if spec.zero_pad is not None:
            text = text.zfill(spec.zero_pad)
        if spec.format is not None:
            try:
                text = Pattern.parse(spec.format).render(
                    {"number": text, "value": text}, allowed=("number", "value")
                )
            except ValueError as exc:
                raise NamingError(
                    f"run_names.{self.key}.components.{placeholder}.format: {exc}",
                    key=f"run_names.{self.key}.components.{placeholder}.format",
                ) from None
        if spec.max_length is not None:
            text = text[: spec.max_length]
        return text
