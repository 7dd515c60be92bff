"""The one platform vocabulary, and how the current platform is recognised.

``local``, ``colab``, ``kaggle`` and ``azureml`` name both where code runs (the execution platform)
and the storage-environment keys of ``paths.yaml``; nothing else is accepted anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, get_args

__all__ = ["PLATFORMS", "PLATFORM_ENV", "Platform", "check_platform", "detect_platform"]

Platform = Literal["local", "colab", "kaggle", "azureml"]
PLATFORMS: tuple[str, ...] = get_args(Platform)

#: Environment variable that names the platform explicitly, overriding detection.
PLATFORM_ENV = "MLINFRA_PLATFORM"

_ALIASES = {"azure": "azureml", "aml": "azureml", "google_colab": "colab"}

# Documented signals, checked in this order.
_SIGNALS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "azureml",
        ("AZUREML_RUN_ID", "AZUREML_EXPERIMENT_ID", "AZUREML_CR_EXECUTION_WORKING_DIR_PATH"),
    ),
    ("colab", ("COLAB_RELEASE_TAG", "COLAB_GPU", "COLAB_TPU_ADDR", "COLAB_BACKEND_VERSION")),
    ("kaggle", ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "KAGGLE_DATA_PROXY_TOKEN")),
)


def check_platform(name: str, *, what: str = "platform") -> str:
    """Return ``name`` if it is one of :data:`PLATFORMS`.

    Raises:
        ValueError: any other name; the message lists the accepted ones and the right spelling
            of a known alias (``azure`` → ``azureml``).
    """
    if name in PLATFORMS:
        return name
    hint = f" (did you mean '{_ALIASES[name]}'?)" if name in _ALIASES else ""
    raise ValueError(f"unknown {what} {name!r}{hint}; use one of: {', '.join(PLATFORMS)}")


def detect_platform(environ: Mapping[str, str] | None = None) -> str:
    """The platform this process runs on.

    ``$MLINFRA_PLATFORM`` wins when set; otherwise AzureML, Colab and Kaggle are recognised by the
    environment variables their runtimes set (``AZUREML_RUN_ID``, ``COLAB_RELEASE_TAG``,
    ``KAGGLE_KERNEL_RUN_TYPE`` and related ones); anything else is ``local``.

    Raises:
        ValueError: ``$MLINFRA_PLATFORM`` names an unknown platform.
    """
    env = os.environ if environ is None else environ
    forced = env.get(PLATFORM_ENV, "").strip()
    if forced:
        return check_platform(forced, what=f"{PLATFORM_ENV} value")
    for platform, names in _SIGNALS:
        if any(env.get(n) for n in names):
            return platform
    return "local"
