"""The run registry: run index and run-name versions, on SQLite or PostgreSQL.

The contract every backend keeps is in :mod:`mlinfra.tracking.registry.base`. Importing this
package loads SQLAlchemy; ``import mlinfra`` and ``import mlinfra.tracking`` do not.
"""

from __future__ import annotations

from mlinfra.tracking.registry.base import (
    DEFAULT_LEASE,
    Allocation,
    Reservation,
    RunIndexEntry,
    RunRegistry,
)
from mlinfra.tracking.registry.location import (
    REGISTRY_ENV,
    REGISTRY_FILE,
    check_local_disk,
    open_registry,
    registry_path,
    resolve_registry_url,
)
from mlinfra.tracking.registry.sql import SqlRegistry

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
