"""Workspace setup from ``config/infrastructure.yaml``: workspace, compute, environments, data.

Every value may use ``${VAR}`` and ``${VAR:-default}``, resolved against the environment and,
for what the environment does not set, a git-ignored ``KEY=VALUE`` file (``config.env`` at the
project root by default). That file is read, never exported into ``os.environ``.

:func:`ensure_workspace_resources` is idempotent: it looks each resource up first, creates only
what is missing, and reports what existed and what it created; with ``dry_run`` it creates
nothing and reports what it would create. Credentials: a service principal when
``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET`` and ``AZURE_TENANT_ID`` are set (in the environment
or the env file), else ``DefaultAzureCredential`` (Azure CLI login, managed identity, ...).
"""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlinfra.azureml._sdk import AZURE_EXTRA, azure_core_exceptions, azure_ml_entities, quiet_sdk
from mlinfra.azureml.environment import DEFAULT_IMAGE, EnvironmentSpec, build_environment
from mlinfra.azureml.runtime import AzureMLRequestError
from mlinfra.config.interpolation import resolve_interpolations
from mlinfra.config.loader import display_path
from mlinfra.config.validation import validate_tree
from mlinfra.config.yamlio import load_yaml_file
from mlinfra.core.imports import require
from mlinfra.errors import ConfigError, MlinfraWarning

__all__ = [
    "ENV_FILE",
    "INFRASTRUCTURE_FILE",
    "InfrastructureSpec",
    "SetupAction",
    "ensure_workspace_resources",
    "get_ml_client",
    "load_env_file",
    "load_infrastructure_config",
    "ml_client_from_spec",
]

INFRASTRUCTURE_FILE = "infrastructure.yaml"
#: The git-ignored credentials file at the project root.
ENV_FILE = "config.env"
_SP_VARS = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AzureSection(_Strict):
    subscription_id: str | None = None
    resource_group: str | None = None
    location: str = "southeastasia"


class WorkspaceSection(_Strict):
    name: str = Field(min_length=1)
    #: Create the workspace when it is missing (else a missing workspace is an error).
    create: bool = False
    description: str | None = None


class ComputeSpec(_Strict):
    name: str = Field(min_length=1, max_length=32)
    vm_size: str = "Standard_D2s_v3"
    min_instances: int = Field(default=0, ge=0)
    max_instances: int = Field(default=2, ge=1)
    idle_seconds: int = Field(default=600, ge=0)
    tier: Literal["dedicated", "low_priority"] = "dedicated"


class EnvironmentSection(_Strict):
    name: str = Field(min_length=1)
    docker_image: str = DEFAULT_IMAGE
    conda_file: str | None = None
    description: str | None = None


class DataAssetSpec(_Strict):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    #: A local folder or file (relative to the config folder), or a URI (azureml://, https://).
    path: str = Field(min_length=1)
    type: Literal["uri_folder", "uri_file"] = "uri_folder"
    description: str | None = None


class InfrastructureSpec(_Strict):
    """``infrastructure.yaml``, validated; relative paths are relative to ``config_dir``."""

    azure: AzureSection = Field(default_factory=AzureSection)
    workspace: WorkspaceSection
    compute: dict[str, ComputeSpec] = Field(default_factory=dict)
    environments: dict[str, EnvironmentSection] = Field(default_factory=dict)
    data_assets: dict[str, DataAssetSpec] = Field(default_factory=dict)
    config_dir: Path = Path()


@dataclass(frozen=True)
class SetupAction:
    """What setup found or did for one resource.

    Attributes:
        kind: ``workspace``, ``compute``, ``environment`` or ``data``.
        name: The resource (``name:version`` for versioned assets).
        action: ``exists``, ``created`` or ``would create``.
    """

    kind: str
    name: str
    action: Literal["exists", "created", "would create"]

    def __str__(self) -> str:
        return f"{self.kind:<11} {self.name:<40} {self.action}"


# ---- configuration ---------------------------------------------------------------------------


def _git_tracks(path: Path) -> bool:
    """Whether git would commit ``path`` (inside a work tree and not ignored)."""
    try:
        result = subprocess.run(
            ["git", "check-ignore", "-q", str(path)],
            cwd=path.parent,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 1  # 0: ignored; 128: not a repository


def load_env_file(path: str | Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` and quotes allowed, ``#`` comments) of ``path``; an empty
    dict when the file does not exist. Warns when git would commit the file.

    Raises:
        ConfigError: a line that is not ``KEY=VALUE``.
    """
    file = Path(path)
    if not file.is_file():
        return {}
    if _git_tracks(file):
        warnings.warn(
            f"{file} holds credentials but git does not ignore it; add it to .gitignore",
            MlinfraWarning,
            stacklevel=2,
        )
    values: dict[str, str] = {}
    for number, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not eq or not key.replace("_", "").isalnum():
            raise ConfigError("expected KEY=VALUE", file=file, line=number)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def load_infrastructure_config(
    config_dir: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = None,
) -> InfrastructureSpec:
    """Read ``<config_dir>/infrastructure.yaml`` with ``${VAR:-default}`` resolved.

    Args:
        config_dir: The config folder.
        environ: The environment (default ``os.environ``); it wins over the env file.
        env_file: The credentials file (default ``<config_dir>/../config.env``).

    Raises:
        ConfigError: the file is missing or invalid, or a variable it needs is unset.
    """
    folder = Path(config_dir).resolve()
    path = folder / INFRASTRUCTURE_FILE
    shown = display_path(path, folder)
    if not path.is_file():
        raise ConfigError(
            f"{INFRASTRUCTURE_FILE} not found in {folder}; it describes the workspace, compute, "
            "environments and data assets `mlinfra azureml setup` ensures",
            file=shown,
        )
    merged = _credentials_environ(folder, environ, env_file)
    tree = load_yaml_file(path, display=shown)
    if not isinstance(tree.data, dict):
        raise ConfigError(f"{INFRASTRUCTURE_FILE} must be a mapping of keys", file=shown, line=1)
    tree.data["config_dir"] = str(folder)
    tree = resolve_interpolations(tree, merged)
    return validate_tree(InfrastructureSpec, tree, file=shown)


def _credentials_environ(
    config_dir: Path, environ: Mapping[str, str] | None, env_file: str | Path | None
) -> dict[str, str]:
    env_path = Path(env_file) if env_file is not None else config_dir.parent / ENV_FILE
    return {**load_env_file(env_path), **(os.environ if environ is None else environ)}


def get_ml_client(
    subscription_id: str,
    resource_group: str,
    workspace_name: str,
    *,
    credential: Any | None = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """An ``azure.ai.ml.MLClient`` for the workspace (nothing is contacted yet).

    ``credential`` defaults to a service principal when ``AZURE_CLIENT_ID``,
    ``AZURE_CLIENT_SECRET`` and ``AZURE_TENANT_ID`` are all in ``environ``, else
    ``DefaultAzureCredential()``.

    Raises:
        MissingDependencyError: the ``azure`` extra is not installed.
    """
    from mlinfra.azureml._sdk import azure_ml

    ml = azure_ml()
    if credential is None:
        identity = require("azure.identity", extra=AZURE_EXTRA, feature="AzureML credentials")
        env = os.environ if environ is None else environ
        if all(env.get(k) for k in _SP_VARS):
            credential = identity.ClientSecretCredential(
                tenant_id=env["AZURE_TENANT_ID"],
                client_id=env["AZURE_CLIENT_ID"],
                client_secret=env["AZURE_CLIENT_SECRET"],
            )
        else:
            credential = identity.DefaultAzureCredential()
    with quiet_sdk():
        return ml.MLClient(
            credential=credential,
            subscription_id=subscription_id,
            resource_group_name=resource_group,
            workspace_name=workspace_name,
        )


def ml_client_from_spec(
    spec: InfrastructureSpec,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = None,
) -> Any:
    """:func:`get_ml_client` for the workspace ``spec`` describes.

    Raises:
        ConfigError: no subscription or resource group (naming the variables to set).
        MissingDependencyError: the ``azure`` extra is not installed.
    """
    missing = [
        var
        for var, value in (
            ("AZURE_SUBSCRIPTION_ID", spec.azure.subscription_id),
            ("AZURE_RESOURCE_GROUP", spec.azure.resource_group),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"set {' and '.join(missing)} (in the environment, or in {ENV_FILE} at the project "
            f"root, which git must ignore), or write them under 'azure:' in {INFRASTRUCTURE_FILE}",
            key="azure",
        )
    assert spec.azure.subscription_id and spec.azure.resource_group
    return get_ml_client(
        spec.azure.subscription_id,
        spec.azure.resource_group,
        spec.workspace.name,
        environ=_credentials_environ(spec.config_dir, environ, env_file),
    )


# ---- ensuring resources ----------------------------------------------------------------------


def _exists(kind: str, name: str, get: Callable[[], Any]) -> bool:
    errors = azure_core_exceptions()
    try:
        get()
    except errors.ResourceNotFoundError:
        return False
    except errors.AzureError as exc:
        raise AzureMLRequestError(
            f"could not look up {kind} {name}: {exc}", resource=f"{kind} {name}", action="get"
        ) from exc
    return True


def _create(kind: str, name: str, create: Callable[[], Any]) -> None:
    errors = azure_core_exceptions()
    try:
        with quiet_sdk():
            result = create()
            wait = getattr(result, "result", None)
            if callable(wait):  # a long-running operation (compute, workspace)
                wait()
    except errors.AzureError as exc:
        raise AzureMLRequestError(
            f"could not create {kind} {name}: {exc}", resource=f"{kind} {name}", action="create"
        ) from exc


def _data_path(asset: DataAssetSpec, config_dir: Path) -> str:
    if "://" in asset.path or asset.path.startswith("azureml:"):
        return asset.path
    local = (config_dir / asset.path).resolve()
    if not local.exists():
        raise ConfigError(
            f"data asset {asset.name}: {asset.path!r} does not exist (looked at {local})",
            key=f"data_assets.{asset.name}.path",
        )
    return str(local)


def ensure_workspace_resources(
    ml_client: Any,
    spec: InfrastructureSpec,
    *,
    dry_run: bool = False,
    echo: Callable[[str], None] | None = None,
) -> list[SetupAction]:
    """Make sure the workspace, compute clusters, environments and data assets of ``spec``
    exist: look each up, create what is missing (nothing with ``dry_run``).

    Returns:
        One :class:`SetupAction` per resource, in the order handled.

    Raises:
        ConfigError: a missing workspace without ``workspace.create``, a missing conda file or
            local data folder.
        AzureMLRequestError: AzureML refused a lookup or a creation.
        MissingDependencyError: the ``azure`` extra is not installed.
    """
    entities = azure_ml_entities()
    say = echo or (lambda _message: None)
    report: list[SetupAction] = []

    def ensure(kind: str, name: str, get: Callable[[], Any], create: Callable[[], Any]) -> None:
        if _exists(kind, name, get):
            action: Literal["exists", "created", "would create"] = "exists"
        elif dry_run:
            action = "would create"
        else:
            say(f"creating {kind} {name} ...")
            _create(kind, name, create)
            action = "created"
        report.append(SetupAction(kind, name, action))
        say(str(report[-1]))

    ws = spec.workspace
    if not _exists("workspace", ws.name, lambda: ml_client.workspaces.get(ws.name)):
        if not ws.create:
            raise ConfigError(
                f"workspace {ws.name} does not exist in resource group "
                f"{spec.azure.resource_group}; create it, or set workspace.create: true",
                key="workspace.name",
            )
        if dry_run:
            report.append(SetupAction("workspace", ws.name, "would create"))
        else:
            workspace = entities.Workspace(
                name=ws.name, location=spec.azure.location, description=ws.description
            )
            _create("workspace", ws.name, lambda: ml_client.workspaces.begin_create(workspace))
            report.append(SetupAction("workspace", ws.name, "created"))
    else:
        report.append(SetupAction("workspace", ws.name, "exists"))
    say(str(report[-1]))

    for compute in spec.compute.values():
        cluster = entities.AmlCompute(
            name=compute.name,
            size=compute.vm_size,
            min_instances=compute.min_instances,
            max_instances=compute.max_instances,
            idle_time_before_scale_down=compute.idle_seconds,
            tier=compute.tier,
        )
        ensure(
            "compute",
            compute.name,
            partial(ml_client.compute.get, compute.name),
            partial(ml_client.compute.begin_create_or_update, cluster),
        )

    for key, section in spec.environments.items():
        env_spec = EnvironmentSpec.from_config(
            section.model_dump(exclude_none=True),
            base_dir=spec.config_dir,
            key=f"environments.{key}",
        )
        env = build_environment(env_spec)
        if section.description:
            env.description = section.description
        ensure(
            "environment",
            f"{env_spec.name}:{env_spec.version}",
            partial(ml_client.environments.get, env_spec.name, version=env_spec.version),
            partial(ml_client.environments.create_or_update, env),
        )

    for asset in spec.data_assets.values():
        data = entities.Data(
            name=asset.name,
            version=asset.version,
            type=asset.type,
            path=_data_path(asset, spec.config_dir),
            description=asset.description,
        )
        ensure(
            "data",
            f"{asset.name}:{asset.version}",
            partial(ml_client.data.get, asset.name, version=asset.version),
            partial(ml_client.data.create_or_update, data),
        )
    return report
