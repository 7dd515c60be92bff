"""``mlinfra report``: write the HTML report of a sweep's study and print its path."""

from __future__ import annotations

from pathlib import Path

import click

from mlinfra.cli.common import handle_errors, pick_experiment, project_options
from mlinfra.config import Project

__all__ = ["report"]


@click.command("report")
@click.option("--experiment", "-e", help="The experiment (a file in config/experiment/).")
@click.option("--stage", "-s", help="The stage whose sweep to report (as given to `mlinfra hpo`).")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="The HTML file to write (default: report.html in the study folder).",
)
@click.option(
    "--platform",
    type=click.Choice(["local", "colab", "kaggle", "azureml"]),
    help="The platform whose output folders to use (default: detected).",
)
@click.argument("overrides", nargs=-1)
@project_options
@handle_errors
def report(
    experiment: str | None,
    stage: str | None,
    output: Path | None,
    platform: str | None,
    overrides: tuple[str, ...],
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Write an HTML report of the study of an experiment stage and print its path.

    The report holds the study's counts and best trial, Optuna's charts (optimisation history,
    parameter importances, parallel coordinates, slices, intermediate values) and a table of
    the trials; it is one file that opens offline. Give the same --stage and OVERRIDES as the
    `mlinfra hpo` run, so the same study is found. Nothing is created when there is no study.
    """
    from mlinfra.hpo.report import write_report

    proj = Project.discover(project=project, config_dir=config_dir)
    name = pick_experiment(proj.config_dir, experiment)
    path = write_report(
        proj, name, stage=stage, overrides=overrides, output=output, platform=platform
    )
    click.echo(str(path))
