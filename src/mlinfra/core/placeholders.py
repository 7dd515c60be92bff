"""``{name}`` placeholders in path patterns and run-name patterns.

A placeholder is ``{identifier}``; ``{{`` and ``}}`` stand for literal braces. Format specs,
conversions and attribute access (``{a.b}``, ``{x!r}``, ``{n:03d}``) are refused: patterns are
configuration, not code.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

__all__ = ["format_placeholders", "parse_placeholders"]

_FORMATTER = string.Formatter()


def parse_placeholders(pattern: str) -> list[str]:
    """Return the placeholder names in ``pattern``, in order of first appearance.

    Raises:
        ValueError: unbalanced braces, an empty placeholder, or a name that is not an identifier.
    """
    names: list[str] = []
    try:
        parsed = list(_FORMATTER.parse(pattern))
    except ValueError as exc:
        raise ValueError(f"malformed pattern {pattern!r}: {exc}") from exc
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field:
            raise ValueError(f"empty placeholder '{{}}' in pattern {pattern!r}")
        if not field.isidentifier() or spec or conversion:
            shown = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ValueError(
                f"placeholder '{{{shown}}}' in pattern {pattern!r} is not a plain name; "
                "use {name} with letters, digits and underscores"
            )
        if field not in names:
            names.append(field)
    return names


def format_placeholders(
    pattern: str,
    values: Mapping[str, object],
    *,
    allowed: Iterable[str] | None = None,
) -> str:
    """Substitute every placeholder of ``pattern`` from ``values``.

    Args:
        pattern: The pattern, for example ``"{backbone}/study_{study_hash}"``.
        values: Placeholder values; each is converted with ``str``.
        allowed: When given, the placeholders the pattern may use; others are refused.

    Raises:
        ValueError: the pattern uses an unknown or disallowed placeholder, or a value is missing.
            The message names the placeholder and the allowed ones.
    """
    names = parse_placeholders(pattern)
    allowed_set = set(allowed) if allowed is not None else None
    if allowed_set is not None:
        unknown = [n for n in names if n not in allowed_set]
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {', '.join(unknown)} in pattern {pattern!r}; "
                f"allowed: {', '.join(sorted(allowed_set))}"
            )
    missing = [n for n in names if values.get(n) is None]
    if missing:
        raise ValueError(
            f"no value for placeholder(s) {', '.join(missing)} in pattern {pattern!r}; "
            f"given: {', '.join(sorted(k for k, v in values.items() if v is not None)) or 'none'}"
        )
    return _FORMATTER.vformat(pattern, (), {n: str(values[n]) for n in names})
