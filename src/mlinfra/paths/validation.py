"""Rendering path patterns safely, and checking finished paths.

A placeholder value is first refused if it is unsafe as written (an absolute path, a ``..``
component, a NUL or control character, a look-alike or percent-encoded separator or dot: see
:func:`mlinfra.core.names.raw_value_problem`), then normalised by ``paths.yaml``'s
``normalize_paths`` rules (characters replaced, optionally lower-cased), then checked as one
folder name (see :func:`mlinfra.core.names.component_problem`). The finished path must stay
inside its root and fit the configured length limit. Nothing here touches the disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from mlinfra.config import PathsConfig
from mlinfra.core.names import (
    MAX_COMPONENT_BYTES,
    component_problem,
    normalize_value,
    raw_value_problem,
)
from mlinfra.core.placeholders import Pattern
from mlinfra.core.tokens import tokens_for
from mlinfra.errors import PathError

__all__ = ["DEFAULT_MAX_PATH_LENGTH", "render_pattern", "validate_output_path"]

DEFAULT_MAX_PATH_LENGTH = 4096


def _check_raw(name: str, value: object, pattern: str) -> None:
    text = str(value)

    def refuse(why: str) -> PathError:
        return PathError(
            f"value {text!r} for placeholder '{name}' in pattern {pattern!r} is refused: {why}",
            pattern=pattern,
            placeholder=name,
            value=text,
            key=name,
        )

    why = raw_value_problem(text)
    if why is not None:
        raise refuse(why)


def render_pattern(
    pattern: str,
    values: Mapping[str, object],
    paths: PathsConfig,
    *,
    pattern_key: str,
) -> PurePosixPath:
    """Render a path pattern from placeholder values, normalising and checking each value.

    Args:
        pattern: The pattern (``{storage_env}/{model}/study-{study8}[/trial-{trial8}]``).
        values: Placeholder values; ``None`` means "no value" (an optional segment is dropped).
        paths: Supplies the normalisation rules and the component length limit.
        pattern_key: The pattern's name in ``paths.yaml``, for messages.

    Raises:
        PathError: an unknown placeholder, a missing value, or an unsafe value; the message names
            the pattern, the placeholder and the value.
    """
    rules = paths.normalize_paths
    parsed = Pattern.parse(pattern)
    missing = [n for n in parsed.required() if values.get(n) is None]
    if missing:
        given = sorted(k for k, v in values.items() if v is not None)
        raise PathError(
            f"no value for placeholder(s) {', '.join(missing)} in patterns.{pattern_key} "
            f"({pattern!r}); given: {', '.join(given) or 'none'}",
            pattern=pattern,
            placeholder=missing[0],
            key=missing[0],
        )
    extra = sorted(k for k, v in values.items() if v is not None and k not in parsed.names())
    if extra:
        raise PathError(
            f"placeholder(s) {', '.join(extra)} are not used by patterns.{pattern_key} "
            f"({pattern!r}); it uses: {', '.join(parsed.names()) or 'none'}",
            pattern=pattern,
            placeholder=extra[0],
            key=extra[0],
        )

    def convert(name: str, value: object) -> str:
        _check_raw(name, value, pattern)
        text = normalize_value(value, replace=rules.replace, lowercase=rules.lowercase)
        why = component_problem(
            text, max_bytes=min(rules.max_component_length, MAX_COMPONENT_BYTES)
        )
        if why is not None:
            raise PathError(
                f"value {str(value)!r} for placeholder '{name}' in pattern {pattern!r} becomes "
                f"{text!r}, which is not a safe folder name: {why}",
                pattern=pattern,
                placeholder=name,
                value=str(value),
                key=name,
            )
        return text

    try:
        rendered = parsed.render(values, allowed=tokens_for("path"), convert=convert)
    except PathError:
        raise
    except ValueError as exc:
        raise PathError(
            f"patterns.{pattern_key}: {exc}", pattern=pattern, key=pattern_key
        ) from None
    result = PurePosixPath(rendered)
    for part in result.parts:
        why = component_problem(
            part, max_bytes=min(rules.max_component_length, MAX_COMPONENT_BYTES)
        )
        if why is not None:
            raise PathError(
                f"patterns.{pattern_key} ({pattern!r}) renders {rendered!r}, whose part {part!r} "
                f"is not a safe folder name: {why}",
                pattern=pattern,
                value=rendered,
                key=pattern_key,
            )
    return result


def validate_output_path(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    max_path_length: int = DEFAULT_MAX_PATH_LENGTH,
    max_component_bytes: int = MAX_COMPONENT_BYTES,
) -> Path:
    """Check a finished output path before anything is created there; return it as a ``Path``.

    Refused: an empty path; a ``.`` or ``..`` part; a part that is not a safe folder name; a path
    longer than ``max_path_length`` characters once made absolute; a path outside ``root`` (when
    given); and a path that already exists as a file.

    Raises:
        PathError: the path is unsafe; the message says which part and why.
    """
    text = os.fspath(path)
    shown = repr(text)

    def refuse(why: str) -> PathError:
        return PathError(f"output path {shown} is refused: {why}", value=text)

    if not text or not text.strip():
        raise refuse("it is empty")
    raw_parts = [p for p in re.split(r"[\\/]", text) if p]
    if not raw_parts:
        raise refuse("it is a filesystem root, not an output folder")
    for part in raw_parts:
        if part in (".", ".."):
            raise refuse(f"it has a {part!r} part; give the folder itself")
    candidate = Path(text)
    for part in candidate.parts:
        if part == candidate.anchor:
            continue
        why = component_problem(part, max_bytes=max_component_bytes)
        if why is not None:
            raise refuse(f"its part {part!r} is not a safe folder name: {why}")
    absolute = os.path.abspath(text)
    if len(absolute) > max_path_length:
        raise refuse(
            f"it is {len(absolute)} characters long once absolute, over the limit of "
            f"{max_path_length} (normalize_paths.max_path_length)"
        )
    if root is not None:
        base = os.path.abspath(os.fspath(root))
        if os.path.commonpath([base, absolute]) != base:
            raise refuse(f"it is outside its root {base!r}")
    if candidate.is_file():
        raise refuse("a file already exists there, and an output path is a folder")
    return candidate
