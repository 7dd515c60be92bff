"""``mlinfra report``: one self-contained HTML file describing the study of an experiment stage.

The report has a header (study name, storage with its password hidden, direction and metric,
trial counts by state, the best trial with its MLflow run name and output folder), Optuna's
plotly charts (optimisation history, parameter importances, parallel coordinates, slices and,
when trials reported any, intermediate values) and a table of every trial. plotly.js is embedded
once, so the file opens offline.

Nothing is created in the study storage: a missing SQLite file, a database without Optuna's
tables, or a storage without the study is refused with :class:`NoStudyError`.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlinfra.config import Project
from mlinfra.core.atomic import atomic_write_text
from mlinfra.core.imports import require
from mlinfra.core.redact import hide_password
from mlinfra.errors import MlinfraError
from mlinfra.hpo.runner import StudyLocation, locate_study, trial_output_dir
from mlinfra.hpo.study import quiet_experimental

__all__ = [
    "REPORT_FILE",
    "NoStudyError",
    "ReportError",
    "load_existing_study",
    "render_report",
    "write_report",
]

#: The report's file name in the study folder.
REPORT_FILE = "report.html"

_FEATURE = "HTML study reports"


class ReportError(MlinfraError, RuntimeError):
    """The report cannot be made (for example: no trial has completed yet)."""


class NoStudyError(ReportError, FileNotFoundError):
    """The study does not exist yet: nothing was swept with this configuration."""


# ---- loading, without creating anything ------------------------------------------------------


def _sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL; ``None`` for another backend."""
    sa_url = require("sqlalchemy.engine", feature=_FEATURE).make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        return None
    database = sa_url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return Path(database or ":memory:")
    return Path(database)


def _has_optuna_tables(url: str, engine_kwargs: dict[str, Any]) -> bool:
    sqlalchemy = require("sqlalchemy", feature=_FEATURE)
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        return bool(sqlalchemy.inspect(engine).has_table("studies"))
    finally:
        engine.dispose()


@contextmanager
def load_existing_study(url: str, name: str, *, where: Path | None = None) -> Iterator[Any]:
    """Open the existing study ``name`` at ``url``, read only in spirit: no table, database file
    or study is ever created. The storage's connections are closed on exit.

    Args:
        url: The Optuna storage URL.
        name: The study name.
        where: The study folder, named in the error message (default: the storage).

    Raises:
        NoStudyError: the SQLite file does not exist, the database has no Optuna tables, or it
            holds no study ``name``.
    """
    optuna = require("optuna", feature=_FEATURE)
    storages = require("optuna.storages", feature=_FEATURE)
    shown = str(where) if where is not None else hide_password(url)
    missing = f"no study yet at {shown}; run `mlinfra hpo` first"
    engine_kwargs: dict[str, Any] = {}
    db = _sqlite_file(url)
    if db is not None:
        if str(db) == ":memory:" or not db.is_file():
            raise NoStudyError(missing)
        engine_kwargs = {"connect_args": {"timeout": 60}}
    if not _has_optuna_tables(url, engine_kwargs):
        raise NoStudyError(f"{missing} ({hide_password(url)} holds no Optuna study)")
    storage = storages.RDBStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=True)
    try:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise NoStudyError(
                f"{missing} (no study named {name!r} in {hide_password(url)})"
            ) from None
        yield study
    finally:
        storage.remove_session()
        storage.engine.dispose()


# ---- the page --------------------------------------------------------------------------------


@dataclass
class _Section:
    title: str
    body: str


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isfinite(value) and value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.4e}"
        return f"{value:.6g}"
    return str(value)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(params.items()))


def _duration(trial: Any) -> str:
    start, end = trial.datetime_start, trial.datetime_complete
    if start is None or end is None:
        return ""
    return f"{(end - start).total_seconds():.1f} s"


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], *, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    out = [f"<table{cls}><thead><tr>"]
    out += [f"<th>{_esc(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _varying_params(trials: Sequence[Any]) -> list[str]:
    """Parameters that take at least two values among ``trials``."""
    seen: dict[str, set[str]] = {}
    for t in trials:
        for key, value in t.params.items():
            seen.setdefault(key, set()).add(repr(value))
    return sorted(k for k, values in seen.items() if len(values) > 1)


def _figures(study: Any, completed: Sequence[Any], notes: list[str]) -> list[tuple[str, Any]]:
    """The charts, each as ``(title, plotly figure)``; what was skipped goes to ``notes``."""
    vis = require("optuna.visualization", extra="report", feature=_FEATURE)
    figures: list[tuple[str, Any]] = []

    def add(title: str, build: Callable[[], Any]) -> None:
        try:
            with quiet_experimental():
                figures.append((title, build()))
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            notes.append(f"{title}: not drawn ({type(exc).__name__}: {exc})")

    add("Optimisation history", lambda: vis.plot_optimization_history(study))
    varying = _varying_params(completed)
    if len(completed) < 2:
        notes.append(
            f"Parameter importances: skipped, they need at least 2 completed trials "
            f"(the study has {len(completed)})"
        )
    elif not varying:
        notes.append(
            "Parameter importances: skipped, no parameter takes two values among the "
            "completed trials"
        )
    else:
        add("Parameter importances", lambda: vis.plot_param_importances(study, params=varying))
    if completed and completed[0].params:
        add("Parallel coordinates", lambda: vis.plot_parallel_coordinate(study))
        add("Slices", lambda: vis.plot_slice(study))
    else:
        notes.append("Parallel coordinates and slices: skipped, the trials have no parameters")
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        add("Intermediate values", lambda: vis.plot_intermediate_values(study))
    return figures


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
table.facts th { width: 12em; }
tr.best td { background: #eaf6ea; }
.note { color: #8a6d3b; }
.muted { color: #777; font-size: 0.85em; }
"""


def _header(
    where: StudyLocation,
    study: Any,
    trials: Sequence[Any],
    best: Any,
    experiment: str,
    project: Project | None,
) -> str:
    counts = Counter(t.state.name for t in trials)
    count_text = ", ".join(f"{counts[s]} {s.lower()}" for s in sorted(counts)) or "none"
    facts = [
        ("study", study.study_name),
        ("experiment", experiment),
        ("storage", hide_password(where.storage_url)),
        ("study folder", where.study_dir),
        ("objective", f"{where.hpo.objective.direction} {where.hpo.objective.metric}"),
        ("trials", f"{len(trials)} ({count_text})"),
    ]
    best_facts = [
        ("best trial", f"#{best.number}"),
        ("value", _fmt(best.value)),
        ("params", _params_text(best.params)),
        ("MLflow run", best.user_attrs.get("mlflow_run_name", "")),
        ("output folder", trial_output_dir(project, where, best) if project else ""),
    ]

    def rows(items: Sequence[tuple[str, Any]]) -> str:
        return "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in items)

    return (
        f'<table class="facts">{rows(facts)}</table>'
        f'<h2>Best trial</h2><table class="facts">{rows(best_facts)}</table>'
    )


def _trials_table(trials: Sequence[Any], best_number: int, metric: str) -> str:
    names = sorted({k for t in trials for k in t.params})
    head = ["#", "state", metric, *names, "duration", "MLflow run"]
    out = ["<table><thead><tr>", *(f"<th>{_esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for t in sorted(trials, key=lambda t: t.number):
        cells = [
            t.number,
            t.state.name,
            "" if t.value is None else _fmt(t.value),
            *(_fmt(t.params[n]) if n in t.params else "" for n in names),
            _duration(t),
            t.user_attrs.get("mlflow_run_name", ""),
        ]
        css = ' class="best"' if t.number == best_number else ""
        out.append(f"<tr{css}>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def render_report(
    where: StudyLocation, study: Any, experiment: str, project: Project | None = None
) -> str:
    """The report of ``study`` as one HTML document.

    Raises:
        ReportError: no trial has completed.
        MissingDependencyError: plotly is not installed (``pip install 'mlinfra[report]'``).
    """
    require("plotly", extra="report", feature=_FEATURE)
    state = require("optuna.trial", feature=_FEATURE).TrialState
    trials = study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.state == state.COMPLETE]
    if not completed:
        counts = Counter(t.state.name.lower() for t in trials)
        have = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials"
        raise ReportError(
            f"study {study.study_name!r} has no completed trial yet ({have}); run "
            "`mlinfra hpo` until one completes"
        )
    best = study.best_trial
    notes: list[str] = []
    figures = _figures(study, completed, notes)
    sections = [_Section("Study", _header(where, study, trials, best, experiment, project))]
    for index, (title, fig) in enumerate(figures):
        body = fig.to_html(include_plotlyjs=index == 0, full_html=False, default_height="480px")
        sections.append(_Section(title, body))
    if notes:
        items = "".join(f"<li>{_esc(n)}</li>" for n in notes)
        sections.append(_Section("Notes", f'<ul class="note">{items}</ul>'))
    sections.append(
        _Section("Trials", _trials_table(trials, best.number, where.hpo.objective.metric))
    )
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = "".join(f"<h2>{_esc(s.title)}</h2>\n{s.body}\n" for s in sections[1:])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(study.study_name)}: mlinfra study report</title>"
        f"<style>{_CSS}</style></head><body>\n"
        f"<h1>Study {_esc(study.study_name)}</h1>\n"
        f'<p class="muted">mlinfra report, generated {_esc(generated)}</p>\n'
        f"{sections[0].body}\n{body}"
        "</body></html>\n"
    )


def write_report(
    project: Project,
    experiment: str,
    *,
    stage: str | None = None,
    overrides: Sequence[str] = (),
    output: str | Path | None = None,
    platform: str | None = None,
) -> Path:
    """Write the HTML report of an experiment stage's study; returns its path.

    Args:
        project: The project.
        experiment: The experiment name.
        stage: The stage whose HPO config locates the study (as ``mlinfra hpo -s``).
        overrides: Config overrides (the same as the sweep's, or another study is located).
        output: The file to write (default ``<study folder>/report.html``).
        platform: The platform whose output layout to use (default: detected).

    Raises:
        ConfigError: the configuration is invalid.
        NoStudyError: no study exists yet for this configuration (nothing is created).
        ReportError: no trial has completed.
        MissingDependencyError: plotly is missing.
    """
    from mlinfra.core.platforms import detect_platform

    require("plotly", extra="report", feature=_FEATURE)
    where = locate_study(
        project,
        experiment,
        stage=stage,
        overrides=overrides,
        platform=platform or detect_platform(project.environ),
    )
    with load_existing_study(where.storage_url, where.study_name, where=where.study_dir) as study:
        page = render_report(where, study, experiment, project)
    target = Path(output) if output is not None else where.study_dir / REPORT_FILE
    if target.is_dir():
        target = target / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, page)
    return target.absolute()
