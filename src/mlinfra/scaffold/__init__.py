"""``mlinfra init``: a new project (config tree, objective stub, tiny dataset) that validates and
runs as made.

:func:`scaffold_project` writes every file atomically and never overwrites one: a file that is
already there stops it before anything is written (``README.md`` and ``.gitignore`` are kept as
they are instead). If writing fails half-way, what it created is removed and nothing that existed
before is touched.
"""

from __future__ import annotations

import contextlib
import keyword
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mlinfra.core.atomic import fsync_dir
from mlinfra.errors import MlinfraError
from mlinfra.scaffold.templates import FILES, render

__all__ = ["ScaffoldError", "ScaffoldResult", "package_name", "scaffold_project"]

#: Files a new project may share with the folder it is made in: kept as they are.
KEEP_IF_PRESENT = frozenset({"README.md", ".gitignore"})

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# Packages a project package must not shadow (or be shadowed by).
_TAKEN = frozenset({"mlinfra", "optuna", "mlflow", "config", "data", "outputs", "mlruns"})


class ScaffoldError(MlinfraError, ValueError):
    """The project cannot be made: a bad name, a non-empty folder, a file in the way."""


@dataclass
class ScaffoldResult:
    """What :func:`scaffold_project` did.

    Attributes:
        root: The project root.
        name: The project name.
        package: The Python package holding the objective.
        experiment: The experiment name (``config/experiment/<experiment>.yaml``).
        created: The files written, relative to ``root``, in order.
        kept: Files that were already there and were left as they are.
    """

    root: Path
    name: str
    package: str
    experiment: str
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def package_name(name: str) -> str:
    """The Python package of a project called ``name`` (``my-project`` → ``my_project``).

    Raises:
        ScaffoldError: ``name`` is not letters, digits, ``-`` and ``_`` starting with a letter,
            or its package would be a Python keyword or shadow a standard or mlinfra module.
    """
    if len(name) > 64:
        raise ScaffoldError(
            f"invalid project name {name[:40]!r}... ({len(name)} characters): use at most 64"
        )
    if not _NAME.match(name):
        raise ScaffoldError(
            f"invalid project name {name!r}: use letters, digits, '-' and '_', starting with a "
            "letter (for example my-project); pass --name"
        )
    package = name.replace("-", "_").lower()
    if keyword.iskeyword(package) or not package.isidentifier():
        raise ScaffoldError(f"invalid project name {name!r}: {package!r} is a Python keyword")
    if package in sys.stdlib_module_names or package in _TAKEN:
        raise ScaffoldError(
            f"invalid project name {name!r}: its package {package!r} would clash with the "
            f"module of the same name; choose another --name"
        )
    return package


def _plan(name: str, package: str) -> dict[str, str]:
    fields = {"name": name, "package": package, "experiment": package}
    return {render(rel, fields): render(text, fields) for rel, text in FILES.items()}


def _create_new(path: Path, text: str) -> None:
    """Write ``path`` atomically, refusing to replace a file that appeared meanwhile."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o644)
        try:
            os.link(tmp, path)  # fails if path exists: never overwrites
        except FileExistsError:
            raise ScaffoldError(f"{path} appeared while the project was being made") from None
        except OSError:  # no hard links here (some FUSE or FAT file systems)
            if path.exists():
                raise ScaffoldError(f"{path} appeared while the project was being made") from None
            tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def scaffold_project(
    target: str | Path, name: str | None = None, *, force: bool = False
) -> ScaffoldResult:
    """Make a new project in ``target``.

    Args:
        target: The project folder; created if missing.
        name: The project name (default: the folder's name); the package is derived from it.
        force: Write into a folder that is not empty (existing files are still never
            overwritten).

    Raises:
        ScaffoldError: a bad name; ``target`` is a file, or is not empty and ``force`` is not
            given; a file the project needs is already there. Nothing is written then.
        OSError: writing failed; what was created is removed again.
    """
    root = Path(os.path.abspath(target))
    project = name if name is not None else root.name
    package = package_name(project)
    if root.exists() and not root.is_dir():
        raise ScaffoldError(f"{root} is a file, not a folder")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise ScaffoldError(
            f"{root} is not empty; choose a new folder, or pass --force to add the project "
            "to it (existing files are never overwritten)"
        )
    plan = _plan(project, package)
    result = ScaffoldResult(root, project, package, package)
    in_the_way = [rel for rel in plan if (root / rel).exists() or (root / rel).is_symlink()]
    blocking = [rel for rel in in_the_way if rel not in KEEP_IF_PRESENT]
    if blocking:
        raise ScaffoldError(
            f"{root} already has {', '.join(blocking)}; nothing was written (init never "
            "overwrites a file: move them away or choose another folder)"
        )
    result.kept = [rel for rel in in_the_way if rel in KEEP_IF_PRESENT]
    made_dirs: list[Path] = []
    made_files: list[Path] = []
    try:
        for rel, text in plan.items():
            if rel in result.kept:
                continue
            path = root / rel
            missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
            for folder in reversed(missing):
                folder.mkdir()
                made_dirs.append(folder)
            _create_new(path, text)
            made_files.append(path)
            result.created.append(rel)
    except BaseException:
        for path in reversed(made_files):
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in reversed(made_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return result
