"""Backups to any fsspec file system that is not mounted: ``s3://``, ``gs://``, ``abfs://``,
``sftp://``, ``memory://`` and the rest (their own packages, such as ``s3fs``, provide them)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import xxhash

from mlinfra.core.imports import require
from mlinfra.errors import MissingDependencyError
from mlinfra.storage.base import BackupStore
from mlinfra.storage.paths import is_inside
from mlinfra.storage.scan import hash_file, is_internal_name

__all__ = ["FsspecBackupStore"]

_CHUNK = 1 << 20


class FsspecBackupStore(BackupStore):
    """A :class:`~mlinfra.storage.base.BackupStore` writing to an fsspec URL.

    The same guarantees as every store: staged uploads read back before a journal commits them,
    incremental copies, SQLite snapshots verified on local disk, verified restores. On object
    stores a rename is a server-side copy and delete, so committing a large folder takes longer
    than on a mounted disk, but an interrupted commit is still finished by the next call.

    Args:
        root_dir: The project root; it must exist.
        url: The backup root, such as ``s3://bucket/project`` or ``memory://backups``.
        storage_options: Passed to the fsspec file system (credentials, endpoint, ...).
        only_outputs: Back up only paths under the outputs folder.
        dry_run: Report what would be done; write nothing.
        outputs_dir: The outputs folder (default ``<root_dir>/outputs``).
        compare: ``"mtime"`` or ``"hash"``, how unchanged files are recognised.
        lock_timeout: Seconds to wait for another process backing up the same path.

    Raises:
        BackupPathError: ``root_dir`` does not exist.
        MissingDependencyError: fsspec, or the package of the URL's protocol, is not installed.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        url: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        only_outputs: bool = True,
        dry_run: bool = False,
        outputs_dir: str | os.PathLike[str] | None = None,
        compare: Literal["mtime", "hash"] = "mtime",
        lock_timeout: float = 600.0,
    ) -> None:
        super().__init__(
            root_dir,
            outputs_dir=outputs_dir,
            only_outputs=only_outputs,
            dry_run=dry_run,
            compare=compare,
            lock_timeout=lock_timeout,
        )
        fsspec = require("fsspec", feature="backups to fsspec URLs")
        try:
            fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        except ImportError as exc:
            protocol = url.split("://", 1)[0]
            known = require("fsspec.registry").known_implementations.get(protocol, {})
            package = str(known.get("class", protocol)).split(".", 1)[0]
            raise MissingDependencyError(package, feature=f"backups to {protocol}:// URLs") from exc
        self.url = url
        self.fs: Any = fs
        self._base = str(path).rstrip("/")
        self._local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))

    def __repr__(self) -> str:
        return f"FsspecBackupStore(root_dir={self.root_dir!r}, url={self.url!r})"

    # ---- primitives ------------------------------------------------------------------------

    def _loc(self, key: str) -> str:
        return f"{self._base}/{key}" if key else self._base

    def _display(self, loc: str) -> str:
        return str(self.fs.unstrip_protocol(loc))

    def _kind(self, loc: str) -> Literal["file", "dir"] | None:
        try:
            info = self.fs.info(loc)
        except FileNotFoundError:
            return None
        return "dir" if info.get("type") == "directory" else "file"

    def _read_bytes(self, loc: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(loc))
        except FileNotFoundError:
            return None

    def _write_bytes(self, loc: str, data: bytes) -> None:
        parent, _, name = loc.rpartition("/")
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.{name}.mlinfra-tmp-{uuid.uuid4().hex[:12]}"
        self.fs.pipe_file(tmp, data)
        self.fs.mv(tmp, loc)

    def _hash_remote(self, loc: str) -> str:
        digest = xxhash.xxh3_128()
        with self.fs.open(loc, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def _upload(self, local: Path, loc: str) -> tuple[str, str, int]:
        self.fs.makedirs(loc.rpartition("/")[0], exist_ok=True)
        sent = hash_file(local)
        size = local.stat().st_size
        self.fs.put_file(os.fspath(local), loc)
        return sent, self._hash_remote(loc), size

    def _download(self, loc: str, local: Path) -> str:
        with self.fs.open(loc, "rb") as handle, local.open("wb") as out:
            while chunk := handle.read(_CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        return hash_file(local)

    def _move(self, src: str, dst: str) -> None:
        self.fs.makedirs(dst.rpartition("/")[0], exist_ok=True)
        self.fs.mv(src, dst)

    def _remove(self, loc: str) -> None:
        if self.fs.exists(loc):
            self.fs.rm(loc, recursive=True)

    def _list_files(self, loc: str) -> list[str]:
        base = loc.rstrip("/") + "/"
        out = []
        for path in self.fs.find(loc):
            rel = str(path)[len(base) :] if str(path).startswith(base) else str(path)
            if not any(is_internal_name(part) for part in rel.split("/")):
                out.append(rel)
        return sorted(out)

    def _make_dirs(self, loc: str) -> None:
        self.fs.makedirs(loc, exist_ok=True)

    def _contains(self, path: Path) -> bool:
        return self._local and is_inside(path, Path(self._base), follow_links=True)
