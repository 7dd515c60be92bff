"""Naming: the identity of a stage run as a context, a readable unique run name, run keys, tags."""

from __future__ import annotations

from mlinfra.naming.context import (
    PROCESS_TYPES,
    NamingContext,
    create_naming_context,
    process_type_for_stage,
)

__all__ = [
    "PROCESS_TYPES",
    "NamingContext",
    "create_naming_context",
    "process_type_for_stage",
]
