"""The ``mlinfra`` command line: thin wrappers that parse arguments and call the library."""

from __future__ import annotations

__all__: list[str] = []
