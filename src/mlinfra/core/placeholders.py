"""``{name}`` placeholder patterns with optional segments, rendered and parsed back.

Syntax of a pattern:

* ``{name}``: a placeholder; ``name`` is an identifier. Format specs, conversions and attribute
  access (``{n:03d}``, ``{x!r}``, ``{a.b}``) are refused: patterns are configuration, not code.
* ``[ ... ]``: an optional segment, kept only when every placeholder inside it has a value, so
  ``trial-{trial8}[/bench-{bench8}]`` never leaves a dangling ``bench-``. Segments do not nest and
  must contain at least one placeholder.
* ``{{``, ``}}``, ``[[`` and ``]]`` stand for literal ``{``, ``}``, ``[`` and ``]``.

A :class:`Pattern` renders values into text and, for the inverse, matches a rendered text back to
its values (:meth:`Pattern.match`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Field", "Optional", "Pattern", "format_placeholders", "parse_placeholders"]


@dataclass(frozen=True)
class Field:
    """A ``{name}`` placeholder."""

    name: str


@dataclass(frozen=True)
class Optional:
    """A ``[...]`` segment: literal text and placeholders, kept only when all have values."""

    parts: tuple[str | Field, ...]

    def names(self) -> list[str]:
        return [p.name for p in self.parts if isinstance(p, Field)]


Part = str | Field | Optional

_ESCAPES = {"{{": "{", "}}": "}", "[[": "[", "]]": "]"}


def _malformed(text: str, why: str) -> ValueError:
    return ValueError(f"malformed pattern {text!r}: {why}")


def _parse(text: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    group: list[str | Field] | None = None
    literal = ""
    i = 0

    def flush() -> None:
        nonlocal literal
        if literal:
            (group if group is not None else parts).append(literal)
            literal = ""

    while i < len(text):
        pair = text[i : i + 2]
        char = text[i]
        if pair in _ESCAPES:
            literal += _ESCAPES[pair]
            i += 2
        elif char == "{":
            end = text.find("}", i + 1)
            if end < 0:
                raise _malformed(text, f"'{{' at position {i} is never closed")
            name = text[i + 1 : end]
            if not name:
                raise ValueError(f"empty placeholder '{{}}' in pattern {text!r}")
            if not name.isidentifier():
                raise ValueError(
                    f"placeholder '{{{name}}}' in pattern {text!r} is not a plain name; "
                    "use {name} with letters, digits and underscores"
                )
            flush()
            (group if group is not None else parts).append(Field(name))
            i = end + 1
        elif char == "}":
            raise _malformed(text, f"single '}}' at position {i}; write '}}}}' for a literal one")
        elif char == "[":
            if group is not None:
                raise _malformed(text, "optional segments '[...]' do not nest")
            flush()
            group = []
            i += 1
        elif char == "]":
            if group is None:
                raise _malformed(text, f"single ']' at position {i}; write ']]' for a literal one")
            flush()
            segment = Optional(tuple(group))
            if not segment.names():
                raise _malformed(text, "an optional segment '[...]' needs a placeholder")
            parts.append(segment)
            group = None
            i += 1
        else:
            literal += char
            i += 1
    if group is not None:
        raise _malformed(text, "an optional segment '[' is never closed")
    flush()
    return tuple(parts)


@dataclass(frozen=True)
class Pattern:
    """A parsed pattern (syntax in the module docstring).

    Raises (from :meth:`parse`):
        ValueError: malformed braces or brackets, an empty or non-identifier placeholder.
    """

    text: str
    parts: tuple[Part, ...]

    @classmethod
    def parse(cls, text: str) -> Pattern:
        """Parse ``text`` (cached: patterns are parsed once)."""
        return _parse_cached(text)

    def names(self) -> list[str]:
        """Every placeholder, in order of first appearance."""
        out: list[str] = []
        for part in self.parts:
            items = (
                part.names()
                if isinstance(part, Optional)
                else ([part.name] if isinstance(part, Field) else [])
            )
            out.extend(n for n in items if n not in out)
        return out

    def required(self) -> list[str]:
        """Placeholders outside optional segments."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, Field) and part.name not in out:
                out.append(part.name)
        return out

    def optional(self) -> list[str]:
        """Placeholders that appear only inside optional segments."""
        required = set(self.required())
        return [n for n in self.names() if n not in required]

    def render(
        self,
        values: Mapping[str, object],
        *,
        allowed: Iterable[str] | None = None,
        convert: Callable[[str, object], str] | None = None,
    ) -> str:
        """Substitute the placeholders from ``values``.

        Args:
            values: Placeholder values; ``None`` (or absence) means "no value".
            allowed: When given, the placeholders the pattern may use; others are refused.
            convert: Turns ``(name, value)`` into text (default ``str(value)``); it may raise to
                refuse a value.

        Raises:
            ValueError: a disallowed placeholder, or no value for a required one; the message
                names the placeholders, the pattern and the allowed or given names.
        """
        names = self.names()
        if allowed is not None:
            allowed_set = set(allowed)
            unknown = [n for n in names if n not in allowed_set]
            if unknown:
                raise ValueError(
                    f"unknown placeholder(s) {', '.join(unknown)} in pattern {self.text!r}; "
                    f"allowed: {', '.join(sorted(allowed_set))}"
                )
        present = {k for k, v in values.items() if v is not None}
        missing = [n for n in self.required() if n not in present]
        if missing:
            raise ValueError(
                f"no value for placeholder(s) {', '.join(missing)} in pattern {self.text!r}; "
                f"given: {', '.join(sorted(present)) or 'none'}"
            )
        to_text = convert or (lambda _name, value: str(value))
        cache: dict[str, str] = {}

        def text_of(name: str) -> str:
            if name not in cache:
                cache[name] = to_text(name, values[name])
            return cache[name]

        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Field):
                out.append(text_of(part.name))
            elif all(n in present for n in part.names()):
                rendered = [text_of(p.name) if isinstance(p, Field) else p for p in part.parts]
                if all(rendered[i] for i, p in enumerate(part.parts) if isinstance(p, Field)):
                    out.extend(rendered)
        return "".join(out)

    def regex(self, field_regex: Mapping[str, str] | None = None, default: str = "[^/]+?") -> str:
        """A regular expression matching every text this pattern renders.

        Args:
            field_regex: Per-placeholder expressions (for example ``{"study8": "[0-9a-f]{8}"}``).
            default: The expression for other placeholders (one path component by default).
        """
        regexes = field_regex or {}
        seen: set[str] = set()

        def piece(part: str | Field) -> str:
            if isinstance(part, str):
                return re.escape(part)
            if part.name in seen:
                return f"(?P={part.name})"
            seen.add(part.name)
            return f"(?P<{part.name}>{regexes.get(part.name, default)})"

        out: list[str] = []
        for part in self.parts:
            if isinstance(part, Optional):
                out.append("(?:" + "".join(piece(p) for p in part.parts) + ")?")
            else:
                out.append(piece(part))
        return "".join(out)

    def match(
        self, text: str, field_regex: Mapping[str, str] | None = None
    ) -> dict[str, str] | None:
        """The placeholder values that render to exactly ``text``, or ``None`` if it does not fit.

        Placeholders of an optional segment that is absent from ``text`` are left out.
        """
        found = re.fullmatch(self.regex(field_regex), text)
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}


@lru_cache(maxsize=512)
def _parse_cached(text: str) -> Pattern:
    return Pattern(text, _parse(text))


def parse_placeholders(pattern: str) -> list[str]:
    """Return the placeholder names in ``pattern``, in order of first appearance.

    Raises:
        ValueError: the pattern is malformed (see the module docstring).
    """
    return Pattern.parse(pattern).names()


def format_placeholders(
    pattern: str,
    values: Mapping[str, object],
    *,
    allowed: Iterable[str] | None = None,
) -> str:
    """Render ``pattern`` with ``values`` (see :meth:`Pattern.render`).

    Example:
        >>> format_placeholders("{backbone}[/study_{study_hash}]", {"backbone": "bert"})
        'bert'
    """
    return Pattern.parse(pattern).render(values, allowed=allowed)
