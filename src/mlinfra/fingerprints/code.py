"""Code fingerprints: which code ran, including what was not committed.

In a git work tree the fingerprint covers the commit (``HEAD``), the uncommitted changes to
tracked files (``git diff HEAD --binary``: staged and unstaged alike) and the content of
untracked files that are not ignored (``git ls-files --others --exclude-standard``). A clean tree
is fingerprinted by its commit alone, so two clones of one commit agree. Folders mlinfra itself
writes (the outputs root, ``mlruns``, ``mlartifacts``) are never counted, ignored by git or not:
otherwise each run's outputs would make the next run's code look changed.

Without git (or outside a work tree), the fingerprint is the hash of the project's source files:
every file whose name matches :data:`SOURCE_PATTERNS`, outside hidden folders, virtual
environments, build folders and the excluded ones.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import translate
from pathlib import Path

import xxhash

from mlinfra.core.canonical import stable_hash
from mlinfra.errors import FingerprintError

__all__ = [
    "CODE_SCHEMA",
    "DEFAULT_EXCLUDE",
    "SOURCE_PATTERNS",
    "CodeFingerprint",
    "code_fingerprint",
]

CODE_SCHEMA = "mlinfra.code/1"
#: File names that count as source when there is no git.
SOURCE_PATTERNS: tuple[str, ...] = (
    "*.py",
    "*.pyi",
    "*.pyx",
    "*.pxd",
    "*.c",
    "*.cc",
    "*.cpp",
    "*.h",
    "*.hpp",
    "*.cu",
    "*.sh",
    "*.toml",
    "*.cfg",
    "*.ini",
    "requirements*.txt",
    # dependency locks by name: a bare "*.lock" would match the lock files of running tools
    "poetry.lock",
    "uv.lock",
    "pdm.lock",
    "Pipfile.lock",
    "conda-lock.yml",
)
#: Folders (relative to the project root) that never count: what mlinfra and MLflow write.
DEFAULT_EXCLUDE: tuple[str, ...] = ("outputs", "mlruns", "mlartifacts", ".mlinfra")
_SKIP_DIRS = re.compile(
    r"^(?:\..*|__pycache__|node_modules|venv|env|build|dist|site-packages|.*\.egg-info)$"
)
_GIT_TIMEOUT = 60.0


@dataclass(frozen=True)
class CodeFingerprint:
    """The fingerprint of the code.

    Attributes:
        hash: 64 hex characters.
        kind: ``git`` or ``files``.
        commit: The ``HEAD`` commit (``None`` without git or before the first commit).
        dirty: Whether there are uncommitted changes (tracked or untracked).
        changed: The changed and untracked files (paths relative to the work tree), sorted.
        root: The work tree (git) or project folder that was fingerprinted.
    """

    hash: str
    kind: str
    commit: str | None
    dirty: bool
    changed: tuple[str, ...] = field(default=(), repr=False)
    root: str = ""

    def summary(self) -> dict[str, object]:
        """A JSON-ready description."""
        return {
            "hash": self.hash,
            "kind": self.kind,
            "commit": self.commit,
            "dirty": self.dirty,
            "changed": list(self.changed),
        }


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git")
    if git is None:
        raise FileNotFoundError("git")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # a read must not take the index lock from a running git
    return subprocess.run(
        [git, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=_GIT_TIMEOUT,
        check=False,
    )


def _split(output: bytes) -> list[str]:
    return [n for n in output.decode(errors="surrogateescape").split("\0") if n]


def _excluded(rel: str, exclude: tuple[str, ...]) -> bool:
    return any(rel == e or rel.startswith(f"{e}/") for e in exclude)


def _file_digest(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return xxhash.xxh3_128(handle.read()).hexdigest()
    except OSError as exc:
        raise FingerprintError(f"cannot read: {exc.strerror or exc}", path=path) from None


def _relative_excludes(top: Path, project: Path, exclude: Iterable[str]) -> tuple[str, ...]:
    """The excluded folders as paths relative to the work tree ``top``."""
    out: list[str] = []
    for item in exclude:
        folder = Path(item)
        absolute = folder if folder.is_absolute() else project / folder
        try:
            out.append(Path(os.path.abspath(absolute)).relative_to(top).as_posix())
        except ValueError:
            continue  # outside the work tree: git never lists it
    return tuple(out)


def _git_fingerprint(project: Path, exclude: Iterable[str]) -> CodeFingerprint | None:
    try:
        probe = _git(["rev-parse", "--show-toplevel"], project)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0:
        return None
    top = Path(probe.stdout.decode().strip())
    excludes = _relative_excludes(top, project, exclude)
    head = _git(["rev-parse", "--verify", "--quiet", "HEAD"], top)
    commit = head.stdout.decode().strip() if head.returncode == 0 else None

    pathspec = ["--", ".", *(f":(exclude){e}" for e in excludes)]
    if commit is not None:
        diff = _git(
            ["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv", *pathspec],
            top,
        )
        names = _git(["diff", "HEAD", "--name-only", "--no-renames", "-z", *pathspec], top)
        if diff.returncode != 0 or names.returncode != 0:
            problem = (diff.stderr or names.stderr).decode(errors="replace").strip()
            raise FingerprintError(f"git diff failed: {problem}", path=top)
        diff_bytes = diff.stdout
        tracked_changed = _split(names.stdout)
    else:  # no commit yet: every tracked file counts by its content
        listed = _git(["ls-files", "-z", "--cached", *pathspec], top)
        diff_bytes = b""
        tracked_changed = _split(listed.stdout)
    others = _git(["ls-files", "-z", "--others", "--exclude-standard", *pathspec], top)
    if others.returncode != 0:
        problem = others.stderr.decode(errors="replace").strip()
        raise FingerprintError(f"git ls-files failed: {problem}", path=top)
    untracked = sorted(_split(others.stdout))

    contents: list[list[str]] = []
    for name in untracked if commit is not None else sorted({*tracked_changed, *untracked}):
        path = top / name
        if path.is_file():
            contents.append([name, _file_digest(path)])
    dirty = bool(diff_bytes) or bool(untracked) or commit is None
    payload = {
        "schema": CODE_SCHEMA,
        "commit": commit,
        "diff": hashlib.sha256(diff_bytes).hexdigest() if diff_bytes else None,
        "files": contents,
    }
    changed = sorted({*tracked_changed, *untracked})
    return CodeFingerprint(
        hash=stable_hash(payload),
        kind="git",
        commit=commit,
        dirty=dirty,
        changed=tuple(changed),
        root=str(top),
    )


def _source_files(project: Path, patterns: Iterable[str], exclude: tuple[str, ...]) -> list[str]:
    regex = re.compile("|".join(f"(?:{translate(p)})" for p in patterns))
    found: list[str] = []
    for folder, dirs, files in os.walk(project):
        rel_folder = Path(folder).relative_to(project).as_posix()
        prefix = "" if rel_folder == "." else f"{rel_folder}/"
        dirs[:] = sorted(
            d for d in dirs if not _SKIP_DIRS.match(d) and not _excluded(f"{prefix}{d}", exclude)
        )
        found.extend(f"{prefix}{name}" for name in files if regex.fullmatch(name))
    return sorted(found)


def code_fingerprint(
    root: str | os.PathLike[str],
    *,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
    patterns: Iterable[str] = SOURCE_PATTERNS,
    use_git: bool = True,
) -> CodeFingerprint:
    """Fingerprint the code of the project at ``root`` (see the module docstring).

    Args:
        root: The project root.
        exclude: Folders (relative to ``root``, or absolute) that never count.
        patterns: Source file names, when there is no git.
        use_git: Set ``False`` to hash source files even in a git work tree.

    Raises:
        FingerprintError: ``root`` is not a folder, git fails part-way, or a file cannot be read.
    """
    project = Path(os.path.abspath(root))
    if not project.is_dir():
        raise FingerprintError("the project root is not a folder", path=project)
    excludes = tuple(exclude)
    if use_git:
        found = _git_fingerprint(project, excludes)
        if found is not None:
            return found
    rel_excludes = _relative_excludes(project, project, excludes)
    files = _source_files(project, patterns, rel_excludes)
    contents = [[name, _file_digest(project / name)] for name in files]
    return CodeFingerprint(
        hash=stable_hash({"schema": CODE_SCHEMA, "commit": None, "diff": None, "files": contents}),
        kind="files",
        commit=None,
        dirty=False,
        changed=(),
        root=str(project),
    )
