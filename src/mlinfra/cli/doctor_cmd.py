"""``mlinfra doctor``: check the platform, project, tracking and registry setup.

Each check prints one line, ``✓`` or ``✗`` with what was found; a ``✗`` is followed by how to fix
it. Nothing is created or written: a missing MLflow database or registry is fine as long as its
folder can be created. MLflow itself is not imported (except by ``--study``).

When shared services are configured (``$MLINFRA_DATABASE_URL`` or ``shared.database`` in
``mlflow.yaml``), the shared database must answer and the tracking URI must be a server every
worker reaches. ``--study -e E -s S [OVERRIDES]`` also compares a sweep's study with MLflow:
finished trials without a live MLflow run are reported as a gap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mlinfra.cli.common import handle_errors, project_options
from mlinfra.cli.runs_cmd import TrackingTarget
from mlinfra.config import Project
from mlinfra.core.redact import hide_password
from mlinfra.errors import ConfigError
from mlinfra.tracking.uris import file_store_dir, probe_http, sqlite_file

__all__ = ["doctor"]

_TIMEOUT = 3.0
_SQLITE_HEADER = b"SQLite format 3\x00"
_POSTGRES = ("postgresql", "postgres")


@dataclass(frozen=True)
class Check:
    """One line of the checklist.

    Attributes:
        name: What was checked.
        ok: Whether it is fine.
        detail: What was found.
        fix: How to fix it (for a failed check).
    """

    name: str
    ok: bool
    detail: str
    fix: str | None = None


def _passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def _failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0].lower() if ":" in url else ""


def _creatable(path: Path) -> tuple[bool, str]:
    """Whether ``path`` (a file that does not exist) could be created: its nearest existing
    ancestor folder is writable."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return False, f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return False, f"{folder} is not writable"
    return True, f"{folder} is writable"


def _sqlite_state(path: Path, what: str) -> tuple[bool, str]:
    """``(ok, detail)`` for a SQLite file: an existing database, or one that can be created."""
    if path.is_dir():
        return False, f"{path} is a folder, not a database file"
    if path.exists():
        try:
            with path.open("rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            return False, f"{path} cannot be read ({exc.strerror})"
        if header and header != _SQLITE_HEADER:
            return False, f"{path} is not a SQLite database"
        return True, f"{what} exists ({path.stat().st_size} bytes)"
    ok, why = _creatable(path)
    if ok:
        return True, f"no {what} yet (created on first use; {why})"
    return False, f"{path} does not exist and cannot be created: {why}"


# ---- the checks --------------------------------------------------------------------------------


def _platform(environ: Mapping[str, str]) -> tuple[Check, str]:
    from mlinfra.core.platforms import PLATFORM_ENV, PLATFORMS, detect_platform

    try:
        where = detect_platform(environ)
    except ValueError as exc:
        fix = f"set {PLATFORM_ENV} to one of {', '.join(PLATFORMS)}, or unset it"
        return _failed("platform", str(exc), fix), "local"
    how = f"from ${PLATFORM_ENV}" if environ.get(PLATFORM_ENV, "").strip() else "detected"
    return _passed("platform", f"{where} ({how})"), where


def _project(project: Path | None, config_dir: Path | None) -> tuple[Check, Project | None]:
    try:
        proj = Project.discover(project=project, config_dir=config_dir)
    except ConfigError as exc:
        fix = "run inside a project, pass --project or --config-dir, or set MLINFRA_PROJECT_ROOT"
        return _failed("project", exc.reason, fix), None
    return _passed("project", f"{proj.root} (config folder {proj.config_dir})"), proj


def _config(proj: Project | None) -> Check:
    from mlinfra.config import list_experiments, validate_config_dir

    if proj is None:
        return _failed("config", "not checked: no project", "fix the project first")
    problems = validate_config_dir(proj.config_dir, environ=proj.environ)
    if problems:
        return _failed(
            "config",
            f"{len(problems)} problem(s); the first: {problems[0]}",
            "`mlinfra config validate` lists every problem with its file and line",
        )
    files = len([*proj.config_dir.rglob("*.yaml"), *proj.config_dir.rglob("*.yml")])
    experiments = len(list_experiments(proj.config_dir))
    return _passed("config", f"valid ({files} files, {experiments} experiment(s))")


_URI_SOURCES = {
    "environment": "$MLFLOW_TRACKING_URI",
    "mlflow.yaml": "tracking_uri in mlflow.yaml",
    "shared": "shared.tracking_uri in mlflow.yaml",
    "default": "the platform default",
}


def _tracking_uri(
    proj: Project | None, platform: str, environ: Mapping[str, str]
) -> tuple[Check, TrackingTarget | None]:
    from mlinfra.tracking.mlflow.setup import resolve_tracking_uri

    try:
        uri, source = resolve_tracking_uri(
            None,
            root=proj.root if proj else None,
            config_dir=proj.config_dir if proj else None,
            platform=platform,
            environ=environ,
        )
    except ConfigError as exc:
        fix = "set MLFLOW_TRACKING_URI, or tracking_uri in mlflow.yaml"
        return _failed("tracking URI", exc.reason, fix), None
    target = TrackingTarget(uri, source, platform)
    return _passed(
        "tracking URI", f"{hide_password(uri)} (from {_URI_SOURCES.get(source, source)})"
    ), target


def _tracking_store(target: TrackingTarget | None) -> list[Check]:
    """Whether the tracking store answers, and whether its database sits on local disk."""
    from mlinfra.core.filesystems import network_filesystem_reason

    name = "tracking store"
    if target is None:
        return [_failed(name, "not checked: no tracking URI", "fix the tracking URI first")]
    uri = target.uri
    fix_uri = "point MLFLOW_TRACKING_URI (or tracking_uri in mlflow.yaml) at a writable place"
    db = sqlite_file(uri)
    if db is not None:
        ok, detail = _sqlite_state(db, "MLflow database")
        store = _passed(name, detail) if ok else _failed(name, detail, fix_uri)
        reason = network_filesystem_reason(db)
        if reason is None:
            disk = _passed("tracking disk", "the database is on local disk")
        else:
            disk = _failed(
                "tracking disk",
                reason,
                "keep the MLflow database on local disk (the default <project>/mlruns/"
                "mlflow.db, or MLFLOW_TRACKING_URI=sqlite:////local/path/mlflow.db) and back it "
                "up to the mount, or use a tracking server (http://...)",
            )
        return [store, disk]
    scheme = _scheme(uri)
    if scheme in ("http", "https"):
        ok, detail = probe_http(uri, _TIMEOUT)
        if ok:
            return [_passed(name, f"{hide_password(uri)} answers ({detail})")]
        return [
            _failed(
                name,
                detail,
                "start the server (mlflow server --backend-store-uri sqlite:///mlflow.db "
                "--port 5000), check the URL, or unset MLFLOW_TRACKING_URI to use the local "
                "default; a server that refuses access needs MLFLOW_TRACKING_TOKEN or "
                "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD",
            )
        ]
    if scheme in _POSTGRES:
        return _postgres("tracking", uri, tracking=True)
    folder = file_store_dir(uri)
    if folder is not None:
        note = "MLflow's file store, in maintenance mode in MLflow 3 (SQLite is recommended)"
        if folder.is_dir():
            return [_passed(name, f"{folder} exists; {note}")]
        ok, why = _creatable(folder / "x")
        if ok:
            return [_passed(name, f"{folder} will be created ({why}); {note}")]
        return [_failed(name, f"{folder} cannot be created: {why}", fix_uri)]
    return [_passed(name, f"not checked here ({scheme} store: checked when a run starts)")]


def _registry_source(proj: Project | None, environ: Mapping[str, str]) -> str:
    from mlinfra.registry.location import DATABASE_ENV, REGISTRY_ENV

    if environ.get(REGISTRY_ENV):
        return f"${REGISTRY_ENV}"
    if environ.get(DATABASE_ENV):
        return f"${DATABASE_ENV}"
    if proj is not None and (proj.config_dir / "mlflow.yaml").is_file():
        try:
            if proj.mlflow.registry.url:
                return "registry.url in mlflow.yaml"
            if proj.mlflow.shared.database:
                return "shared.database in mlflow.yaml"
        except ConfigError:
            pass
    return "the default, outputs.cache of paths.yaml"


def _registry(proj: Project | None, environ: Mapping[str, str]) -> list[Check]:
    from mlinfra.core.filesystems import network_filesystem_reason
    from mlinfra.errors import UnsafeStorageError
    from mlinfra.registry.location import REGISTRY_ENV, resolve_registry_url

    name = "registry"
    fix_url = (
        f"set {REGISTRY_ENV} (a local sqlite:/// file or a postgresql:// URL), or registry.url "
        "in mlflow.yaml"
    )
    unsafe: str | None = None
    try:
        url = resolve_registry_url(
            proj.root if proj else None, proj.config_dir if proj else None, environ=environ
        )
    except UnsafeStorageError as exc:
        url = f"sqlite:///{exc.file}"
        unsafe = network_filesystem_reason(exc.file or "") or exc.reason
    except ConfigError as exc:
        return [_failed(name, exc.reason, fix_url)]
    source = _registry_source(proj, environ)
    scheme = _scheme(url)
    path = sqlite_file(url)
    if path is not None:
        ok, detail = _sqlite_state(path, "database")
        found = f"sqlite {path} (from {source}): {detail}"
        checks = [_passed(name, found) if ok else _failed(name, found, fix_url)]
        if unsafe is None:
            unsafe = network_filesystem_reason(path)
        if unsafe is None:
            checks.append(_passed("registry disk", "the registry is on local disk"))
        else:
            checks.append(
                _failed(
                    "registry disk",
                    unsafe,
                    "keep the registry on local disk (the default outputs/cache) and back it up "
                    f"to the mount, or share it through PostgreSQL ({REGISTRY_ENV}="
                    "postgresql://user@host/db)",
                )
            )
        return checks
    if scheme in _POSTGRES:
        shown = hide_password(url)
        return [_passed(name, f"{shown} (from {source})"), *_postgres(name, url)]
    return [
        _failed(name, f"unsupported registry database {scheme!r}: {url}", fix_url),
    ]


def _postgres(what: str, url: str, *, tracking: bool = False) -> list[Check]:
    """psycopg is installed, and the server answers within the timeout."""
    import importlib.util

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as exc:
        return [_failed(f"{what} server", f"not a database URL: {exc}", "fix the URL")]
    # MLflow opens postgresql:// with psycopg2 unless the URL names another driver; the registry
    # always uses psycopg 3
    driver = "psycopg"
    if tracking:
        driver = parsed.drivername.partition("+")[2] or "psycopg2"
    if importlib.util.find_spec(driver) is None:
        install = (
            "pip install 'mlinfra[postgres]'" if driver == "psycopg" else f"pip install {driver}"
        )
        return [_failed(f"{what} driver", f"{driver} is not installed", install)]
    checks = [_passed(f"{what} driver", f"{driver} is installed")]
    if importlib.util.find_spec("psycopg") is None:
        checks.append(_passed(f"{what} server", "not checked (needs psycopg 3)"))
        return checks
    import psycopg

    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, connect_timeout=int(_TIMEOUT)) as conn:
            version = conn.info.server_version
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        checks.append(
            _failed(
                f"{what} server",
                f"cannot connect to {hide_password(url)}: {first}",
                "check that the server runs and that host, port, database, user and password "
                "in the URL are right",
            )
        )
        return checks
    checks.append(_passed(f"{what} server", f"PostgreSQL {version} answers"))
    return checks


def _shared_database(proj: Project | None, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """``(url, source)`` of the shared database, or ``None`` in local mode."""
    from mlinfra.registry.location import DATABASE_ENV

    if environ.get(DATABASE_ENV):
        return environ[DATABASE_ENV], f"${DATABASE_ENV}"
    if proj is not None and (proj.config_dir / "mlflow.yaml").is_file():
        try:
            if proj.mlflow.shared.database:
                return proj.mlflow.shared.database, "shared.database in mlflow.yaml"
        except ConfigError:
            return None
    return None


def _shared(
    proj: Project | None, environ: Mapping[str, str], target: TrackingTarget | None
) -> list[Check]:
    """The shared services: the database answers, and tracking goes to a server."""
    shared = _shared_database(proj, environ)
    if shared is None:  # local mode: nothing is shared, nothing to check
        return []
    url, source = shared
    checks = [_passed("shared database", f"{hide_password(url)} (from {source})")]
    if _scheme(url) not in _POSTGRES:
        checks.append(
            _failed(
                "shared database",
                f"{_scheme(url) or url!r} is not PostgreSQL",
                "use a postgresql://user@host/db URL every worker reaches",
            )
        )
    else:
        checks.extend(_postgres("shared database", url))
    if target is None or _scheme(target.uri) not in ("http", "https"):
        where = hide_password(target.uri) if target is not None else "none"
        checks.append(
            _failed(
                "shared tracking",
                f"the tracking URI is not a server ({where}): each machine would track to its "
                "own store",
                "set MLFLOW_TRACKING_URI (or shared.tracking_uri in mlflow.yaml) to the "
                "mlflow server every worker reaches (`mlinfra services up` starts one locally)",
            )
        )
    else:
        checks.append(_passed("shared tracking", f"{hide_password(target.uri)} is a server"))
    return checks


def _study_gap(
    proj: Project | None,
    target: TrackingTarget | None,
    experiment: str | None,
    stage: str | None,
    overrides: tuple[str, ...],
) -> list[Check]:
    """Finished trials of the study without a live MLflow run (a run that failed to record)."""
    from mlinfra.errors import MlinfraError

    name = "study runs"
    if proj is None or target is None:
        return [_failed(name, "not checked: no project or tracking URI", "fix those first")]
    try:
        return [_gap(proj, target, experiment, stage, overrides)]
    except MlinfraError as exc:
        return [_failed(name, str(exc), "check the experiment, stage and overrides")]


def _gap(
    proj: Project,
    target: TrackingTarget,
    experiment: str | None,
    stage: str | None,
    overrides: tuple[str, ...],
) -> Check:
    import optuna

    from mlinfra.cli.common import pick_experiment
    from mlinfra.hpo.runner import locate_study

    exp = pick_experiment(proj.config_dir, experiment)
    where = locate_study(proj, exp, stage=stage, overrides=overrides, platform=target.platform)
    shown = f"study {where.study_name} in {hide_password(where.storage_url)}"
    storage = optuna.storages.RDBStorage(where.storage_url)
    try:
        return _compare(storage, where.study_name, shown, target)
    finally:
        storage.engine.dispose()


def _compare(storage: Any, study_name: str, shown: str, target: TrackingTarget) -> Check:
    import optuna
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from mlinfra.hpo.study import FAILURE_ATTR

    name = "study runs"
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return _failed(name, f"{shown} does not exist", "run the sweep, or fix -e/-s/overrides")
    state = optuna.trial.TrialState
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state in (state.COMPLETE, state.PRUNED)
        or (t.state == state.FAIL and FAILURE_ATTR in t.user_attrs)
    ]
    client = MlflowClient(tracking_uri=target.uri)
    missing: list[int] = []
    for trial in finished:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if not run_id:
            missing.append(trial.number)
            continue
        try:
            run = client.get_run(run_id)
        except MlflowException:
            missing.append(trial.number)
            continue
        if run.info.lifecycle_stage == "deleted":
            missing.append(trial.number)
    if missing:
        listed = ", ".join(f"#{n}" for n in missing[:10]) + (" ..." if len(missing) > 10 else "")
        return _failed(
            name,
            f"{len(missing)} finished trials have no MLflow run ({listed}) in {shown}",
            "the tracking server was unreachable when they ended; their results are in the "
            "study (optuna), rerun them or accept the gap",
        )
    return _passed(name, f"all {len(finished)} finished trials have their MLflow run ({shown})")


# ---- output ------------------------------------------------------------------------------------


def _marks() -> tuple[str, str]:
    """``✓``/``✗``, or ASCII where standard output cannot encode them."""
    import sys

    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "ok", "XX"
    return "✓", "✗"


@click.command("doctor")
@click.option(
    "--study",
    is_flag=True,
    help="Also check that every finished trial of a sweep's study has its MLflow run.",
)
@click.option("-e", "--experiment", help="The sweep's experiment (with --study).")
@click.option("-s", "--stage", help="The sweep's stage (with --study).")
@click.argument("overrides", nargs=-1)
@project_options
@handle_errors
def doctor(
    study: bool,
    experiment: str | None,
    stage: str | None,
    overrides: tuple[str, ...],
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Check the platform, project, configuration, tracking store, registry and shared services.

    Prints one line per check (✓ or ✗, with what was found; each ✗ with how to fix it).
    Nothing is created. Exits 0 when every check passes, 1 otherwise. With --study, OVERRIDES
    are the sweep's config overrides (the same as given to `mlinfra hpo`).
    """
    if (experiment or stage or overrides) and not study:
        raise click.UsageError("-e/-s and OVERRIDES go with --study")
    environ = dict(os.environ)
    checks: list[Check] = []
    check, platform = _platform(environ)
    checks.append(check)
    check, proj = _project(project, config_dir)
    checks.append(check)
    if proj is not None:
        environ = dict(proj.environ)
    checks.append(_config(proj))
    check, target = _tracking_uri(proj, platform, environ)
    checks.append(check)
    checks.extend(_tracking_store(target))
    checks.extend(_registry(proj, environ))
    checks.extend(_shared(proj, environ, target))
    if study:
        checks.extend(_study_gap(proj, target, experiment, stage, overrides))

    good, bad = _marks()
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = good if c.ok else bad
        click.secho(f"{mark} {c.name.ljust(width)}  {c.detail}", fg=None if c.ok else "red")
        if not c.ok and c.fix:
            click.echo(f"  {' ' * width}  fix: {c.fix}")
    failed = [c.name for c in checks if not c.ok]
    if failed:
        click.secho(f"{len(failed)} problem(s): {', '.join(failed)}", fg="red")
        raise SystemExit(1)
    click.secho(f"all {len(checks)} checks passed", fg="green")
