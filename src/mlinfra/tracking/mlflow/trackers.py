"""Trackers: one context manager per stage run, built on find-or-create.

``with track_run(target, context) as run:`` finds or creates the stage's MLflow run (see
:mod:`mlinfra.tracking.mlflow.runs`), yields a :class:`RunTracker` for params, batched metrics,
tags and artifacts, and ends the run FINISHED, FAILED on an exception, or KILLED on Ctrl-C. The
caller's exception always propagates unchanged; a failure to end the run is added to it as a
note, never raised in its place.

The stage helpers (:func:`track_hpo_sweep`, :func:`track_hpo_trial`, :func:`track_cv_fold`,
:func:`track_refit`, :func:`track_final_training`, :func:`track_benchmark`,
:func:`track_conversion`) check the context's process type and set the parent link and lineage
tags of their stage.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlinfra.config import NamingConfig, Project
from mlinfra.core.imports import require
from mlinfra.core.redact import redact, redact_mapping
from mlinfra.errors import TrackingError, add_note
from mlinfra.fingerprints import Fingerprints
from mlinfra.naming import NamingContext
from mlinfra.naming.tags import TagsRegistry, sanitize_tag_value
from mlinfra.registry import RunRegistry
from mlinfra.tracking.mlflow.runs import OnChange, RunHandle, find_or_create_run

__all__ = [
    "FINGERPRINTS_ARTIFACT",
    "RunTracker",
    "TrackingTarget",
    "fingerprint_tags",
    "project_target",
    "track_benchmark",
    "track_conversion",
    "track_cv_fold",
    "track_final_training",
    "track_hpo_sweep",
    "track_hpo_trial",
    "track_refit",
    "track_run",
]

#: Where a run's fingerprint record is stored among its artifacts.
FINGERPRINTS_ARTIFACT = "mlinfra/fingerprints.json"

_MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call
#: MLflow's switch for the run and experiment links it prints when a run ends on a server.
SUPPRESS_URL_PRINTING = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


class _TrialLike(Protocol):
    number: int

    def set_user_attr(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go and how they are named: the arguments every tracker shares.

    ``root_dir`` (the project root) lets a tracked run's ``metadata.json`` be recorded in the
    registry's metadata index; without it only the file is written.
    """

    registry: RunRegistry
    tracking_uri: str
    experiment_id: str
    policy: NamingConfig
    tags: TagsRegistry
    project_name: str
    root_dir: Path | None = None

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`find_or_create_run`."""
        return {
            "registry": self.registry,
            "tracking_uri": self.tracking_uri,
            "experiment_id": self.experiment_id,
            "policy": self.policy,
            "tags": self.tags,
            "project_name": self.project_name,
        }


def project_target(
    project: Project, experiment_name: str, *, platform: str, registry: RunRegistry
) -> TrackingTarget:
    """The tracking target of a project's stage: MLflow set up for ``experiment_name`` (see
    :func:`~mlinfra.tracking.mlflow.setup.setup_mlflow`), the project's naming policy and tag
    keys, and its root (so output folders are indexed in ``registry``).

    Raises:
        ConfigError: as ``setup_mlflow`` (no experiment name, a database on a network mount).
        TrackingError: MLflow refused to create or find the experiment.
    """
    from mlinfra.naming.display_policy import load_naming_policy
    from mlinfra.naming.tags import load_tags_registry
    from mlinfra.tracking.mlflow.setup import setup_mlflow

    # MLflow prints two "View run/experiment" lines, after one more request, each time a run
    # ends on a tracking server: a sweep's trials would flood the terminal. Set the variable to
    # false to have them back.
    os.environ.setdefault(SUPPRESS_URL_PRINTING, "true")
    setup = setup_mlflow(
        experiment_name=experiment_name,
        root_dir=project.root,
        config_dir=project.config_dir,
        platform=platform,
        environ=project.environ,
    )
    return TrackingTarget(
        registry,
        setup.tracking_uri,
        setup.experiment_id,
        load_naming_policy(project.config_dir, environ=project.environ),
        load_tags_registry(project.config_dir, environ=project.environ),
        project.mlflow.naming.project_name,
        project.root,
    )


@dataclass
class RunTracker:
    """A started run: log to it inside a ``track_*`` block."""

    handle: RunHandle
    client: Any
    _metrics: list[Any] = field(default_factory=list)
    _tags: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.handle.run_id

    @property
    def run_name(self) -> str:
        return self.handle.run_name

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params not logged yet; a different value for a logged one is recorded as a
        ``param_delta.<name>`` tag (MLflow params cannot change)."""
        entities = require("mlflow.entities")
        params = redact_mapping(params)  # credentials never reach MLflow
        logged = self.client.get_run(self.run_id).data.params
        new = [entities.Param(k, str(v)) for k, v in params.items() if k not in logged]
        for key, value in params.items():
            if key in logged and logged[key] != str(value):
                self.client.set_tag(self.run_id, f"param_delta.{key}", str(value))
        if new:
            self.client.log_batch(self.run_id, params=new)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Queue one metric value; values are sent in batches (see :meth:`flush`)."""
        entities = require("mlflow.entities")
        self._metrics.append(
            entities.Metric(key, float(value), int(time.time() * 1000), int(step or 0))
        )
        if len(self._metrics) >= _MAX_BATCH:
            self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Queue several metric values at one step."""
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def set_tags(self, tags: Mapping[str, Any], *, defer: bool = False) -> None:
        """Set tags (values sanitised to MLflow's limits): now, or with ``defer=True`` in the
        same request as the queued metrics (see :meth:`flush`)."""
        clean = {k: sanitize_tag_value(redact(k, v)) for k, v in tags.items()}
        if defer:
            self._tags.update(clean)
            return
        entities = require("mlflow.entities")
        self.client.log_batch(self.run_id, tags=[entities.RunTag(k, v) for k, v in clean.items()])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file or a folder to the run's artifacts."""
        target = Path(path)
        if target.is_dir():
            self.client.log_artifacts(self.run_id, str(target), artifact_path)
        elif target.is_file():
            self.client.log_artifact(self.run_id, str(target), artifact_path)
        else:
            raise TrackingError(f"cannot log artifact {target}: no such file or folder")

    def flush(self) -> None:
        """Send queued metric values (at most 1000 per request) and deferred tags."""
        entities = require("mlflow.entities")
        tags = [entities.RunTag(k, v) for k, v in self._tags.items()]
        self._tags = {}
        while self._metrics or tags:
            batch, self._metrics = self._metrics[:_MAX_BATCH], self._metrics[_MAX_BATCH:]
            self.client.log_batch(self.run_id, metrics=batch, tags=tags)
            tags = []


def fingerprint_tags(
    tags: TagsRegistry, fingerprints: Fingerprints, context: NamingContext | None = None
) -> dict[str, str]:
    """The tags that record ``fingerprints`` on a run: ``fingerprint.<name>`` keys of
    ``tags.yaml`` (default ``code.fingerprint.<name>``) for config, data, code and env, and the
    ``paths.spec_fp``/``exec_fp``/``conv_fp`` keys (default ``code.<name>_fp``) unless the
    context already names its own."""
    hashes = fingerprints.hashes()
    out: dict[str, str] = {}
    for name in ("config", "data", "code", "env"):
        if name in hashes:
            out[tags.key_or("fingerprint", name, f"code.fingerprint.{name}")] = hashes[name]
    for name in ("spec", "exec", "conv"):
        own = getattr(context, f"{name}_fp", None) if context is not None else None
        if name in hashes and own is None:
            out[tags.key_or("paths", f"{name}_fp", f"code.{name}_fp")] = hashes[name]
    return out


def _shown_dir(folder: Path, root: Path | None) -> str:
    """The output folder as tagged: relative to the project root when inside it."""
    import os

    absolute = Path(os.path.abspath(folder))
    if root is not None:
        try:
            return absolute.relative_to(os.path.abspath(root)).as_posix()
        except ValueError:
            pass
    return absolute.as_posix()


def _record_fingerprints(tracker: RunTracker, fingerprints: Fingerprints) -> None:
    with tempfile.TemporaryDirectory(prefix="mlinfra-fp-") as tmp:
        folder, _, name = FINGERPRINTS_ARTIFACT.rpartition("/")
        path = Path(tmp) / name
        path.write_text(json.dumps(fingerprints.record(), indent=1, sort_keys=True) + "\n")
        tracker.log_artifact(path, folder)


def _write_metadata(
    target: TrackingTarget,
    output_dir: Path,
    updates: Mapping[str, Any],
) -> None:
    from mlinfra.metadata import update_metadata

    update_metadata(
        output_dir,
        updates,
        registry=target.registry if target.root_dir is not None else None,
        root_dir=target.root_dir,
    )


def _start_metadata(
    target: TrackingTarget,
    context: NamingContext,
    handle: RunHandle,
    output_dir: Path,
    fingerprints: Fingerprints | None,
) -> None:
    from mlinfra.core.timeutil import format_utc
    from mlinfra.metadata import context_identity

    updates: dict[str, Any] = {
        **context_identity(context),
        "mlflow": {
            "run_id": handle.run_id,
            "run_name": handle.run_name,
            "experiment_id": target.experiment_id,
            "tracking_uri": target.tracking_uri,
            "run_key": handle.run_key,
            "run_key_hash": handle.run_key_hash,
        },
        "status": {
            context.process_type: {"state": "running", "started_at": format_utc(), "ended_at": None}
        },
    }
    if fingerprints is not None:
        updates["fingerprints"] = fingerprints.hashes()
        updates["fingerprint_details"] = fingerprints.record()
    _write_metadata(target, output_dir, updates)


def _end_metadata(
    target: TrackingTarget, context: NamingContext, output_dir: Path, status: str
) -> None:
    from mlinfra.core.timeutil import format_utc

    state = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}[status]
    _write_metadata(
        target,
        output_dir,
        {"status": {context.process_type: {"state": state, "ended_at": format_utc()}}},
    )


@contextmanager
def track_run(
    target: TrackingTarget,
    context: NamingContext,
    *,
    params: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
    lineage: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    on_change: OnChange = "error",
    versioned: bool = True,
    fingerprints: Fingerprints | None = None,
    output_dir: str | Path | None = None,
    fingerprint_artifact: bool = True,
) -> Iterator[RunTracker]:
    """Find or create the run of ``context`` and track it for the block.

    Args:
        target: Where runs go (registry, tracking store, experiment, naming policy, tag keys).
        context: The run's identity.
        params: Params (compared with a run found again; see ``on_change``). Values of keys
            that name credentials are logged as ``***``, URL passwords hidden
            (:mod:`mlinfra.core.redact`).
        parent_run_id: Makes the run a child of this one.
        lineage: ``tags.yaml`` lineage names (``hpo_trial_run_id``, ...) to values.
        tags: More tags.
        on_change: What to do when a found run has other params.
        versioned: Give the run name a registry-reserved version suffix.
        fingerprints: Recorded as tags (see :func:`fingerprint_tags`) and as the artifact
            :data:`FINGERPRINTS_ARTIFACT`, which ``mlinfra fingerprint --why`` compares.
        fingerprint_artifact: ``False`` records the fingerprints as tags only (the runs of one
            sweep share their parent's record; ``--why`` reads it from there).
        output_dir: The run's output folder: its path is tagged (``paths.output_dir``), and its
            ``metadata.json`` records the run's identity, MLflow run, fingerprints and status
            (``running``, then ``finished``, ``failed`` or ``killed``), in the registry's
            metadata index too when the target has a ``root_dir``.

    Yields:
        The tracker; the run ends FINISHED, FAILED (exception) or KILLED (KeyboardInterrupt).
    """
    extra = redact_mapping(tags or {})
    params = redact_mapping(params) if params is not None else None  # credentials stay out
    for name, value in (lineage or {}).items():
        extra[target.tags.key("lineage", name)] = value
    if fingerprints is not None:
        extra.update(fingerprint_tags(target.tags, fingerprints, context))
    folder = Path(output_dir) if output_dir is not None else None
    if folder is not None:
        extra[target.tags.key_or("paths", "output_dir", "code.output_dir")] = _shown_dir(
            folder, target.root_dir
        )
    handle = find_or_create_run(
        context,
        params=params,
        parent_run_id=parent_run_id,
        versioned=versioned,
        on_change=on_change,
        extra_tags=extra,
        **target.kwargs(),
    )
    mlflow = require("mlflow", feature="MLflow tracking")
    client = mlflow.MlflowClient(tracking_uri=target.tracking_uri)
    if handle.how != "created":
        client.update_run(handle.run_id, status="RUNNING")  # resumed
        if extra:
            RunTracker(handle, client).set_tags(extra)
    tracker = RunTracker(handle, client)
    try:
        # a failure here (a full disk, say) ends the run FAILED too, never leaves it RUNNING
        if fingerprints is not None and fingerprint_artifact:
            _record_fingerprints(tracker, fingerprints)
        if folder is not None:
            _start_metadata(target, context, handle, folder, fingerprints)
        yield tracker
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            tracker.flush()
            client.set_terminated(handle.run_id, status=status)
            if folder is not None:
                _end_metadata(target, context, folder, status)
        except Exception as end_error:  # the caller's exception matters more
            add_note(exc, f"(marking run {handle.run_id} {status} also failed: {end_error})")
        raise
    tracker.flush()
    client.set_terminated(handle.run_id, status="FINISHED")
    if folder is not None:
        _end_metadata(target, context, folder, "FINISHED")


def _expect(context: NamingContext, process_type: str, what: str) -> None:
    if context.process_type != process_type:
        raise TrackingError(f"{what} needs a {process_type} context, got {context.process_type!r}")


@contextmanager
def track_hpo_sweep(
    target: TrackingTarget, context: NamingContext, **kwargs: Any
) -> Iterator[RunTracker]:
    """The parent run of a study (an ``hpo`` context without a trial)."""
    _expect(context, "hpo", "an HPO sweep")
    if context.is_trial:
        raise TrackingError("an HPO sweep's context must not name a trial (trial_number/trial_id)")
    with track_run(target, context, **kwargs) as run:
        yield run


@contextmanager
def track_hpo_trial(
    target: TrackingTarget,
    context: NamingContext,
    *,
    parent_run_id: str,
    trial: _TrialLike | None = None,
    **kwargs: Any,
) -> Iterator[RunTracker]:
    """A trial's child run of the sweep; with an Optuna ``trial``, links trial and run both ways
    (user attributes ``mlflow_run_id``/``mlflow_run_name`` on the trial)."""
    _expect(context, "hpo", "an HPO trial")
    if not context.is_trial or context.fold_idx is not None:
        raise TrackingError("an HPO trial's context needs a trial number and no fold")
    with track_run(target, context, parent_run_id=parent_run_id, **kwargs) as run:
        if trial is not None:
            trial.set_user_attr("mlflow_run_id", run.run_id)
            trial.set_user_attr("mlflow_run_name", run.run_name)
        yield run


@contextmanager
def track_cv_fold(
    target: TrackingTarget, context: NamingContext, *, parent_run_id: str, **kwargs: Any
) -> Iterator[RunTracker]:
    """A cross-validation fold: a child of its trial's run (so a grandchild of the sweep)."""
    _expect(context, "hpo", "a CV fold")
    if context.fold_idx is None:
        raise TrackingError("a CV fold's context needs fold_idx")
    with track_run(target, context, parent_run_id=parent_run_id, **kwargs) as run:
        yield run


@contextmanager
def track_refit(
    target: TrackingTarget,
    context: NamingContext,
    *,
    parent_run_id: str,
    trial_run_id: str,
    **kwargs: Any,
) -> Iterator[RunTracker]:
    """The refit of the best trial: a child of the sweep, linked to the trial's run."""
    _expect(context, "hpo_refit", "a refit")
    lineage = {"hpo_trial_run_id": trial_run_id, "hpo_sweep_run_id": parent_run_id}
    with track_run(target, context, parent_run_id=parent_run_id, lineage=lineage, **kwargs) as run:
        yield run


def _stage(process_type: str, what: str) -> Callable[..., AbstractContextManager[RunTracker]]:
    @contextmanager
    def tracker(
        target: TrackingTarget,
        context: NamingContext,
        *,
        lineage: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Iterator[RunTracker]:
        _expect(context, process_type, what)
        with track_run(target, context, lineage=lineage, **kwargs) as run:
            yield run

    tracker.__doc__ = (
        f"The run of {what}; ``lineage`` links it to where it came from (``tags.yaml`` "
        "lineage names such as ``parent_training_run_id`` or ``hpo_refit_run_id``)."
    )
    return tracker


track_final_training = _stage("final_training", "a final training")
track_benchmark = _stage("benchmarking", "a benchmark")
track_conversion = _stage("conversion", "a conversion")
