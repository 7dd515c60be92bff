"""Import heavy or optional dependencies on first use, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from mlinfra.errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, *, extra: str | None = None, feature: str | None = None) -> ModuleType:
    """Import ``module``; when absent, raise :class:`MissingDependencyError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".", 1)[0]
        if exc.name is not None and exc.name.split(".", 1)[0] != top:
            raise
        raise MissingDependencyError(module, extra=extra, feature=feature) from exc
