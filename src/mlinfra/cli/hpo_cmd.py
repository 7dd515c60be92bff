"""``mlinfra hpo``: run or resume the sweep of an experiment stage, with progress and a summary."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from mlinfra.cli.common import handle_errors, pick_experiment, project_options
from mlinfra.config import Project
from mlinfra.core.redact import hide_password, redact_mapping

__all__ = ["hpo"]


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Any]:
    """A rich progress bar on standard error: finished/total, best so far, elapsed."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    task = bar.add_task("sweep", total=total, best="")

    def update(state: Any, study: Any) -> None:
        best = ""
        try:
            best = f"best {study.best_value:.4g}"
        except ValueError:  # no completed trial yet
            best = ""
        running = f", {state.running} running" if state.running else ""
        bar.update(task, completed=min(state.finished, total), best=best + running)

    with bar:
        yield update


def _print_summary(result: Any) -> None:
    """The summary: one ``label  value`` line each (readable in a terminal and in a log)."""
    rows: list[tuple[str, str]] = [
        (
            "trials",
            f"{result.finished}/{result.max_trials} finished ({result.completed} completed, "
            f"{result.pruned} pruned, {result.failed} failed); {result.new_trials} run now",
        )
    ]
    if result.best_number is not None:
        shown = redact_mapping(result.best_params or {})  # credentials never reach the log
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(shown.items())
        )
        rows += [
            (
                "best trial",
                f"#{result.best_number}: {result.metric} = {result.best_value:.4f} "
                f"({result.direction})",
            ),
            ("best params", params),
            ("best run", str(result.best_run_name)),
            ("best output", str(result.best_output_dir)),
        ]
    else:
        rows.append(("best trial", "none completed yet"))
    if result.refit_run_name:
        rows.append(("refit run", result.refit_run_name))
    rows += [
        ("sweep run", f"{result.parent_run_name} ({result.parent_run_id})"),
        ("study", f"{result.study_name} in {hide_password(result.storage_url)}"),
        (
            "MLflow",
            f"experiment {result.experiment_name!r} at {hide_password(result.tracking_uri)}",
        ),
    ]
    if result.stopped:
        rows.append(("stopped", result.stopped))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        colour = "red" if label == "stopped" else None
        click.echo(
            click.style(label.ljust(width), bold=True) + "  " + click.style(value, fg=colour)
        )
    uri = result.tracking_uri
    if uri.startswith(("http://", "https://")):
        click.echo(f"Open the runs at {hide_password(uri)}")
    else:
        click.echo(f"Open the runs: mlflow ui --backend-store-uri '{uri}'")


@click.command("hpo")
@click.option("--experiment", "-e", help="The experiment (a file in config/experiment/).")
@click.option("--stage", "-s", help="The stage whose HPO config and overrides to use.")
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes running trials on the same study (this one included).",
)
@click.option(
    "--platform",
    type=click.Choice(["local", "colab", "kaggle", "azureml"]),
    help="The platform (default: detected).",
)
@click.option(
    "--no-progress", is_flag=True, help="No progress bar (it is off when not a terminal)."
)
@click.argument("overrides", nargs=-1)
@project_options
@handle_errors
def hpo(
    experiment: str | None,
    stage: str | None,
    workers: int,
    platform: str | None,
    no_progress: bool,
    overrides: tuple[str, ...],
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Run the sweep of an experiment stage, or resume it where it stopped.

    The objective is the function named by `objective.entrypoint` in the HPO config. Running the
    command again with the same configuration resumes the same study and parent run: finished
    trials are never run again, and the budget (sampling.max_trials) counts them all.

    OVERRIDES are KEY=VALUE (change a key), +KEY=VALUE (add one), ~KEY (delete one) or
    DOMAIN=NAME (use another file, for example hpo=demo).
    """
    from mlinfra.hpo.runner import run_sweep

    proj = Project.discover(project=project, config_dir=config_dir)
    name = pick_experiment(proj.config_dir, experiment)
    from mlinfra.config import compose_experiment

    resolved = compose_experiment(
        proj.config_dir, name, stage=stage, overrides=overrides, environ=proj.environ
    )
    total = int(resolved.get("hpo.sampling.max_trials", 1))
    show = not no_progress and sys.stderr.isatty()
    with _progress_bar(show, total) as update:
        result = run_sweep(
            proj,
            name,
            stage=stage,
            overrides=overrides,
            workers=workers,
            platform=platform,
            on_progress=update,
        )
    _print_summary(result)
    if result.failed_to_finish:
        raise SystemExit(1)
