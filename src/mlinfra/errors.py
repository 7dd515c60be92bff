"""The exceptions mlinfra raises.

Every exception derives from :class:`MlinfraError`, and each subclass also derives from the
builtin that matches its meaning, so ``except ValueError`` keeps working for callers who do not
know mlinfra.
Subclasses carry structured attributes (``file``, ``line``, ``key``) and a message that says what to
do next. All of them pickle, so they cross process boundaries (worker pools, Optuna workers) intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "BackupError",
    "BackupPathError",
    "BackupWarning",
    "CheckpointNotFoundError",
    "ConfigError",
    "ConfigErrorGroup",
    "DataChangedError",
    "FileStoreWarning",
    "FingerprintError",
    "JobFailedError",
    "MetadataCorruptError",
    "MetadataError",
    "MetadataSchemaError",
    "MetadataTimeoutError",
    "MissingDependencyError",
    "MlinfraError",
    "MlinfraWarning",
    "NamingError",
    "PathError",
    "RegistryCorruptError",
    "RegistryError",
    "RegistryTimeoutError",
    "TrackingError",
    "UnsafeStorageError",
    "add_note",
]


def add_note(exc: BaseException, note: str) -> None:
    """Attach ``note`` to ``exc`` (shown with its traceback, and by the CLI under its message);
    on Python 3.10, which has no exception notes, it is kept in ``__notes__`` all the same."""
    if hasattr(exc, "add_note"):  # Python 3.11+
        exc.add_note(note)
    else:
        notes = getattr(exc, "__notes__", None)
        if not isinstance(notes, list):
            notes = []
            exc.__notes__ = notes  # type: ignore[attr-defined]
        notes.append(note)


class MlinfraError(Exception):
    """Root of every error raised by mlinfra."""


class ConfigError(MlinfraError, ValueError):
    """A configuration file, value or override is invalid.

    Attributes:
        reason: What is wrong and what to do about it.
        file: The file the bad value came from, when known.
        line: The 1-based line in ``file``, when known.
        key: The dotted key path of the bad value (``hpo.sampling.max_trials``), when known.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = str(file) if file is not None else None
        self.line = line
        self.key = key
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [p for p in (where, f"key '{self.key}'" if self.key else "") if p]
        prefix = ", ".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        # type(self): subclasses that keep this constructor (NamingError, ...) pickle as themselves
        return (_rebuild_config_error, (type(self), self.reason, self.file, self.line, self.key))


def _rebuild_config_error(
    cls: type[ConfigError], reason: str, file: str | None, line: int | None, key: str | None
) -> ConfigError:
    return cls(reason, file=file, line=line, key=key)


class ConfigErrorGroup(ConfigError):
    """Several configuration problems found in one pass (``mlinfra config validate``).

    Attributes:
        errors: Every problem found, each a :class:`ConfigError` with its own location.
    """

    def __init__(self, errors: list[ConfigError]) -> None:
        if not errors:
            raise ValueError("ConfigErrorGroup needs at least one error")
        self.errors = list(errors)
        summary = f"{len(self.errors)} configuration problem(s):\n" + "\n".join(
            f"  - {e}" for e in self.errors
        )
        super().__init__(summary)

    def _render(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigErrorGroup, (self.errors,))


class PathError(ConfigError):
    """An output path cannot be built, or a finished path is unsafe.

    Attributes:
        pattern: The pattern being rendered, when there is one.
        placeholder: The placeholder whose value was refused, when there is one.
        value: The refused value (or path).
    """

    def __init__(
        self,
        reason: str,
        *,
        pattern: str | None = None,
        placeholder: str | None = None,
        value: str | None = None,
        key: str | None = None,
        file: str | Path | None = None,
    ) -> None:
        self.pattern = pattern
        self.placeholder = placeholder
        self.value = value
        super().__init__(reason, file=file, key=key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_path_error,
            (self.reason, self.pattern, self.placeholder, self.value, self.key, self.file),
        )


def _rebuild_path_error(
    reason: str,
    pattern: str | None,
    placeholder: str | None,
    value: str | None,
    key: str | None,
    file: str | None,
) -> PathError:
    return PathError(
        reason, pattern=pattern, placeholder=placeholder, value=value, key=key, file=file
    )


class NamingError(ConfigError):
    """A naming context, run name or key cannot be built from what was given."""


class RegistryError(MlinfraError, RuntimeError):
    """The run registry (run index and run-name versions) cannot do what was asked."""


class RegistryTimeoutError(RegistryError, TimeoutError):
    """The registry's database stayed locked by other writers for longer than the timeout."""


class RegistryCorruptError(RegistryError):
    """The file at the registry's path is not a readable mlinfra registry.

    Attributes:
        path: The file.
        repair: The command that salvages what can be read into a fresh registry.
    """

    def __init__(self, reason: str, *, path: str, repair: str) -> None:
        self.reason = reason
        self.path = path
        self.repair = repair
        super().__init__(f"{path}: {reason}; nothing was changed. To repair it, run: {repair}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_corrupt, (self.reason, self.path, self.repair))


def _rebuild_corrupt(reason: str, path: str, repair: str) -> RegistryCorruptError:
    return RegistryCorruptError(reason, path=path, repair=repair)


class UnsafeStorageError(ConfigError):
    """A database was pointed at a network or FUSE file system, where SQLite locking breaks."""


class TrackingError(MlinfraError, RuntimeError):
    """MLflow could not be set up, or answered with an error."""


class JobFailedError(MlinfraError, RuntimeError):
    """An AzureML job ended without completing (Failed, Canceled, NotResponding, ...).

    Attributes:
        job_name: The job's name (``mlinfra azureml wait <job_name>`` follows it again).
        status: The status it ended with.
        studio_url: Its page in AzureML studio, when known.
        log_tail: The last lines of its logs that were seen, oldest first.
    """

    def __init__(
        self,
        job_name: str,
        status: str,
        *,
        studio_url: str | None = None,
        log_tail: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.job_name = job_name
        self.status = status
        self.studio_url = studio_url
        self.log_tail = tuple(log_tail)
        lines = [f"AzureML job {job_name} ended with status {status}"]
        if studio_url:
            lines.append(f"studio: {studio_url}")
        if self.log_tail:
            lines.append(f"last {len(self.log_tail)} log line(s):")
            lines += [f"  | {line}" for line in self.log_tail]
        else:
            lines.append("no log lines were received; open the studio page for its logs")
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_job_failed, (self.job_name, self.status, self.studio_url, self.log_tail))


def _rebuild_job_failed(
    job_name: str, status: str, studio_url: str | None, log_tail: tuple[str, ...]
) -> JobFailedError:
    return JobFailedError(job_name, status, studio_url=studio_url, log_tail=log_tail)


class _AboutPath(MlinfraError):
    """An error about one file or folder: the message starts with its path.

    Attributes:
        reason: What went wrong and what to do.
        path: The file or folder concerned, when there is one.
    """

    def __init__(self, reason: str, *, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {reason}" if self.path else reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_with_path, (type(self), self.reason, self.path))


class FingerprintError(_AboutPath, RuntimeError):
    """A fingerprint could not be computed (a missing or unreadable file, a symlink loop, git
    failing); ``path`` names the file or folder."""


class DataChangedError(FingerprintError):
    """Files changed while they were being fingerprinted; the result would mix two versions."""


class MetadataError(_AboutPath, ValueError):
    """An output folder's ``metadata.json`` cannot be read or updated; ``path`` names the file."""


class MetadataCorruptError(MetadataError):
    """``metadata.json`` is not valid JSON, or not an object; it is left as it is."""


class MetadataTimeoutError(MetadataError, TimeoutError):
    """Another process held a ``metadata.json`` lock for longer than the timeout."""


class MetadataSchemaError(MetadataError):
    """``metadata.json`` was written with a schema this mlinfra does not read (a newer one)."""


def _rebuild_with_path(cls: type[Any], reason: str, path: str | None) -> Any:
    return cls(reason, path=path)


class BackupError(MlinfraError, OSError):
    """A backup or a restore could not be made, or what it copied did not verify.

    The previous good copy is never deleted before a new one is complete, so after this error
    the backup (or the local copy, for a restore) is the one that existed before.

    Attributes:
        reason: What went wrong and what to do.
        path: The local file or folder concerned, when there is one.
    """

    def __init__(self, reason: str, *, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {reason}" if self.path else reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_backup_error, (type(self), self.reason, self.path))


class BackupPathError(MlinfraError, ValueError):
    """A path cannot be backed up or restored where it is: it is already inside the backup root
    (a Google Drive path), outside the project, or not under the outputs folder.

    Attributes:
        reason: What is wrong and what to do.
        path: The refused path.
    """

    def __init__(self, reason: str, *, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {reason}" if self.path else reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_backup_error, (type(self), self.reason, self.path))


class CheckpointNotFoundError(MlinfraError, FileNotFoundError):
    """No model checkpoint where one was expected.

    Attributes:
        reason: What was looked for, what was found instead, and what to do.
        path: The folder searched.
    """

    def __init__(self, reason: str, *, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {reason}" if self.path else reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_backup_error, (type(self), self.reason, self.path))


def _rebuild_backup_error(cls: type[Any], reason: str, path: str | None) -> Any:
    return cls(reason, path=path)


class MlinfraWarning(UserWarning):
    """Something works, but not the way mlinfra recommends."""


class BackupWarning(MlinfraWarning):
    """A backup failed and the caller asked to be warned (``on_error="warn"``) instead of
    stopping; the message says what failed and the previous good copy is untouched."""


class FileStoreWarning(MlinfraWarning):
    """MLflow's file store (``file:./mlruns``) is in maintenance mode; SQLite is recommended."""


class MissingDependencyError(MlinfraError, ImportError):
    """An optional dependency is not installed.

    Attributes:
        package: The module that failed to import.
        extra: The ``pip install 'mlinfra[extra]'`` extra that provides it, when there is one.
    """

    def __init__(self, package: str, extra: str | None = None, feature: str | None = None) -> None:
        self.package = package
        self.extra = extra
        self.feature = feature
        what = f" (needed for {feature})" if feature else ""
        hint = f"pip install 'mlinfra[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{package} is not installed{what}; install it with: {hint}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (MissingDependencyError, (self.package, self.extra, self.feature))
