"""Environment fingerprints: which interpreter, platform, key packages, CUDA and precision.

The fingerprint covers what changes numbers: the Python version and implementation, the
operating system and machine architecture, the installed versions of the *key packages* (numerical
and ML libraries, :data:`DEFAULT_PACKAGES`; an experiment may name its own list), the CUDA version
and the training precision. The full list of installed distributions is summarised separately as
``freeze_hash``: recorded and compared by ``mlinfra fingerprint --why``, but not part of the
fingerprint, so installing an unrelated tool does not make every run look different.

CUDA is read from PyTorch when the process has already imported it (``torch.version.cuda``),
else from ``$CUDA_VERSION``; nothing heavy is imported to find it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any

from mlinfra.core.canonical import stable_hash

__all__ = [
    "DEFAULT_PACKAGES",
    "ENV_SCHEMA",
    "EnvironmentFingerprint",
    "environment_fingerprint",
    "installed_distributions",
    "precision_from_config",
]

ENV_SCHEMA = "mlinfra.env/1"
#: Packages whose version can change a result.
DEFAULT_PACKAGES: tuple[str, ...] = (
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "torch",
    "torchvision",
    "transformers",
    "tokenizers",
    "datasets",
    "accelerate",
    "peft",
    "sentencepiece",
    "safetensors",
    "jax",
    "jaxlib",
    "tensorflow",
    "keras",
    "xgboost",
    "lightgbm",
    "catboost",
    "onnx",
    "onnxruntime",
)
_NORMALISE = re.compile(r"[-_.]+")


def _canonical_name(name: str) -> str:
    return _NORMALISE.sub("-", name).lower()


def installed_distributions() -> dict[str, str]:
    """Every installed distribution, canonical name → version (the first one found wins, as
    for imports)."""
    found: dict[str, str] = {}
    for dist in importlib_metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.setdefault(_canonical_name(name), dist.version)
    return found


def precision_from_config(config: Mapping[str, Any]) -> str | None:
    """The training precision a configuration asks for (``fp32``, ``fp16``, ``bf16``, ...):
    ``precision``, ``mixed_precision`` or the ``bf16``/``fp16`` flags, searched in
    ``train.training``, ``train`` and at the top level."""
    places: list[Mapping[str, Any]] = []
    train = config.get("train")
    if isinstance(train, Mapping):
        training = train.get("training")
        if isinstance(training, Mapping):
            places.append(training)
        places.append(train)
    places.append(config)
    for place in places:
        for key in ("precision", "mixed_precision"):
            value = place.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
                return str(value).lower()
        for flag in ("bf16", "fp16"):
            if place.get(flag) is True:
                return flag
    return None


def _cuda() -> str | None:
    torch = sys.modules.get("torch")
    version = getattr(getattr(torch, "version", None), "cuda", None) if torch else None
    if isinstance(version, str) and version:
        return version
    return os.environ.get("CUDA_VERSION") or None


@dataclass(frozen=True)
class EnvironmentFingerprint:
    """The fingerprint of the environment.

    Attributes:
        hash: 64 hex characters.
        python: ``3.11.7 (CPython)``.
        platform: ``Linux-x86_64``.
        packages: Key package → installed version (packages not installed are absent).
        cuda: The CUDA version, when known.
        precision: The training precision, when the configuration sets one.
        freeze_hash: sha256 of every installed distribution and version (not in ``hash``).
    """

    hash: str
    python: str
    platform: str
    packages: dict[str, str] = field(repr=False)
    cuda: str | None = None
    precision: str | None = None
    freeze_hash: str = field(default="", repr=False)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "hash": self.hash,
            "python": self.python,
            "platform": self.platform,
            "packages": dict(self.packages),
            "cuda": self.cuda,
            "precision": self.precision,
            "freeze_hash": self.freeze_hash,
        }


def environment_fingerprint(
    *,
    packages: Iterable[str] | None = None,
    precision: str | None = None,
    cuda: str | None = None,
    distributions: Mapping[str, str] | None = None,
) -> EnvironmentFingerprint:
    """Fingerprint this process's environment (see the module docstring).

    Args:
        packages: The key packages (default :data:`DEFAULT_PACKAGES`; an empty list: none);
            names are compared the way pip does (case, ``-``, ``_`` and ``.`` do not matter).
        precision: The training precision (see :func:`precision_from_config`).
        cuda: The CUDA version (default: detected).
        distributions: Installed distributions (default: :func:`installed_distributions`).
    """
    installed = dict(distributions) if distributions is not None else installed_distributions()
    chosen = DEFAULT_PACKAGES if packages is None else packages
    wanted = sorted({_canonical_name(p) for p in chosen})
    versions = {name: installed[name] for name in wanted if name in installed}
    python = f"{platform.python_version()} ({platform.python_implementation()})"
    system = f"{platform.system()}-{platform.machine()}"
    cuda_version = cuda if cuda is not None else _cuda()
    freeze = hashlib.sha256(
        "\n".join(f"{k}=={v}" for k, v in sorted(installed.items())).encode()
    ).hexdigest()
    payload = {
        "schema": ENV_SCHEMA,
        "python": python,
        "platform": system,
        "packages": versions,
        "cuda": cuda_version,
        "precision": precision,
    }
    return EnvironmentFingerprint(
        hash=stable_hash(payload),
        python=python,
        platform=system,
        packages=versions,
        cuda=cuda_version,
        precision=precision,
        freeze_hash=freeze,
    )
