"""The run registry: run index, run-name versions and the metadata index of output folders, on
SQLite or PostgreSQL.

The contract every backend keeps is in :mod:`mlinfra.registry.base`. Importing this
package loads SQLAlchemy; ``import mlinfra`` and ``import mlinfra.tracking`` do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlinfra.registry.base import (
    DEFAULT_LEASE,
    OUTPUT_FILTERS,
    Allocation,
    OutputEntry,
    Reservation,
    RunIndexEntry,
    RunRegistry,
)
from mlinfra.registry.sql import SqlRegistry

if TYPE_CHECKING:
    from mlinfra.registry.location import (
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
        from mlinfra.registry import location

        return getattr(location, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_LEASE",
    "OUTPUT_FILTERS",
    "REGISTRY_ENV",
    "REGISTRY_FILE",
    "Allocation",
    "OutputEntry",
    "Reservation",
    "RunIndexEntry",
    "RunRegistry",
    "SqlRegistry",
    "check_local_disk",
    "open_registry",
    "registry_path",
    "resolve_registry_url",
]
