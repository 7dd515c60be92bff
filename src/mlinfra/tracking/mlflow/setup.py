"""``setup_mlflow``: one MLflow setup for every platform.

Tracking URI, in order: the ``tracking_uri`` argument (or ``config["tracking_uri"]``) >
``$MLFLOW_TRACKING_URI`` > ``tracking_uri`` in ``mlflow.yaml`` > ``shared.tracking_uri`` in
``mlflow.yaml`` (the scale-out switch) > the platform default. A ``postgresql://`` store URI gets
the psycopg 3 driver (``postgresql+psycopg://``). The default
on ``local``, ``colab`` and ``kaggle`` is a SQLite database under the project root
(``<root>/mlruns/mlflow.db``, artifacts in ``<root>/mlruns/artifacts``), never relative to the
working directory; relative ``sqlite:///`` and ``file:`` paths are placed under the project root
too. On AzureML the job's own ``$MLFLOW_TRACKING_URI`` (the workspace) is used.

A SQLite database on a network or FUSE mount is refused. MLflow 3 keeps its file store in
maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``; for a ``file:`` URI
mlinfra allows it for this process and warns (:class:`~mlinfra.errors.FileStoreWarning`).

Experiment creation is safe when many processes start at once: creation races are retried, and
the first initialisation of a SQLite database is serialised with a lock file beside it.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlinfra.config import Project, load_infra_config
from mlinfra.core.imports import require
from mlinfra.core.platforms import check_platform, detect_platform
from mlinfra.errors import ConfigError, FileStoreWarning, TrackingError
from mlinfra.registry.location import check_local_disk, sqlalchemy_url
from mlinfra.tracking.uris import server_unreachable, sqlite_file

__all__ = ["MlflowSetup", "default_tracking_uri", "resolve_tracking_uri", "setup_mlflow"]

_ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"


@dataclass(frozen=True)
class MlflowSetup:
    """What :func:`setup_mlflow` resolved.

    Attributes:
        tracking_uri: The URI MLflow now uses.
        uri_source: Where it came from: ``argument``, ``environment``, ``mlflow.yaml``,
            ``shared`` (``shared.tracking_uri`` in ``mlflow.yaml``) or ``default``.
        experiment_name: The active experiment.
        experiment_id: Its id.
        platform: ``local``, ``colab``, ``kaggle`` or ``azureml``.
        artifact_location: Where new experiments keep artifacts (``None``: MLflow's default).
    """

    tracking_uri: str
    uri_source: str
    experiment_name: str
    experiment_id: str
    platform: str
    artifact_location: str | None = None


def default_tracking_uri(root: Path) -> tuple[str, str]:
    """The platform default: ``(sqlite URI under <root>/mlruns, artifact folder URI)``."""
    folder = Path(os.path.abspath(root)) / "mlruns"
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


def _anchor(uri: str, root: Path | None) -> str:
    """Place a relative ``sqlite:///`` or ``file:`` path under the project root."""
    base = Path(os.path.abspath(root if root is not None else Path.cwd()))
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        rel = uri.removeprefix("sqlite:///")
        if rel and rel != ":memory:":
            return f"sqlite:///{os.path.normpath(base / rel)}"
    if uri.startswith("file:") and not uri.startswith("file:///"):
        rel = uri.removeprefix("file:")
        if not Path(rel).is_absolute():
            return f"file://{os.path.normpath(base / rel)}"
    return uri


def resolve_tracking_uri(
    tracking_uri: str | None,
    *,
    root: Path | None,
    config_dir: Path | None,
    platform: str,
    environ: Mapping[str, str],
) -> tuple[str, str]:
    """``(uri, source)`` by the precedence in the module docstring.

    Raises:
        ConfigError: on AzureML without a tracking URI, or with no project for the default.
    """
    if tracking_uri:
        return _anchor(sqlalchemy_url(tracking_uri), root), "argument"
    if environ.get("MLFLOW_TRACKING_URI"):
        return _anchor(sqlalchemy_url(environ["MLFLOW_TRACKING_URI"]), root), "environment"
    if config_dir is not None and (config_dir / "mlflow.yaml").is_file():
        configured = load_infra_config(config_dir, "mlflow", environ=environ)
        if configured.tracking_uri:
            return _anchor(sqlalchemy_url(configured.tracking_uri), root), "mlflow.yaml"
        if configured.shared.tracking_uri:
            return _anchor(sqlalchemy_url(configured.shared.tracking_uri), root), "shared"
    if platform == "azureml":
        raise ConfigError(
            "on AzureML the tracking URI is the workspace's: run inside an AzureML job (which "
            "sets MLFLOW_TRACKING_URI), or pass tracking_uri= or set it in mlflow.yaml"
        )
    if root is None:
        raise ConfigError(
            "no project to place the MLflow database in: run inside a project (a folder with "
            "config/), name one (--project or root_dir=), or give a tracking URI"
        )
    return default_tracking_uri(root)[0], "default"


def _check_server(uri: str) -> None:
    """Fail fast when a tracking server does not answer (MLflow itself retries for minutes)."""
    reason = server_unreachable(uri)
    if reason is not None:
        raise TrackingError(
            f"the MLflow tracking server does not answer ({reason}); start it, or check "
            "MLFLOW_TRACKING_URI / mlflow.yaml (`mlinfra doctor` shows where the URI came from)"
        )


def _get_or_create(client: Any, name: str, artifact_location: str | None) -> str:
    mlflow_exceptions = require("mlflow.exceptions", feature="MLflow tracking")
    for attempt in range(20):
        try:
            found = client.get_experiment_by_name(name)
        except mlflow_exceptions.MlflowException as exc:
            raise TrackingError(f"cannot look up MLflow experiment {name!r}: {exc}") from exc
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise TrackingError(
                    f"experiment {name!r} is deleted in MLflow; restore it "
                    f"(mlflow experiments restore --experiment-id {found.experiment_id}) or "
                    "choose another name"
                )
            return str(found.experiment_id)
        try:
            return str(client.create_experiment(name, artifact_location=artifact_location))
        except mlflow_exceptions.MlflowException as exc:
            # another process created it between our lookup and our create: look again
            if "already exists" not in str(exc).lower() and "unique" not in str(exc).lower():
                raise TrackingError(f"cannot create MLflow experiment {name!r}: {exc}") from exc
            time.sleep(0.05 * (attempt + 1))
    raise TrackingError(f"MLflow experiment {name!r} could not be created or found")


def setup_mlflow(
    config: Mapping[str, Any] | None = None,
    *,
    experiment_name: str | None = None,
    tracking_uri: str | None = None,
    root_dir: str | Path | None = None,
    config_dir: str | Path | None = None,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> MlflowSetup:
    """Point MLflow at the right tracking store and experiment, on any platform.

    Args:
        config: The specification's form: ``{"tracking_uri": ..., "experiment_name": ...}``.
        experiment_name: The experiment (else ``config``, ``$MLFLOW_EXPERIMENT_NAME``, then
            ``experiment_name`` in ``mlflow.yaml``).
        tracking_uri: Overrides every other source.
        root_dir: The project root (default: discovered from the working directory).
        config_dir: The config folder (default: ``<root>/config``).
        platform: ``local``, ``colab``, ``kaggle`` or ``azureml`` (default: detected).
        environ: The environment to read (default: ``os.environ``).

    Returns:
        What was resolved, for callers and ``mlinfra doctor`` to show.

    Raises:
        ConfigError: no experiment name, an unknown platform or config key, AzureML without a
            URI, or a SQLite database on a network or FUSE mount (``UnsafeStorageError``).
        TrackingError: MLflow refused to create or find the experiment.

    Example:
        >>> setup_mlflow(config={"tracking_uri": "sqlite:///mlruns/mlflow.db",
        ...                      "experiment_name": "my_experiment"})  # doctest: +SKIP
    """
    env = os.environ if environ is None else environ
    cfg = dict(config or {})
    unknown = sorted(set(cfg) - {"tracking_uri", "experiment_name"})
    if unknown:
        raise ConfigError(
            f"unknown setup_mlflow config key(s) {', '.join(unknown)}; known: "
            "tracking_uri, experiment_name"
        )
    try:
        where = check_platform(platform) if platform else detect_platform(env)
    except ValueError as exc:
        raise ConfigError(str(exc), key="platform") from None
    # resolved like Project.discover does, so the same project always gives the same URI
    root: Path | None = Path(root_dir).resolve() if root_dir is not None else None
    folder: Path | None = Path(config_dir) if config_dir is not None else None
    if root is None or folder is None:
        try:
            project = Project.discover(root, config_dir=folder, environ=env)
            root = root or project.root
            folder = folder or project.config_dir
        except ConfigError:
            if root is not None:
                folder = folder or root / "config"
    uri, source = resolve_tracking_uri(
        tracking_uri or cfg.get("tracking_uri"),
        root=root,
        config_dir=folder,
        platform=where,
        environ=env,
    )
    name = experiment_name or cfg.get("experiment_name") or env.get("MLFLOW_EXPERIMENT_NAME")
    if not name and folder is not None and (folder / "mlflow.yaml").is_file():
        name = load_infra_config(folder, "mlflow", environ=env).experiment_name
    if not name:
        raise ConfigError(
            "no MLflow experiment name: pass experiment_name=, config={'experiment_name': ...}, "
            "set MLFLOW_EXPERIMENT_NAME, or set experiment_name in mlflow.yaml"
        )

    artifact_location: str | None = None
    db = sqlite_file(uri)
    if db is not None:
        check_local_disk(db, what="MLflow database")
        db.parent.mkdir(parents=True, exist_ok=True)
        if source == "default" and root is not None:
            artifact_location = default_tracking_uri(root)[1]
    file_store = uri.startswith("file:") or ("://" not in uri and not uri.startswith("sqlite"))
    if file_store and os.environ.get(_ALLOW_FILE_STORE, "").lower() != "true":
        warnings.warn(
            f"MLflow's file store ({uri}) is in maintenance mode; mlinfra allows it for this "
            f"process ({_ALLOW_FILE_STORE}=true). Prefer SQLite, e.g. "
            "sqlite:///mlruns/mlflow.db; `mlflow migrate-filestore` moves existing runs",
            FileStoreWarning,
            stacklevel=2,
        )
        os.environ[_ALLOW_FILE_STORE] = "true"

    mlflow = require("mlflow", feature="MLflow tracking")
    filelock = require("filelock")

    def connect() -> str:
        mlflow.set_tracking_uri(uri)
        client = mlflow.MlflowClient(tracking_uri=uri)
        found = _get_or_create(client, name, artifact_location)
        mlflow.set_experiment(experiment_id=found)
        return found

    _check_server(uri)
    if db is not None:
        # MLflow creates and migrates a new SQLite database when a store first opens it; two
        # processes doing that at once fail ("duplicate column"), so opening is serialised
        with filelock.FileLock(str(db) + ".init.lock", timeout=120):
            experiment_id = connect()
    else:
        experiment_id = connect()
    return MlflowSetup(uri, source, name, experiment_id, where, artifact_location)
