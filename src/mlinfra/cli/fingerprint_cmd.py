"""``mlinfra fingerprint``: show fingerprints, and say why two runs or output folders differ.

* ``mlinfra fingerprint PATH``: the content fingerprint of a data file or folder.
* ``mlinfra fingerprint --experiment E [--stage S] [-o KEY=VALUE ...]``: every fingerprint of an
  experiment stage (config, data, code, environment, spec and exec).
* ``mlinfra fingerprint --why A B``: which fingerprints of two runs differ and, for the config,
  which keys. ``A`` and ``B`` are output folders (their ``metadata.json``), MLflow run ids or run
  names.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from mlinfra.cli.common import handle_errors, pick_experiment, project_options
from mlinfra.config import Project
from mlinfra.errors import ConfigError, MetadataError, MlinfraError, TrackingError
from mlinfra.fingerprints import (
    FINGERPRINT_NAMES,
    Fingerprints,
    compare_records,
    data_fingerprint,
    describe,
    fingerprint_experiment,
)
from mlinfra.fingerprints.bundle import short, stat_cache_dir
from mlinfra.fingerprints.data import DataFingerprint, Progress
from mlinfra.naming.tags import TagsRegistry

__all__ = ["fingerprint"]

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_PROGRESS_MIN_BYTES = 64 << 20  # show a progress bar when there is more than this to read
_ARTIFACT = "mlinfra/fingerprints.json"  # FINGERPRINTS_ARTIFACT of the trackers


# ---- progress --------------------------------------------------------------------------------


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar on standard error for long reads (only on a terminal)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("fingerprinting data", total=None)

    def update(done: int, total: int) -> None:
        if total >= _PROGRESS_MIN_BYTES:
            bar.update(task, completed=done, total=total)

    with bar:
        yield update


# ---- showing fingerprints --------------------------------------------------------------------


def _data_lines(found: DataFingerprint) -> list[str]:
    what = "file" if found.kind == "file" else f"folder of {found.files} file(s)"
    return [
        f"data  {found.hash}",
        f"      {found.path}: {what}, {found.bytes} bytes ({found.bytes_read} read, the rest "
        "from the stat cache)",
    ]


def _experiment_lines(fps: Fingerprints) -> list[str]:
    hashes = fps.hashes()
    code = fps.code
    env = fps.environment
    where = f"commit {code.commit[:12]}" if code.commit else "no commit"
    if code.kind == "files":
        where = "source files (no git)"
    dirty = f", {len(code.changed)} uncommitted change(s)" if code.dirty and code.changed else ""
    notes = {
        "config": f"{len(fps.config.values)} key(s); left out as volatile: "
        + (", ".join(fps.config.volatile) or "none"),
        "data": "; ".join(f"{d.path} ({d.files} file(s), {d.bytes} bytes)" for d in fps.data)
        or "no data path",
        "code": f"{code.kind}: {where}{dirty}",
        "env": f"Python {env.python}, {env.platform}, "
        + (", ".join(f"{k} {v}" for k, v in env.packages.items()) or "no key packages")
        + (f", CUDA {env.cuda}" if env.cuda else "")
        + (f", precision {env.precision}" if env.precision else ""),
        "spec": "model, data and train configs with the data's content",
        "exec": "code, environment and env config",
    }
    lines = []
    for name in FINGERPRINT_NAMES:
        if name in hashes:
            lines.append(f"{name:<6} {hashes[name]}")
            lines.append(f"       {notes.get(name, '')}")
    if "data" not in hashes:
        lines.append(f"{'data':<6} -  ({notes['data']})")
    return lines


# ---- --why: loading what was recorded --------------------------------------------------------


def _record_from_metadata(path: Path) -> tuple[str, dict[str, Any]]:
    from mlinfra.metadata import read_metadata

    meta = read_metadata(path)
    where = path / "metadata.json" if path.is_dir() else path
    if not meta:
        raise MetadataError(
            "no metadata.json here; pass an output folder written by mlinfra, a run id or a "
            "run name",
            path=where,
        )
    details = meta.get("fingerprint_details")
    if isinstance(details, Mapping) and isinstance(details.get("hashes"), Mapping):
        return f"output folder {path}", dict(details)
    hashes = meta.get("fingerprints")
    if isinstance(hashes, Mapping) and hashes:
        return f"output folder {path} (hashes only)", {"hashes": dict(hashes)}
    raise MetadataError(
        "no fingerprints are recorded in it (it was written without them)", path=where
    )


def _tag_registry(project: Project) -> TagsRegistry:
    try:
        return TagsRegistry.from_config(project.tags)
    except ConfigError:
        return TagsRegistry({})  # no tags.yaml: mlinfra's built-in keys


def _tag_record(tags: Mapping[str, str], keys: TagsRegistry) -> dict[str, Any]:
    hashes: dict[str, str] = {}
    for name in ("config", "data", "code", "env"):
        value = tags.get(keys.key_or("fingerprint", name, f"code.fingerprint.{name}"))
        if value:
            hashes[name] = value
    for name in ("spec", "exec", "conv"):
        value = tags.get(keys.key_or("paths", f"{name}_fp", f"code.{name}_fp"))
        if value:
            hashes[name] = value
    return {"hashes": hashes}


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a download progress bar on standard error; not for one small file."""
    import os

    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    previous = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _find_run(client: Any, ref: str) -> Any:
    from mlflow.exceptions import MlflowException

    if _RUN_ID.fullmatch(ref):
        try:
            return client.get_run(ref)
        except MlflowException:
            pass  # not a run id after all: try it as a name
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        raise TrackingError(f"no run {ref!r}: the tracking store has no experiments")
    quoted = ref.replace("'", "\\'")
    found = client.search_runs(
        experiments, filter_string=f"attributes.run_name = '{quoted}'", max_results=10
    )
    if not found:
        raise TrackingError(
            f"no run named {ref!r} and no output folder of that name; pass an output folder, a "
            "run id or a run name (`mlinfra runs list` shows them)"
        )
    if len(found) > 1:
        ids = ", ".join(r.info.run_id for r in found)
        raise TrackingError(f"several runs are named {ref!r} ({ids}); pass a run id instead")
    return found[0]


def _artifact_record(client: Any, run_id: str) -> dict[str, Any] | None:
    """The run's ``mlinfra/fingerprints.json``, or ``None`` when it has none (or it is
    unreadable: the run's tags still tell)."""
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="mlinfra-why-") as tmp:
        try:
            with _no_progress_bar():
                local = client.download_artifacts(run_id, _ARTIFACT, tmp)
            record = json.loads(Path(local).read_text(encoding="utf-8"))
        except (MlflowException, OSError, ValueError):
            return None
    if isinstance(record, dict) and isinstance(record.get("hashes"), Mapping):
        return record
    return None


def _record_from_run(project: Project, ref: str) -> tuple[str, dict[str, Any]]:
    from mlinfra.cli.runs_cmd import missing_store, mlflow_client, resolve_tracking

    target = resolve_tracking(project)
    absent = missing_store(target.uri)
    if absent is not None:
        raise TrackingError(
            f"{ref!r} is not an output folder, and there is no MLflow store yet ({absent} does "
            "not exist) to look it up as a run"
        )
    with mlflow_client(target.uri) as client:
        run = _find_run(client, ref)
        label = f"run {run.info.run_name} ({run.info.run_id})"
        keys = _tag_registry(project)
        output_dir = run.data.tags.get(keys.key_or("paths", "output_dir", "code.output_dir"))
        if output_dir:
            folder = Path(output_dir)
            folder = folder if folder.is_absolute() else project.root / folder
            if (folder / "metadata.json").is_file():
                try:
                    _, record = _record_from_metadata(folder)
                    return label, record
                except MetadataError:
                    pass  # fall through to the run's own record
        tagged = _tag_record(run.data.tags, keys)
        own = _artifact_record(client, run.info.run_id)
        if own is not None:
            return label, own
        # the runs of a sweep share their parent's record: use it when the hashes agree
        parent_id = run.data.tags.get("mlflow.parentRunId")
        while parent_id and tagged["hashes"]:
            shared = _artifact_record(client, parent_id)
            if shared is not None and shared.get("hashes") == tagged["hashes"]:
                return f"{label} (its sweep's record)", shared
            parent_id = client.get_run(parent_id).data.tags.get("mlflow.parentRunId")
    record = tagged
    if not record["hashes"]:
        raise TrackingError(
            f"{label} has no fingerprints recorded (it was not tracked with fingerprints)"
        )
    return f"{label} (hashes only)", record


def _load(project: Project, ref: str) -> tuple[str, dict[str, Any]]:
    path = Path(ref)
    if path.exists():
        return _record_from_metadata(path)
    return _record_from_run(project, ref)


def _why(project: Project, left: str, right: str, as_json: bool, exit_code: bool) -> None:
    label_a, record_a = _load(project, left)
    label_b, record_b = _load(project, right)
    differences = compare_records(record_a, record_b)
    verdict = describe(differences)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "a": label_a,
                    "b": label_b,
                    "verdict": verdict,
                    "fingerprints": [
                        {
                            "name": d.name,
                            "status": d.status,
                            "a": d.left,
                            "b": d.right,
                            "details": list(d.details),
                        }
                        for d in differences
                    ],
                },
                indent=2,
            )
        )
    else:
        click.echo(f"A: {label_a}")
        click.echo(f"B: {label_b}")
        for d in differences:
            colour = {"same": "green", "differs": "red"}.get(d.status, "yellow")
            arrow = short(d.left) if d.status == "same" else f"{short(d.left)} -> {short(d.right)}"
            click.echo(f"  {d.name:<6} " + click.style(f"{d.status:<8}", fg=colour) + f" {arrow}")
            for line in d.details:
                click.echo(f"           {line}")
        click.echo(f"A and B {verdict}.")
    if exit_code and verdict != "identical":
        raise SystemExit(1)


# ---- the command -----------------------------------------------------------------------------


@click.command("fingerprint")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--experiment", "-e", help="Fingerprint this experiment (a file in config/experiment/)."
)
@click.option("--stage", "-s", help="Apply this stage of the experiment file.")
@click.option(
    "--override",
    "-o",
    "overrides",
    multiple=True,
    metavar="OVERRIDE",
    help="A config override (KEY=VALUE, +KEY=VALUE, ~KEY, DOMAIN=NAME); repeatable.",
)
@click.option(
    "--why",
    nargs=2,
    metavar="A B",
    help="Say which fingerprints of A and B differ (output folders, run ids or run names).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--exit-code", is_flag=True, help="With --why: exit with status 1 when A and B differ."
)
@click.option("--no-cache", is_flag=True, help="Read every data file (ignore the stat cache).")
@project_options
@handle_errors
def fingerprint(
    path: Path | None,
    experiment: str | None,
    stage: str | None,
    overrides: tuple[str, ...],
    why: tuple[str, str] | None,
    fmt: str,
    exit_code: bool,
    no_cache: bool,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Show fingerprints: of a data PATH, of an experiment stage, or why two runs differ.

    \b
    mlinfra fingerprint data/             content of a file or folder
    mlinfra fingerprint -e NAME -s STAGE  config, data, code, env, spec and exec
    mlinfra fingerprint --why A B         which fingerprints differ, and which config keys
    """
    as_json = fmt == "json"
    if why:
        if path is not None or experiment or stage or overrides:
            raise ConfigError("--why takes its two runs alone; drop PATH, --experiment and -o")
        proj = Project.discover(project=project, config_dir=config_dir)
        _why(proj, why[0], why[1], as_json, exit_code)
        return
    if exit_code:
        raise ConfigError("--exit-code goes with --why")
    if path is not None:
        if experiment or stage or overrides:
            raise ConfigError("give either a PATH or --experiment, not both")
        cache: Path | None = None
        if not no_cache:
            try:
                here = Project.discover(project=project, config_dir=config_dir)
                cache = stat_cache_dir(here.config_dir, here.root)
            except MlinfraError:
                cache = None  # outside a project: no stat cache
        total = path.stat().st_size if path.is_file() else _PROGRESS_MIN_BYTES
        with _progress(total >= _PROGRESS_MIN_BYTES) as progress:
            found = data_fingerprint(path, cache_dir=cache, progress=progress)
        if as_json:
            click.echo(json.dumps(found.summary(), indent=2))
        else:
            click.echo("\n".join(_data_lines(found)))
        return
    proj = Project.discover(project=project, config_dir=config_dir)
    name = pick_experiment(proj.config_dir, experiment)
    with _progress(True) as progress:
        fps = fingerprint_experiment(
            proj.config_dir,
            name,
            stage=stage,
            overrides=overrides,
            root_dir=proj.root,
            use_cache=not no_cache,
            progress=progress,
            environ=proj.environ,
        )
    if as_json:
        click.echo(json.dumps(fps.record(), indent=2, sort_keys=True))
    else:
        click.echo(f"{name}" + (f" / {stage}" if stage else ""))
        click.echo("\n".join(_experiment_lines(fps)))
