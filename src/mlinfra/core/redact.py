"""Keeping secrets out of what mlinfra shows, logs and records.

A value is secret when its key's last word names a credential (``password``, ``passwd``,
``pwd``, ``secret``, ``token``, ``credential(s)``, ``api_key``, ``access_key``, ``private_key``,
``client_secret``, ``sas``, ``key``; case and the separators ``_``, ``-``, ``.`` do not matter),
except mlinfra's own identity keys (``run_key``, ``study_key``, ``trial_key``, ...). A secret
value is recorded as ``***``. Any string that is a URL with a password has the password hidden,
whatever its key (``postgresql://u:***@host/db``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["REDACTED", "hide_password", "is_secret_key", "redact", "redact_mapping"]

REDACTED = "***"

_SECRET_WORDS = re.compile(
    r"(?:^|[_.\-\s])(?:password|passwd|pwd|secret|token|credentials?|api[_-]?key|"
    r"access[_-]?key|private[_-]?key|client[_-]?secret|sas|key)$",
    re.IGNORECASE,
)
_IDENTITY_KEYS = re.compile(
    r"(?:^|[_.\-])(?:run|study|trial|counter|sort|grouping|primary|foreign|cache)[_.\-]?key$",
    re.IGNORECASE,
)
# Bounded pieces around each "://": a scheme of at most 32 characters before it, a user and a
# password of at most 256 after it. (One unbounded pattern over the whole text backtracks
# quadratically on long strings without a URL.)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,31}$")
_USERINFO = re.compile(r"([^\s/@:]{0,256}):([^\s/@]{1,256})@")


def hide_password(uri: str) -> str:
    """``uri`` with the password of its ``user:password@`` part replaced by ``***``."""

    try:
        parts = urlsplit(uri)
        if parts.password is None:
            return uri
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return uri.split("://", 1)[0] + "://..."


def is_secret_key(key: str) -> bool:
    """Whether a param, tag or config key names a credential (see the module docstring)."""
    name = str(key).strip()
    return bool(_SECRET_WORDS.search(name)) and not _IDENTITY_KEYS.search(name)


def redact(key: str, value: Any) -> Any:
    """``value`` as it may be recorded under ``key``: ``***`` for a secret key (every leaf below
    it, for a mapping or list), a URL's password hidden in any string, anything else unchanged
    (mappings are walked)."""
    if is_secret_key(key) and isinstance(value, (Mapping, list, tuple)):
        return _all_secret(value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if is_secret_key(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str) and "://" in value:
        return _hide_url_passwords(value)
    return value


def _all_secret(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _all_secret(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_all_secret(v) for v in value]
    return REDACTED if value not in (None, "") else value


def _hide_url_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ``***``."""
    out: list[str] = []
    done = 0
    start = text.find("://")
    while start != -1:
        after = start + 3
        userinfo = _USERINFO.match(text, after)
        if userinfo is not None and _SCHEME.search(text, max(0, start - 32), start):
            out.append(text[done : userinfo.start(2)])
            out.append(REDACTED)
            done = userinfo.end(2)
            after = userinfo.end()
        start = text.find("://", after)
    out.append(text[done:])
    return "".join(out)


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with every secret redacted (nested mappings too; lists of strings
    have URL passwords hidden)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, list) and not is_secret_key(str(key)):
            out[key] = [redact("", v) for v in value]
        else:
            out[key] = redact(str(key), value)
    return out
