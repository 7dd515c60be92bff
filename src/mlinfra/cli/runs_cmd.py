"""``mlinfra runs``: list the project's MLflow runs, and find the run of a naming context.

Neither command creates anything (no MLflow database, experiment or registry file). The tracking
URI is resolved as ``setup_mlflow`` resolves it: ``$MLFLOW_TRACKING_URI`` > ``tracking_uri`` in
``mlflow.yaml`` > the platform default (``<root>/mlruns/mlflow.db``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mlinfra.cli.common import handle_errors, project_options
from mlinfra.config import Project
from mlinfra.core.platforms import PLATFORMS
from mlinfra.core.redact import hide_password
from mlinfra.errors import ConfigError, TrackingError
from mlinfra.tracking.uris import file_store_dir, probe_http, sqlite_file

__all__ = ["TrackingTarget", "missing_store", "mlflow_client", "resolve_tracking", "runs"]

_ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"


# ---- helpers shared with `mlinfra doctor` ------------------------------------------------------


@dataclass(frozen=True)
class TrackingTarget:
    """The tracking store a project's runs go to, resolved without touching it.

    Attributes:
        uri: The tracking URI, as ``setup_mlflow`` would use it.
        source: ``environment``, ``mlflow.yaml`` or ``default``.
        platform: The platform used for the default (``local``, ``colab``, ...).
    """

    uri: str
    source: str
    platform: str


def resolve_tracking(project: Project, platform: str | None = None) -> TrackingTarget:
    """The project's tracking URI and where it came from; creates nothing.

    Raises:
        ConfigError: an unknown ``$MLINFRA_PLATFORM``, or AzureML without a tracking URI.
    """
    from mlinfra.core.platforms import detect_platform
    from mlinfra.tracking.mlflow.setup import resolve_tracking_uri

    try:
        where = platform or detect_platform(project.environ)
    except ValueError as exc:
        raise ConfigError(str(exc), key="platform") from None
    uri, source = resolve_tracking_uri(
        None,
        root=project.root,
        config_dir=project.config_dir,
        platform=where,
        environ=project.environ,
    )
    return TrackingTarget(uri, source, where)


def missing_store(uri: str) -> Path | None:
    """The local database file or file-store folder of ``uri`` when it does not exist yet."""
    local = sqlite_file(uri) or file_store_dir(uri)
    if local is not None and not local.exists():
        return local
    return None


# ---- MLflow access -----------------------------------------------------------------------------


@contextmanager
def mlflow_client(uri: str) -> Iterator[Any]:
    """An ``MlflowClient`` for ``uri``; MLflow's errors become :class:`TrackingError`.

    A file store is read as ``setup_mlflow`` allows it: ``MLFLOW_ALLOW_FILE_STORE=true``, here
    only while the command runs.
    """
    from mlinfra.core.imports import require

    if uri.startswith(("http://", "https://")):
        ok, detail = probe_http(uri)
        if not ok:
            raise TrackingError(
                f"the tracking server does not answer: {detail}; `mlinfra doctor` checks the setup"
            )
    mlflow = require("mlflow", feature="MLflow tracking")
    exceptions = require("mlflow.exceptions")
    previous = os.environ.get(_ALLOW_FILE_STORE)
    if file_store_dir(uri) is not None:
        os.environ[_ALLOW_FILE_STORE] = "true"
    try:
        yield mlflow.MlflowClient(tracking_uri=uri)
    except exceptions.MlflowException as exc:
        raise TrackingError(
            f"MLflow ({hide_password(uri)}) answered with an error: {exc.message}"
        ) from exc
    finally:
        if previous is None:
            os.environ.pop(_ALLOW_FILE_STORE, None)
        else:
            os.environ[_ALLOW_FILE_STORE] = previous


def _experiment_name(project: Project, given: str | None) -> str:
    """``--experiment`` > ``$MLFLOW_EXPERIMENT_NAME`` > ``experiment_name`` in ``mlflow.yaml``."""
    name = given or project.environ.get("MLFLOW_EXPERIMENT_NAME")
    if not name and (project.config_dir / "mlflow.yaml").is_file():
        name = project.mlflow.experiment_name
    if not name:
        raise ConfigError(
            "no MLflow experiment: pass --experiment, set MLFLOW_EXPERIMENT_NAME, or set "
            "experiment_name in mlflow.yaml"
        )
    return name


def _experiment(client: Any, name: str) -> Any | None:
    """The active experiment ``name``, or ``None``."""
    found = client.get_experiment_by_name(name)
    if found is None or found.lifecycle_stage == "deleted":
        return None
    return found


def _no_experiment(client: Any, name: str, uri: str) -> TrackingError:
    names = sorted(e.name for e in client.search_experiments())
    return TrackingError(
        f"no experiment {name!r} at {hide_password(uri)}; experiments there: "
        f"{', '.join(names) or 'none'} (choose one with --experiment)"
    )


def _tag_keys(project: Project) -> tuple[str, str]:
    """The MLflow tag keys of the stage and of the run key hash (``tags.yaml``)."""
    from mlinfra.naming.tags import load_tags_registry

    tags = load_tags_registry(project.config_dir, environ=project.environ)
    return tags.key("process", "stage"), tags.key("grouping", "run_key_hash")


def _quoted(value: str, option: str) -> str:
    if "'" in value or "`" in value or "\\" in value:
        raise click.BadParameter(
            f"must not contain quotes or backslashes: {value!r}", param_hint=option
        )
    return f"'{value}'"


def _metric_text(value: Any) -> str:
    return "-" if value is None else f"{value:.6g}"


# ---- commands ----------------------------------------------------------------------------------


@click.group()
def runs() -> None:
    """List and find MLflow runs of the project."""


@runs.command("list")
@click.option(
    "--experiment",
    "-e",
    help="The MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME, else experiment_name in "
    "mlflow.yaml).",
)
@click.option(
    "--stage",
    "-s",
    help="Only runs whose stage tag (code.stage: the process type, e.g. hpo) has this value.",
)
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show at most this many runs.",
)
@click.option("--metric", "-m", help="Add a column with the latest value of this metric.")
@project_options
@handle_errors
def list_(
    experiment: str | None,
    stage: str | None,
    limit: int,
    metric: str | None,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """List the experiment's runs, newest first: name, status, stage, key hash (short).

    Nothing is created: without an MLflow database yet, it says so and exits 0.
    """
    proj = Project.discover(project=project, config_dir=config_dir)
    target = resolve_tracking(proj)
    missing = missing_store(target.uri)
    if missing is not None:
        click.echo(f"no runs yet (no MLflow database at {missing})")
        return
    name = _experiment_name(proj, experiment)
    stage_tag, key_tag = _tag_keys(proj)
    filter_string = f"tags.`{stage_tag}` = {_quoted(stage, '--stage')}" if stage else ""
    with mlflow_client(target.uri) as client:
        exp = _experiment(client, name)
        if exp is None:
            raise _no_experiment(client, name, target.uri)
        found = client.search_runs(
            [exp.experiment_id],
            filter_string=filter_string,
            max_results=limit,
            order_by=["attributes.start_time DESC"],
        )

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("run name", "status", "stage", "key"):
        table.add_column(column, no_wrap=True)
    if metric:
        table.add_column(metric, justify="right", no_wrap=True)
    for run in found:
        tags = run.data.tags
        cells = [
            run.info.run_name or "-",
            run.info.status,
            tags.get(stage_tag) or "-",
            (tags.get(key_tag) or "-")[:12],
        ]
        if metric:
            cells.append(_metric_text(run.data.metrics.get(metric)))
        table.add_row(*(Text(str(cell)) for cell in cells))
    # piped or captured output gets the whole table, not one cut to 80 columns
    console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 200)
    if found:
        console.print(table)
    more = " (--limit reached; there may be more)" if len(found) == limit else ""
    where = f" with {stage_tag}={stage}" if stage else ""
    click.echo(
        f"{len(found)} run(s){where} in experiment {name!r} at {hide_password(target.uri)}{more}",
        err=True,
    )


def _split_process(items: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    process: str | None = None
    rest: list[str] = []
    for item in items:
        key, eq, value = item.partition("=")
        if eq and key.strip() in ("process", "process_type"):
            if process is not None:
                raise click.BadParameter("process is given twice", param_hint="FIELDS")
            process = value.strip()
        else:
            rest.append(item)
    if not process:
        raise click.BadParameter(
            "give the process as process=<process type or stage name>, e.g. process=hpo",
            param_hint="FIELDS",
        )
    return process, tuple(rest)


@runs.command("find")
@click.argument("fields_", metavar="FIELDS...", nargs=-1, required=True)
@click.option(
    "--platform",
    type=click.Choice(PLATFORMS),
    help="The context's execution platform and storage environment (default: detected).",
)
@click.option(
    "--experiment",
    "-e",
    help="The experiment the tag search looks in (default: $MLFLOW_EXPERIMENT_NAME, else "
    "experiment_name in mlflow.yaml).",
)
@project_options
@handle_errors
def find(
    fields_: tuple[str, ...],
    platform: str | None,
    experiment: str | None,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Find the MLflow run of a naming context: through the registry, else by its tag.

    FIELDS are KEY=VALUE: process=<process type or stage name> and the naming-context fields
    of `mlinfra name` (model, study_key_hash, trial_key_hash, trial_number, ...). Exits 1 when
    no run is found. Nothing is written, not even a registry repair.

    \b
    Example:
      mlinfra runs find process=hpo model=distilbert study_key_hash=350a79aa...
    """
    from mlinfra.cli.name_cmd import _parse_fields, _process_and_stage, build_context
    from mlinfra.naming.keys import build_mlflow_run_key, build_mlflow_run_key_hash

    process, rest = _split_process(fields_)
    values = _parse_fields(rest)
    try:
        kind, stage = _process_and_stage(process)
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint="FIELDS") from None
    proj = Project.discover(project=project, config_dir=config_dir)
    context = build_context(
        kind, stage, values, platform, proj.environ, process_text=f"process={process}"
    )
    run_key = build_mlflow_run_key(context)
    key_hash = build_mlflow_run_key_hash(run_key)
    target = resolve_tracking(proj)
    _, key_tag = _tag_keys(proj)
    misses: list[str] = []

    entry = _registry_entry(proj, key_hash, target.uri, misses)
    missing = missing_store(target.uri)
    if missing is not None:
        misses.append(f"there is no MLflow database at {missing}")
        raise _not_found(run_key, key_hash, misses)
    run, how = None, "registry"
    with mlflow_client(target.uri) as client:
        if entry is not None:
            run = _live_run(client, entry.run_id, key_hash, key_tag)
            if run is None:
                misses.append(
                    f"the registry's run {entry.run_id} is deleted or no longer carries the tag"
                )
        if run is None:
            name = _experiment_name(proj, experiment)
            exp = _experiment(client, name)
            if exp is None:
                misses.append(f"there is no experiment {name!r} at {hide_password(target.uri)}")
            else:
                hits = client.search_runs(
                    [exp.experiment_id],
                    filter_string=f"tags.`{key_tag}` = '{key_hash}'",
                    max_results=1,
                    order_by=["attributes.start_time DESC"],
                )
                if hits:
                    run, how = hits[0], "tag search (the registry has no live entry for it)"
                else:
                    misses.append(
                        f"no run of experiment {name!r} at {hide_password(target.uri)} has "
                        "the tag "
                        f"{key_tag}={key_hash}"
                    )
        if run is not None:
            exp_name = client.get_experiment(run.info.experiment_id).name
    if run is None:
        raise _not_found(run_key, key_hash, misses)
    click.echo(f"run id:     {run.info.run_id}")
    click.echo(f"run name:   {run.info.run_name}")
    click.echo(f"status:     {run.info.status}")
    click.echo(f"found by:   {how}")
    click.echo(f"experiment: {exp_name} ({run.info.experiment_id})")
    click.echo(f"run key:    {run_key}")
    click.echo(f"key hash:   {key_hash}")


def _registry_entry(project: Project, key_hash: str, uri: str, misses: list[str]) -> Any | None:
    """The registry's entry for ``key_hash`` under ``uri``; a SQLite registry not yet created is
    not created."""
    from mlinfra.registry import SqlRegistry, resolve_registry_url

    url = resolve_registry_url(project.root, project.config_dir, environ=project.environ)
    path = sqlite_file(url)
    if path is not None and not path.exists():
        misses.append(f"there is no registry yet ({path})")
        return None
    with SqlRegistry(url) as registry:
        entry = registry.find_run(key_hash, uri)
        if entry is None:
            misses.append(f"the registry ({registry.location}) has no entry for it")
        return entry


def _live_run(client: Any, run_id: str, key_hash: str, tag: str) -> Any | None:
    from mlinfra.core.imports import require

    exceptions = require("mlflow.exceptions")
    try:
        run = client.get_run(run_id)
    except exceptions.MlflowException:
        return None
    if run.info.lifecycle_stage == "deleted" or run.data.tags.get(tag) != key_hash:
        return None
    return run


def _not_found(run_key: str, key_hash: str, misses: list[str]) -> TrackingError:
    return TrackingError(
        f"no MLflow run found for run key {run_key} (hash {key_hash[:12]}): " + "; ".join(misses)
    )
