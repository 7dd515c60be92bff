"""Canonical JSON and the hashes built from it.

Identity in mlinfra is always ``sha256`` of the canonical JSON of a value:

* keys sorted, no insignificant whitespace, UTF-8 (``ensure_ascii=False``);
* floats written as Python's shortest round-trip form, ``-0.0`` written as ``0.0``;
  NaN and infinities are refused (they have no JSON form and compare unequal to themselves);
* tuples become lists, sets and frozensets sorted lists, ``Path`` a POSIX string, an aware
  ``datetime`` an ISO-8601 UTC string, an ``Enum`` its value, a pydantic model its JSON dump;
* anything else is refused with ``TypeError`` rather than hashed through ``str()``, so an
  identity never silently depends on an object's ``repr``.

Truncation rule: an identity is the full 64-hex digest (stored in tags and registries); a display
form is its first 8 characters (:func:`short_hash`), used in folder and run names only.
"""

from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

__all__ = ["SHORT_HASH_LENGTH", "canonical_json", "short_hash", "stable_hash"]

SHORT_HASH_LENGTH = 8


def _normalise(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise TypeError(f"cannot hash non-finite float {value!r} at '{path or '<root>'}'")
        return 0.0 if value == 0.0 else float(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"mapping keys must be strings to hash canonically, got {key!r} "
                    f"at '{path or '<root>'}'"
                )
            out[key] = _normalise(item, f"{path}.{key}" if path else key)
        return out
    if isinstance(value, (list, tuple)):
        return [_normalise(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_normalise(v, f"{path}[]") for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise TypeError(f"naive datetime at '{path or '<root>'}': use an aware UTC datetime")
        return value.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, enum.Enum):
        return _normalise(value.value, path)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _normalise(dump(mode="json"), path)
    raise TypeError(
        f"cannot hash value of type {type(value).__name__} at '{path or '<root>'}'; "
        "convert it to a JSON type first"
    )


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value`` (see the module docstring for the rules)."""
    return json.dumps(
        _normalise(value, ""),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def stable_hash(value: Any) -> str:
    """Return the sha256 hex digest (64 characters) of ``canonical_json(value)``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def short_hash(digest: str, length: int = SHORT_HASH_LENGTH) -> str:
    """Return the display form of a hex digest: its first ``length`` characters, lower case."""
    if length < 1:
        raise ValueError(f"length must be positive, got {length}")
    text = digest.strip().lower()
    if len(text) < length or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"not a hex digest of at least {length} characters: {digest!r}")
    return text[:length]
