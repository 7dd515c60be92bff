"""The one platform vocabulary, and how the current platform is recognised.

``local``, ``colab``, ``kaggle`` and ``azureml`` name both where code runs (the execution platform)
and the storage-environment keys of ``paths.yaml``; nothing else is accepted anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "PLATFORMS",
    "PLATFORM_ENV",
    "SIGNALS",
    "Platform",
    "PlatformDetection",
    "check_platform",
    "detect_platform",
    "explain_platform",
]

Platform = Literal["local", "colab", "kaggle", "azureml"]
PLATFORMS: tuple[str, ...] = get_args(Platform)

#: Environment variable that names the platform explicitly, overriding detection.
PLATFORM_ENV = "MLINFRA_PLATFORM"

_ALIASES = {"azure": "azureml", "aml": "azureml", "google_colab": "colab"}

#: Documented signals, checked in this order: the environment variables each runtime sets.
SIGNALS: tuple[tuple[str, tuple[str, ...]], ...] = (
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


@dataclass(frozen=True)
class PlatformDetection:
    """Which platform was recognised, and why.

    Attributes:
        platform: ``local``, ``colab``, ``kaggle`` or ``azureml``.
        source: ``"override"`` (``$MLINFRA_PLATFORM``), ``"signal"`` (a runtime's variable) or
            ``"default"`` (no signal: ``local``).
        variables: The variables that decided it (the override, or every signal of the platform
            that is set), in the documented order.
        reason: One sentence saying why, for people.
    """

    platform: str
    source: Literal["override", "signal", "default"]
    variables: tuple[str, ...]
    reason: str


def explain_platform(environ: Mapping[str, str] | None = None) -> PlatformDetection:
    """The platform this process runs on, with the environment variables that decided it.

    Raises:
        ValueError: ``$MLINFRA_PLATFORM`` names an unknown platform.
    """
    env = os.environ if environ is None else environ
    forced = env.get(PLATFORM_ENV, "").strip()
    if forced:
        name = check_platform(forced, what=f"{PLATFORM_ENV} value")
        return PlatformDetection(
            name, "override", (PLATFORM_ENV,), f"{PLATFORM_ENV}={forced} overrides detection"
        )
    for platform, names in SIGNALS:
        found = tuple(n for n in names if env.get(n))
        if found:
            return PlatformDetection(
                platform,
                "signal",
                found,
                f"{', '.join(found)} set (the {platform} runtime sets it)",
            )
    every = ", ".join(n for _, names in SIGNALS for n in names)
    return PlatformDetection(
        "local", "default", (), f"neither {PLATFORM_ENV} nor any runtime signal ({every}) is set"
    )


def detect_platform(environ: Mapping[str, str] | None = None) -> str:
    """The platform this process runs on.

    ``$MLINFRA_PLATFORM`` wins when set; otherwise AzureML, Colab and Kaggle are recognised by the
    environment variables their runtimes set (``AZUREML_RUN_ID``, ``COLAB_RELEASE_TAG``,
    ``KAGGLE_KERNEL_RUN_TYPE`` and related ones, see :data:`SIGNALS`); anything else is ``local``.
    :func:`explain_platform` also says why.

    Raises:
        ValueError: ``$MLINFRA_PLATFORM`` names an unknown platform.
    """
    return explain_platform(environ).platform
