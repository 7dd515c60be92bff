"""The AzureML environment a job runs in: a Docker image, optionally with a conda file.

A named environment gets the version ``v<hash>``, where the hash covers the image and the conda
file's content (:func:`compute_environment_hash`): the same definition always maps to the same
version, so it is built once and shared by every job and worker, and a changed conda file makes a
new version instead of silently reusing the old image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlinfra.azureml._sdk import azure_ml_entities, quiet_sdk
from mlinfra.core.canonical import short_hash, stable_hash
from mlinfra.errors import ConfigError

__all__ = ["DEFAULT_IMAGE", "EnvironmentSpec", "build_environment", "compute_environment_hash"]

#: The image used when the configuration names none (AzureML's CPU base image).
DEFAULT_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"
_HASH_LENGTH = 16


def compute_environment_hash(conda: Mapping[str, Any] | None, image: str) -> str:
    """The 16-hex-digit identity of an environment: its conda spec and image, canonical JSON.

    Example:
        >>> compute_environment_hash({"dependencies": ["python=3.11"]}, "img:1") == (
        ...     compute_environment_hash({"dependencies": ["python=3.11"]}, "img:1"))
        True
    """
    return short_hash(
        stable_hash({"conda": dict(conda) if conda else None, "image": image}), _HASH_LENGTH
    )


@dataclass(frozen=True)
class EnvironmentSpec:
    """What a job's environment is, resolved from configuration (no Azure SDK needed).

    Attributes:
        name: The registered name, or ``None`` for an anonymous environment.
        image: The Docker image.
        conda_file: The conda file (absolute), or ``None``.
        conda: The conda file's content.
        asset: A registered environment to use as it is (``azureml:name:version`` or
            ``azureml:name@latest``) instead of the above.
    """

    name: str | None = None
    image: str = DEFAULT_IMAGE
    conda_file: Path | None = None
    conda: Mapping[str, Any] | None = None
    asset: str | None = None

    @property
    def version(self) -> str | None:
        """``v<hash>`` for a named environment, else ``None``."""
        if self.asset is not None or self.name is None:
            return None
        return "v" + compute_environment_hash(self.conda, self.image)

    @property
    def reference(self) -> str:
        """How a job names it: ``azureml:name:version``, the asset, or ``anonymous``."""
        if self.asset is not None:
            return self.asset
        return f"azureml:{self.name}:{self.version}" if self.name else "anonymous"

    @classmethod
    def from_config(
        cls, section: Mapping[str, Any] | None, *, base_dir: Path, key: str
    ) -> EnvironmentSpec:
        """Read ``{name, docker_image | image, conda_file, asset}``; ``conda_file`` is relative
        to ``base_dir``.

        Raises:
            ConfigError: a value of the wrong type, or a conda file that is missing or not a
                YAML mapping.
        """
        data = dict(section or {})
        for field_name in ("name", "docker_image", "image", "conda_file", "asset"):
            value = data.get(field_name)
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise ConfigError(
                    f"must be a non-empty string, got {value!r}", key=f"{key}.{field_name}"
                )
        asset = data.get("asset")
        if asset is not None and not str(asset).startswith("azureml:"):
            raise ConfigError(
                f"an environment asset is 'azureml:<name>:<version>' or 'azureml:<name>@latest', "
                f"got {asset!r}",
                key=f"{key}.asset",
            )
        image = data.get("docker_image") or data.get("image") or DEFAULT_IMAGE
        conda_file: Path | None = None
        conda: dict[str, Any] | None = None
        if data.get("conda_file"):
            conda_file = (base_dir / str(data["conda_file"])).resolve()
            if not conda_file.is_file():
                raise ConfigError(
                    f"conda file {data['conda_file']!r} not found (looked at {conda_file}); "
                    "create it, or remove conda_file to use the image as it is",
                    key=f"{key}.conda_file",
                )
            try:
                loaded = yaml.safe_load(conda_file.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise ConfigError(
                    f"conda file is not valid YAML: {exc}", file=conda_file, key=f"{key}.conda_file"
                ) from exc
            if not isinstance(loaded, dict):
                raise ConfigError(
                    "a conda file must be a YAML mapping (name, channels, dependencies)",
                    file=conda_file,
                    key=f"{key}.conda_file",
                )
            conda = loaded
        return cls(
            name=data.get("name"),
            image=str(image),
            conda_file=conda_file,
            conda=conda,
            asset=str(asset) if asset else None,
        )


def build_environment(spec: EnvironmentSpec) -> Any:
    """The ``azure.ai.ml.entities.Environment`` of ``spec`` (or its asset reference string).

    Raises:
        MissingDependencyError: the ``azure`` extra is not installed.
    """
    entities = azure_ml_entities()
    if spec.asset is not None:
        return spec.asset
    kwargs: dict[str, Any] = {"image": spec.image}
    if spec.conda is not None:
        kwargs["conda_file"] = dict(spec.conda)
    if spec.name is not None:
        kwargs.update(name=spec.name, version=spec.version)
    with quiet_sdk():
        return entities.Environment(**kwargs)
