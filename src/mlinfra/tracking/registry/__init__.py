"""The run registry: run index and run-name versions, on SQLite or PostgreSQL.

The contract every backend keeps is in :mod:`mlinfra.tracking.registry.base`. Importing this
package loads SQLAlchemy; ``import mlinfra`` and ``import mlinfra.tracking`` do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlinfra.tracking.registry.base import (
    DEFAULT_LEASE,
    Allocation,
    Reservation,
    RunIndexEntry,
    RunRegistry,
)
from mlinfra.tracking.registry.sql import SqlRegistry

if TYPE_CHECKING:
    from mlinfra.tracking.registry.location import (
        REGISTRY_ENV,
        REGISTRY_FILE,
        check_local_disk,
        open_registry,
        registry_path,
        resolve_registry_url,
    )

# Where the registry lives needs the config and paths layers (pydantic); a caller that gives a URL
# does not, so those names load on first use.
_LAZY = {
    "REGISTRY_ENV",
    "REGISTRY_FILE",
    "check_local_disk",
    "open_registry",
    "registry_path",
    "resolve_registry_url",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from mlinfra.tracking.registry import location

        return getattr(location, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_LEASE",
    "REGISTRY_ENV",
    "REGISTRY_FILE",
    "Allocation",
    "Reservation",
    "RunIndexEntry",
    "RunRegistry",
    "SqlRegistry",
    "check_local_disk",
    "open_registry",
    "registry_path",
    "resolve_registry_url",
]
