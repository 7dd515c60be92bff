"""``mlinfra run STAGE``: run a stage's entry point (final training, conversion, benchmarking)."""

from __future__ import annotations

from pathlib import Path

import click

from mlinfra.cli.common import handle_errors, pick_experiment, project_options
from mlinfra.config import Project

__all__ = ["run"]


@click.command("run")
@click.argument("stage")
@click.option("--experiment", "-e", help="The experiment (a file in config/experiment/).")
@click.option(
    "--mode",
    type=click.Choice(["reuse_if_exists", "force_new", "resume_if_incomplete"]),
    help="The run mode (default: the stage's run_mode, else reuse_if_exists).",
)
@click.option(
    "--parent",
    type=click.Path(file_okay=False, path_type=Path),
    help="Conversion: the final-training output folder to convert (default: the newest "
    "finished one with the same spec_fp).",
)
@click.option(
    "--platform",
    type=click.Choice(["local", "colab", "kaggle", "azureml"]),
    help="The platform (default: detected).",
)
@click.argument("overrides", nargs=-1)
@project_options
@handle_errors
def run(
    stage: str,
    experiment: str | None,
    mode: str | None,
    parent: Path | None,
    platform: str | None,
    overrides: tuple[str, ...],
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Run STAGE's entry point (stages.STAGE.entrypoint) with its identity: fingerprints, output
    folder, run name and MLflow run.

    With the default mode (reuse_if_exists) a finished output with the same identity is kept
    and nothing runs; force_new starts the next variant; resume_if_incomplete reruns an
    unfinished one in its own folder and MLflow run.
    """
    from mlinfra.runner import run_stage

    proj = Project.discover(project=project, config_dir=config_dir)
    name = pick_experiment(proj.config_dir, experiment)
    result = run_stage(
        proj, name, stage, overrides=overrides, mode=mode, parent=parent, platform=platform
    )
    if result.action == "reused":
        click.echo(
            f"kept {result.output_dir} (variant {result.variant}): a finished run with the same "
            "identity exists; --mode force_new runs it again"
        )
        return
    verb = "resumed" if result.action == "resumed" else "ran"
    click.echo(f"{verb} {stage}: run {result.run_name} ({result.run_id})")
    click.echo(f"output   {result.output_dir}")
    if result.variant is not None:
        click.echo(f"variant  {result.variant}")
    for key, value in sorted(result.metrics.items()):
        click.echo(f"{key}  {value:.6g}")
