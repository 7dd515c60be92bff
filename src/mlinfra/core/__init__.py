"""Pure helpers every layer uses: canonical JSON and hashing, UTC time, atomic files, placeholders.

Nothing here reads configuration, the environment or the network.
"""

from __future__ import annotations

from mlinfra.core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from mlinfra.core.canonical import canonical_json, short_hash, stable_hash
from mlinfra.core.placeholders import format_placeholders, parse_placeholders
from mlinfra.core.timeutil import format_utc, parse_utc, utc_now

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "canonical_json",
    "format_placeholders",
    "format_utc",
    "parse_placeholders",
    "parse_utc",
    "short_hash",
    "stable_hash",
    "utc_now",
]
