"""Validating trees into pydantic models, with errors that point at file, line and key."""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mlinfra.config.tree import KeyPath, Tree, format_key
from mlinfra.errors import ConfigError, ConfigErrorGroup

__all__ = ["validate_tree"]

M = TypeVar("M", bound=BaseModel)


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    return [annotation]


class _DictOf:
    def __init__(self, value: Any) -> None:
        self.value = value


def _allowed(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    # walk loc allowing dict levels: try every split where a dict key is consumed
    current: Any = model
    parts = list(loc)
    i = 0
    while i < len(parts):
        if isinstance(current, _DictOf):
            values = [c for c in _unwrap(current.value) if isinstance(c, type)]
            current = next((c for c in values if issubclass(c, BaseModel)), None)
            i += 1
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = None
        for name, info in current.model_fields.items():
            if parts[i] in (name, info.alias):
                field = info
                break
        if field is None:
            return []
        nxt: Any = None
        for candidate in _unwrap(field.annotation):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                nxt = candidate
            elif typing.get_origin(candidate) is dict:
                nxt = _DictOf(typing.get_args(candidate)[1])
        current = nxt
        i += 1
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(info.alias or name for name, info in current.model_fields.items())
    return []


def _reason(model: type[BaseModel], err: Any) -> str:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        allowed = _allowed(model, loc[:-1])
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"unknown key '{loc[-1]}' (check its spelling){hint}"
    if kind == "missing":
        return "required key is missing"
    msg = str(err.get("msg", "invalid value"))
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if "input" in err and not isinstance(err["input"], (dict, list)):
        return f"{msg}, got {err['input']!r}"
    return msg


def validate_tree(
    model: type[M], tree: Tree, *, prefix: KeyPath = (), file: str | None = None
) -> M:
    """Validate ``tree.data`` at ``prefix`` into ``model``.

    Args:
        model: The pydantic model.
        tree: The tree holding the data and its provenance.
        prefix: Where in the tree the data to validate sits.
        file: The file to name when the tree has no source for a key.

    Raises:
        ConfigError: a single problem, or :class:`ConfigErrorGroup` listing every problem, each
            with its file, line and dotted key.
    """
    data: Any = tree.data
    for part in prefix:
        data = data[part]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems: list[ConfigError] = []
        for err in exc.errors():
            loc = tuple(p for p in err.get("loc", ()) if p not in ("__root__", "[key]"))
            path: KeyPath = prefix + tuple(p for p in loc if isinstance(p, (str, int)))
            src = tree.source_of(path)
            reason = _reason(model, err)
            if src is not None and src.origin == "override":
                reason = f"{reason} (set by override '{src.detail}')"
            problems.append(
                ConfigError(
                    reason,
                    file=src.file if src and src.file else file,
                    line=src.line if src and src.file else None,
                    key=format_key(path) if path else None,
                )
            )
        if len(problems) == 1:
            raise problems[0] from exc
        raise ConfigErrorGroup(problems) from exc
