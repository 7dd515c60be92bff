"""Keeping secrets out of what mlinfra shows, logs and records."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["hide_password"]


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
