"""The platform adapter: what differs between local, Colab, Kaggle and AzureML, behind one API."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlinfra.core.platforms import PlatformDetection
from mlinfra.platform.checkpoints import resolve_checkpoint_dir
from mlinfra.platform.logs import setup_logging
from mlinfra.platform.metrics import MetricsLogger
from mlinfra.platform.mlflow_context import mlflow_run_context

if TYPE_CHECKING:
    from mlinfra.config import Project
    from mlinfra.storage import BackupStore

__all__ = ["PlatformAdapter"]


class PlatformAdapter:
    """Outputs, MLflow run, logging and checkpoints for one platform.

    Built once at the edge (:func:`mlinfra.platform.get_platform_adapter`) and passed down;
    nothing here reads the environment behind the caller's back: the adapter keeps the
    ``environ`` it was given.

    Args:
        project: The project; its ``paths.yaml`` (with this platform's ``env_overrides``) gives
            the outputs root. Needed unless ``default_output_dir`` is given.
        default_output_dir: An outputs root that replaces the project's.
        environ: The environment the platform was detected from.
        backup_store: Where outputs are backed up; :meth:`resolve_checkpoint` restores a missing
            or stale checkpoint from it first.
        detection: How the platform was recognised (for :meth:`describe`).

    Raises:
        ValueError: neither ``project`` nor ``default_output_dir`` was given.
    """

    name: ClassVar[str] = "local"

    def __init__(
        self,
        project: Project | None = None,
        *,
        default_output_dir: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        backup_store: BackupStore | None = None,
        detection: PlatformDetection | None = None,
    ) -> None:
        if project is None and default_output_dir is None:
            raise ValueError("a platform adapter needs a project or a default_output_dir")
        self.project = project
        self.default_output_dir = (
            Path(os.path.abspath(default_output_dir)) if default_output_dir is not None else None
        )
        self.environ: Mapping[str, str] = dict(os.environ) if environ is None else environ
        self.backup_store = backup_store
        self.detection = detection

    def __repr__(self) -> str:
        return f"{type(self).__name__}(outputs_root={self.outputs_root()!r})"

    # ---- outputs ---------------------------------------------------------------------------

    def outputs_root(self) -> Path:
        """The outputs folder on this platform (``paths.yaml`` ``base.outputs`` with this
        platform's ``env_overrides``, unless ``default_output_dir`` was given)."""
        if self.default_output_dir is not None:
            return self.default_output_dir
        from mlinfra.paths import apply_env_overrides, outputs_root

        assert self.project is not None  # checked in __init__
        paths = apply_env_overrides(self.project.paths, self.name)
        return outputs_root(self.project.root, paths)

    def output_path(self, name: str) -> Path:
        """The folder of the named output (``<outputs root>/<name>``); nothing is created."""
        return self.outputs_root() / name

    def ensure_output_directory(self, name: str) -> Path:
        """:meth:`output_path`, created if missing."""
        path = self.output_path(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ---- tracking and logging --------------------------------------------------------------

    def mlflow_context(
        self, run_name: str | None = None, *, tags: Mapping[str, str] | None = None
    ) -> AbstractContextManager[Any]:
        """The MLflow run of this process, opened from the environment
        (:mod:`mlinfra.platform.mlflow_context`); it ends with the block.

        Raises:
            ConfigError: no run id in the environment and no run name.
        """
        return mlflow_run_context(self.environ, run_name, tags=tags)

    def metrics_logger(self) -> MetricsLogger:
        """Logs metrics and parameters to this process's MLflow run."""
        return MetricsLogger(self.environ)

    def setup_logging(self, level: int | str = "INFO") -> logging.Logger:
        """Send mlinfra's log records to this platform's console (:func:`setup_logging`)."""
        return setup_logging(self.name, level)

    # ---- checkpoints -----------------------------------------------------------------------

    def resolve_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """The checkpoint folder in ``path`` (``path`` or ``path/checkpoint``).

        With a backup store, a missing or stale local copy of ``path`` is restored from the
        backup first.

        Raises:
            CheckpointNotFoundError: there is no checkpoint.
            BackupError: the restore failed (the local copy is untouched).
        """
        if self.backup_store is not None:
            self.backup_store.ensure_local(path, expect="dir").raise_for_error()
        name = "checkpoint"
        if self.project is not None:
            name = self.project.paths.files.get("checkpoint_dir", name)
        return resolve_checkpoint_dir(path, name)

    def is_platform_job(self) -> bool:
        """Whether this process is a job the platform started and tracks itself (AzureML)."""
        return False

    def describe(self) -> dict[str, str]:
        """What the adapter decided, for people (``mlinfra platform``)."""
        out = {"platform": self.name}
        if self.detection is not None:
            out["detected from"] = ", ".join(self.detection.variables) or "(no signal)"
            out["why"] = self.detection.reason
        out["outputs root"] = str(self.outputs_root())
        out["platform job"] = "yes" if self.is_platform_job() else "no"
        return out
