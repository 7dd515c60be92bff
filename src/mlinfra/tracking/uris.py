"""Tracking URIs: what they point at, shown safely, and whether a server answers.

Light on purpose (no MLflow, no SQLAlchemy): ``mlinfra doctor`` and ``mlinfra runs`` use these
without touching the store, and :func:`~mlinfra.tracking.mlflow.setup.setup_mlflow` uses them
before it does.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlinfra.core.redact import hide_password

__all__ = [
    "file_store_dir",
    "probe_http",
    "server_unreachable",
    "sqlite_file",
]


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (``None`` for any other URL, or in memory)."""
    if not uri.startswith("sqlite:///"):
        return None
    rest = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest)


def file_store_dir(uri: str) -> Path | None:
    """The folder of MLflow's file store (``file:`` URI or a plain path), else ``None``."""
    if uri.startswith("file:"):
        return Path(unquote(urlparse(uri).path))
    if "://" not in uri and not uri.startswith(("sqlite:", "databricks", "azureml:")):
        return Path(uri)
    return None


def probe_http(uri: str, timeout: float = 3.0) -> tuple[bool, str]:
    """Whether the tracking server at ``uri`` answers: ``(ok, what happened)``.

    Asks ``<uri>/health``, then ``<uri>/api/2.0/mlflow/experiments/search?max_results=1`` (a
    server without the health endpoint), each with ``timeout`` seconds. See
    :func:`server_unreachable` for the narrower question "is anything listening".
    """
    base = uri.rstrip("/")
    shown = hide_password(base)
    last = ""
    for path in ("/health", "/api/2.0/mlflow/experiments/search?max_results=1"):
        try:
            with urllib.request.urlopen(base + path, timeout=timeout) as response:
                return True, f"GET {path.split('?')[0]} answered HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (401, 403):
                return False, f"{shown} refuses access (HTTP {exc.code} for {path.split('?')[0]})"
            last = f"HTTP {exc.code} for GET {path.split('?')[0]}"
        except urllib.error.URLError as exc:
            return False, f"cannot reach {shown}: {exc.reason}"
        except (OSError, ValueError) as exc:  # a timeout while reading, a malformed URL
            return False, f"cannot reach {shown}: {exc}"
    return False, f"{shown} answers, but not as an MLflow server ({last})"


def server_unreachable(uri: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at an ``http(s)`` tracking URI, or ``None`` when something does.

    Any HTTP answer counts as "answers" (a server behind authentication replies 401 to a request
    without credentials, yet works for MLflow's client); only a connection failure or a timeout
    is "unreachable". Other URIs are never probed.
    """
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        exc.close()
        return None
    except (OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return f"cannot reach {hide_password(uri)}: {reason}"
