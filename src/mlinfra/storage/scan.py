"""What is on the local side of a backup: files, their change signatures, and hashing copies."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import xxhash

from mlinfra.errors import BackupError
from mlinfra.storage.sqlite import SQLITE_SIDECARS

__all__ = ["LocalFile", "copy_hashing", "hash_file", "is_internal_name", "scan_local"]

_CHUNK = 1 << 20


def is_internal_name(name: str) -> bool:
    """Whether ``name`` is one of the store's own files (manifests, staging, temporaries)."""
    return name.startswith(".") and ".mlinfra" in name


@dataclass(frozen=True)
class LocalFile:
    """One local file and what says whether it changed since the last backup.

    Attributes:
        location: The file's path (a string: a scan makes thousands of these).
        signature: ``[size, mtime_ns, wal_size, wal_mtime_ns]`` (``-1`` when there is no
            ``-wal`` file): a database in WAL mode changes without touching its main file.
    """

    location: str
    signature: tuple[int, int, int, int]

    @property
    def path(self) -> Path:
        """The file."""
        return Path(self.location)

    @property
    def mtime_ns(self) -> int:
        """The newest modification time of the file and its ``-wal`` file."""
        return max(self.signature[1], self.signature[3])


def _signature(path: Path, has_wal: bool) -> tuple[int, int, int, int]:
    st = path.stat()
    wal_size = wal_mtime = -1
    if has_wal:
        try:
            wal = Path(f"{path}-wal").stat()
        except FileNotFoundError:
            pass
        else:
            wal_size, wal_mtime = wal.st_size, wal.st_mtime_ns
    return (st.st_size, st.st_mtime_ns, wal_size, wal_mtime)


def local_file(path: Path) -> LocalFile:
    """:class:`LocalFile` of one file."""
    return LocalFile(os.fspath(path), _signature(path, Path(f"{path}-wal").exists()))


def scan_local(root: Path) -> tuple[dict[str, LocalFile], list[str], list[str]]:
    """Every file and folder below ``root``, keyed by POSIX path relative to it.

    SQLite's ``-wal``/``-shm``/``-journal`` files next to a database are left out: a database is
    copied with them folded in. The store's own files are left out too. Symbolic links to
    folders are not followed.

    Returns:
        ``(files, folders, not_followed)``, each sorted; ``not_followed`` lists links to folders
        and special files that were left out.

    Raises:
        BackupError: a folder cannot be listed.
    """
    files: dict[str, LocalFile] = {}
    folders: list[str] = []
    not_followed: list[str] = []
    pending = [(os.fspath(root), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            raise BackupError(f"cannot list the folder: {exc.strerror}", path=folder) from exc
        names = {e.name for e in entries}
        for entry in entries:
            name = entry.name
            if is_internal_name(name):
                continue
            rel = prefix + name
            if entry.is_dir(follow_symlinks=False):
                folders.append(rel)
                pending.append((entry.path, rel + "/"))
                continue
            if any(name.endswith(s) and name[: -len(s)] in names for s in SQLITE_SIDECARS):
                continue
            if not entry.is_file():  # a link to a folder, a socket, a dangling link...
                not_followed.append(rel)
                continue
            st = entry.stat()
            signature = (st.st_size, st.st_mtime_ns, -1, -1)
            if f"{name}-wal" in names:
                signature = _signature(Path(entry.path), True)
            files[rel] = LocalFile(entry.path, signature)
    return dict(sorted(files.items())), sorted(folders), sorted(not_followed)


def _chunks(handle: object) -> Iterator[bytes]:
    read = handle.read  # type: ignore[attr-defined]
    while chunk := read(_CHUNK):
        yield chunk


def hash_file(path: str | os.PathLike[str]) -> str:
    """The xxh3-128 hash of a file's content, hex (a checksum: fast, not a security hash)."""
    digest = xxhash.xxh3_128()
    with Path(path).open("rb") as handle:
        for chunk in _chunks(handle):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashing(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> tuple[str, int]:
    """Copy ``src`` to the new file ``dst`` and fsync it; return ``(xxh3-128, size)`` of the bytes.

    Raises:
        OSError: reading or writing failed (``dst`` may then be partial: write it under a
            temporary name).
    """
    digest = xxhash.xxh3_128()
    size = 0
    with Path(src).open("rb") as fin, Path(dst).open("wb") as fout:
        for chunk in _chunks(fin):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return digest.hexdigest(), size
