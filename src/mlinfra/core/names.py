"""Making values safe as one file or folder name, and checking names that must already be safe.

Rules a component must meet on every platform mlinfra supports (Linux, macOS, Windows, Drive):
not empty, not ``.`` or ``..``, no NUL or other control character, no ``/`` or ``\\``, not a
Windows device name (``CON``, ``NUL``, ``COM1``, ... with or without an extension), no trailing
dot or space, and at most 255 bytes in UTF-8.

Names are also refused when they only *look* safe: an invisible or direction-changing character
(a zero-width space, a right-to-left override: Unicode categories Cf, Zl, Zp and surrogates), a
look-alike of a separator or of ``..`` (fullwidth solidus U+FF0F, division slash U+2215, one-dot
leader U+2024, ...; anything that NFKC normalisation, which some file systems and tools apply,
turns into ``/``, ``\\`` or dots) and percent-encoded separators or dots (``%2e%2e``, ``..%2f``,
double-encoded ``%252e``), which a URL-based store or a web front end decodes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import unquote

__all__ = [
    "MAX_COMPONENT_BYTES",
    "component_problem",
    "lookalike_problem",
    "normalize_value",
    "raw_value_problem",
    "text_problem",
]

MAX_COMPONENT_BYTES = 255
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
#: Characters that render like a slash or backslash and that NFKC leaves alone.
_SLASH_LIKE = frozenset("\u2044\u2215\u2571\u2572\u29f5\u29f8\u29f9\u3033")
#: Unicode categories of characters that do not show, or change the order of what does.
_INVISIBLE = frozenset({"Cf", "Zl", "Zp", "Cs"})
#: Control characters other than tab, newline and carriage return; bidirectional controls
#: ("Trojan Source", CVE-2021-42574); zero-width space and no-break; line and paragraph separators.
_UNSAFE_TEXT = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f"
    "\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)
_ENCODED = re.compile(r"%(25)*(2e|2f|5c|00)", re.IGNORECASE)


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


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'control character')})"


def lookalike_problem(text: str) -> str | None:
    """Why ``text`` only looks safe, or ``None``: an invisible or direction-changing character,
    a look-alike of a separator or of dots, or a percent-encoded separator, dot or NUL (``%2e``,
    ``%2f``, ``%5c``, ``%00`` in any case, also double-encoded)."""
    folded = text if text.isascii() else unicodedata.normalize("NFKC", text)
    if _ENCODED.search(folded):
        decoded = unquote(unquote(unquote(folded)))
        return (
            f"it is percent-encoded: {text!r} decodes to {decoded!r}, with a path separator, dot "
            "or NUL that a URL-based store would act on; write the characters plainly"
        )
    if text.isascii():
        return None
    for char in text:
        if unicodedata.category(char) in _INVISIBLE:
            return (
                f"it contains the invisible or direction-changing character {_describe(char)}, "
                "which makes the name show as something it is not; remove it"
            )
    for char in text:
        if char in "/\\":
            continue
        shown_as = unicodedata.normalize("NFKC", char)
        if char in _SLASH_LIKE or "/" in shown_as or "\\" in shown_as:
            return (
                f"it contains {_describe(char)}, which looks like a path separator; use '-' or '_'"
            )
    if folded != text and folded.strip(".") == "":
        return f"it looks like {folded!r} (its NFKC normal form); pick a real name"
    return None


def text_problem(text: str) -> str | None:
    """Why free text (a configuration value, a description) is unsafe to show, or ``None``.

    Refused: NUL and other control characters except tab, newline and carriage return, and the
    invisible characters that make text show as something it is not (bidirectional overrides and
    isolates, zero-width space, byte-order mark, line and paragraph separators). Joiners that
    scripts and emoji need (U+200C, U+200D) are allowed.
    """
    found = _UNSAFE_TEXT.search(text)
    if found is None:
        return None
    return f"it contains {_describe(found.group())}, a control or invisible character"


def raw_value_problem(text: str) -> str | None:
    """Why a value given for one part of a name or path is unsafe *as written*, or ``None``.

    Unlike :func:`component_problem`, a ``/`` inside the value is allowed (``google/bert``
    becomes ``google_bert`` by the normalisation rules); refused are a NUL or control character,
    an absolute path, a ``..`` part and everything :func:`lookalike_problem` refuses.
    """
    if _CONTROL.search(text):
        return "it contains a NUL or control character"
    if text.startswith(("/", "\\")) or _DRIVE.match(text):
        return "it is an absolute path; a placeholder value is one folder name"
    if ".." in re.split(r"[\\/]", text):
        return "it contains '..', which would leave the output folder"
    return lookalike_problem(text)


def component_problem(text: str, *, max_bytes: int = MAX_COMPONENT_BYTES) -> str | None:
    """Why ``text`` is not a safe single file or folder name, or ``None`` when it is."""
    if not text:
        return "it is empty"
    if text in (".", ".."):
        return f"'{text}' refers to a folder itself, not a name inside it"
    if _CONTROL.search(text):
        return "it contains a NUL or control character"
    lookalike = lookalike_problem(text)
    if lookalike is not None:
        return lookalike
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
