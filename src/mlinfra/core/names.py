"""Making values safe as one file or folder name, and checking names that must already be safe.

Rules a component must meet on every platform mlinfra supports (Linux, macOS, Windows, Drive):
not empty, not ``.`` or ``..``, no NUL or other control character, no ``/`` or ``\\``, not a
Windows device name (``CON``, ``NUL``, ``COM1``, ... with or without an extension), no trailing
dot or space, and at most 255 bytes in UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["MAX_COMPONENT_BYTES", "component_problem", "normalize_value"]

MAX_COMPONENT_BYTES = 255
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_value(
    value: object, *, replace: Mapping[str, str] | None = None, lowercase: bool = False
) -> str:
    """Text of ``value`` with each character of ``replace`` substituted and, optionally, lowered.

    Booleans become ``true``/``false``; other values use ``str``. Nothing is validated here: see
    :func:`component_problem`.
    """
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    for old, new in (replace or {}).items():
        if old:
            text = text.replace(old, new)
    return text.lower() if lowercase else text


def component_problem(text: str, *, max_bytes: int = MAX_COMPONENT_BYTES) -> str | None:
    """Why ``text`` is not a safe single file or folder name, or ``None`` when it is."""
    if not text:
        return "it is empty"
    if text in (".", ".."):
        return f"'{text}' refers to a folder itself, not a name inside it"
    if _CONTROL.search(text):
        return "it contains a NUL or control character"
    if "/" in text or "\\" in text:
        return "it contains a path separator ('/' or '\\'), so it would span several folders"
    if _RESERVED.match(text):
        return f"'{text}' is a reserved device name on Windows"
    if text[-1] in ". ":
        return "it ends with a dot or a space, which Windows drops"
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        return f"it is {size} bytes long, over the {max_bytes}-byte limit for one name"
    return None
