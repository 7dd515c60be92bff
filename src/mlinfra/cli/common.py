"""Pieces every command shares: project options, error reporting, ``key=value`` arguments."""

from __future__ import annotations

import errno
import functools
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from mlinfra.errors import ConfigError, ConfigErrorGroup, MlinfraError

__all__ = [
    "fail",
    "handle_errors",
    "os_name_error",
    "parse_assignments",
    "pick_experiment",
    "platform_option",
    "project_options",
]

F = TypeVar("F", bound=Callable[..., Any])


def project_options(func: F) -> F:
    """``--project`` and ``--config-dir``: where the project is (default: discovered)."""
    func = click.option(
        "--config-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="The config folder (default: <project>/config).",
    )(func)
    func = click.option(
        "--project",
        type=click.Path(file_okay=False, path_type=Path),
        help="The project root (default: found from the working directory, or "
        "$MLINFRA_PROJECT_ROOT).",
    )(func)
    return func


def fail(exc: MlinfraError) -> None:
    """Print ``exc`` (every problem of a group, and its notes) on standard error and exit with
    status 1."""
    if isinstance(exc, ConfigErrorGroup):
        click.secho(f"error: {len(exc.errors)} configuration problem(s):", fg="red", err=True)
        for item in exc.errors:
            click.echo(f"  {item}", err=True)
    else:
        click.secho(f"error: {exc}", fg="red", err=True)
    for note in getattr(exc, "__notes__", ()):  # what else failed meanwhile (add_note)
        click.echo(f"  {note}", err=True)
    raise SystemExit(1)


def handle_errors(func: F) -> F:
    """Turn an mlinfra error raised by a command into a message and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MlinfraError as exc:
            fail(exc)

    return wrapper  # type: ignore[return-value]


def os_name_error(exc: BaseException) -> ConfigError | None:
    """A clear error for an argument no file system takes (a NUL in a path, a name over the
    file system's limit), or ``None`` for any other exception."""
    if isinstance(exc, ValueError) and "null byte" in str(exc):
        return ConfigError("a path or name holds a NUL character; no file system accepts it")
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        shown = repr(exc.filename)
        shown = shown[:80] + "..." if len(shown) > 80 else shown
        return ConfigError(f"a file name is too long for the file system: {shown}")
    return None


def platform_option(func: F) -> F:
    """``--platform``: the storage environment and platform (one vocabulary)."""
    return click.option(
        "--platform",
        type=click.Choice(["local", "colab", "kaggle", "azureml"]),
        default="local",
        show_default=True,
        help="Platform whose storage layout and name prefix to use.",
    )(func)


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` → ``{"a": "1", "b": "x"}``.

    Raises:
        ConfigError: an item without ``=``, an empty key, or a key given twice.
    """
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f"expected KEY=VALUE, got {item!r}")
        if key in out:
            raise ConfigError(f"{key} is given twice", key=key)
        out[key] = value
    return out


def pick_experiment(config_dir: Path, name: str | None) -> str:
    """``name``, or the project's only experiment when none is given.

    Raises:
        ConfigError: no experiment files, or several and none chosen (the message lists them).
    """
    from mlinfra.config import list_experiments

    if name:
        if len(name) > 200 or any(unicodedata.category(c)[0] == "C" for c in name):
            shown = repr(name) if len(name) <= 80 else repr(name[:80]) + "..."
            raise ConfigError(
                f"invalid experiment name {shown}: use the stem of a file in "
                f"{config_dir / 'experiment'} (no control characters, at most 200 characters)",
                key="experiment",
            )
        return name
    names = list_experiments(config_dir)
    if len(names) == 1:
        return names[0]
    if not names:
        raise ConfigError(f"no experiment files in {config_dir / 'experiment'}")
    raise ConfigError(f"several experiments, choose one with --experiment: {', '.join(names)}")
