"""Adapters of the platforms where the process owns its run: local, Colab, Kaggle."""

from __future__ import annotations

from mlinfra.platform.adapters.base import PlatformAdapter

__all__ = ["ColabAdapter", "KaggleAdapter", "LocalAdapter"]


class LocalAdapter(PlatformAdapter):
    """A laptop, a workstation or a plain VM: outputs under the project root."""

    name = "local"


class ColabAdapter(PlatformAdapter):
    """Google Colab: the VM disk vanishes with the session, so pass a backup store
    (:func:`mlinfra.storage.create_colab_store`) to restore checkpoints from Drive."""

    name = "colab"


class KaggleAdapter(PlatformAdapter):
    """Kaggle notebooks: outputs under ``/kaggle/working`` (``paths.yaml`` ``env_overrides``)."""

    name = "kaggle"
