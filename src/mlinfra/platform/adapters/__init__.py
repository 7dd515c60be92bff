"""Platform adapters: one class per platform, the same API on each."""

from __future__ import annotations

from mlinfra.platform.adapters.azureml import AzureMLAdapter
from mlinfra.platform.adapters.base import PlatformAdapter
from mlinfra.platform.adapters.local import ColabAdapter, KaggleAdapter, LocalAdapter

__all__ = ["AzureMLAdapter", "ColabAdapter", "KaggleAdapter", "LocalAdapter", "PlatformAdapter"]
