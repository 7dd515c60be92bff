"""The one place that imports the Azure SDK: on first use, with an install hint when missing.

azure-ai-ml builds its marshmallow schemas at import time and whenever an entity is serialised,
and marshmallow 3.2x warns about APIs that marshmallow 4 removes (``Marshmallow4Warning``) each
time. Those warnings are raised inside the SDK, are not ours to fix, and would turn into errors for
anyone running with ``-W error``; :func:`quiet_sdk` silences exactly that category around SDK calls
and nothing else.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from mlinfra.core.imports import require

__all__ = ["AZURE_EXTRA", "azure_core_exceptions", "azure_ml", "azure_ml_entities", "quiet_sdk"]

#: The optional extra that installs the Azure SDK: ``pip install 'mlinfra[azure]'``.
AZURE_EXTRA = "azure"
_FEATURE = "AzureML jobs and workspace setup"


@contextmanager
def quiet_sdk() -> Iterator[None]:
    """Silence marshmallow's 4.0 deprecation warnings raised inside azure-ai-ml (and only those)."""
    with warnings.catch_warnings():
        try:
            from marshmallow.warnings import Marshmallow4Warning
        except ImportError:  # marshmallow without that category (older or newer): nothing to hide
            pass
        else:
            warnings.filterwarnings("ignore", category=Marshmallow4Warning)
        yield


def azure_ml() -> ModuleType:
    """``azure.ai.ml``.

    Raises:
        MissingDependencyError: azure-ai-ml is not installed (names ``mlinfra[azure]``).
    """
    with quiet_sdk():
        return require("azure.ai.ml", extra=AZURE_EXTRA, feature=_FEATURE)


def azure_ml_entities() -> ModuleType:
    """``azure.ai.ml.entities``.

    Raises:
        MissingDependencyError: azure-ai-ml is not installed (names ``mlinfra[azure]``).
    """
    with quiet_sdk():
        return require("azure.ai.ml.entities", extra=AZURE_EXTRA, feature=_FEATURE)


def azure_core_exceptions() -> ModuleType:
    """``azure.core.exceptions`` (installed with azure-ai-ml).

    Raises:
        MissingDependencyError: azure-core is not installed (names ``mlinfra[azure]``).
    """
    return require("azure.core.exceptions", extra=AZURE_EXTRA, feature=_FEATURE)
