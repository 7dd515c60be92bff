"""Entry point of the ``mlinfra`` command.

Sub-commands are imported on first use, so ``mlinfra --help`` loads only click.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from mlinfra import __version__
from mlinfra.errors import MlinfraError

__all__ = ["cli", "main"]

_COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:attribute, one-line help shown by `mlinfra --help`)
    "config": ("mlinfra.cli.config_cmd:config", "Show, explain and validate configuration."),
    "paths": ("mlinfra.cli.paths_cmd:paths", "Resolve output folders from paths.yaml patterns."),
    "name": ("mlinfra.cli.name_cmd:name", "Format the run name of a stage from naming.yaml."),
    "index": (
        "mlinfra.cli.index_cmd:index",
        "Look up, list, clean, import and export the run registry.",
    ),
    "runs": ("mlinfra.cli.runs_cmd:runs", "List and find MLflow runs of the project."),
    "hpo": (
        "mlinfra.cli.hpo_cmd:hpo",
        "Run or resume the hyperparameter sweep of an experiment stage.",
    ),
    "report": (
        "mlinfra.cli.report_cmd:report",
        "Write an HTML report of a sweep's study and print its path.",
    ),
    "init": (
        "mlinfra.cli.init_cmd:init",
        "Make a new project (config tree, objective stub) that runs as made.",
    ),
    "services": (
        "mlinfra.cli.services_cmd:services",
        "Start, stop and check local PostgreSQL + mlflow server for multi-worker sweeps.",
    ),
    "run": (
        "mlinfra.cli.run_cmd:run",
        "Run a stage's entry point (final training, conversion, benchmarking).",
    ),
    "fingerprint": (
        "mlinfra.cli.fingerprint_cmd:fingerprint",
        "Show fingerprints, and say why two runs or output folders differ.",
    ),
    "doctor": (
        "mlinfra.cli.doctor_cmd:doctor",
        "Check the platform, project, tracking and registry setup.",
    ),
    "backup": (
        "mlinfra.cli.backup_cmd:backup",
        "Back up outputs (incremental, SQLite-safe) to Drive or another root.",
    ),
    "restore": (
        "mlinfra.cli.backup_cmd:restore",
        "Restore outputs from their backup, verified before replacing anything.",
    ),
    "platform": (
        "mlinfra.cli.platform_cmd:platform",
        "Show the detected platform, why, and its outputs and backup folders.",
    ),
    "azureml": (
        "mlinfra.cli.azureml_cmd:azureml",
        "Submit stages to AzureML, follow jobs, set up the workspace.",
    ),
}


class _LazyGroup(click.Group):
    """A group whose sub-commands are imported when they are run, not when help is shown."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return super().get_command(ctx, cmd_name)
        if ctx.resilient_parsing:
            # shell completion lists commands: describe them without importing them.
            return click.Command(cmd_name, help=_COMMANDS[cmd_name][1])
        target, _ = _COMMANDS[cmd_name]
        module_name, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the sub-command; an argument no file system takes (met while click converts a
        path, or later) is a clear error with exit status 1, not a traceback."""
        try:
            return super().invoke(ctx)
        except (ValueError, OSError) as exc:
            from mlinfra.cli.common import fail, os_name_error

            error = os_name_error(exc)
            if error is None:
                raise
            fail(error)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][1]) for name in sorted(_COMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlinfra")
def cli() -> None:
    """mlinfra: one identity for every stage of an ML experiment.

    Layered validated config, deterministic keys, output folders from patterns, unique run
    names, MLflow runs found again instead of duplicated, fingerprints and durable backups.
    """


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; an mlinfra error becomes a one-line message and exit status 1."""
    try:
        return cli.main(args=argv, prog_name="mlinfra", standalone_mode=True)
    except MlinfraError as exc:  # raised outside a command's own handling
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
