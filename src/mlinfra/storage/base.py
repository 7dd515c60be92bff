"""The backup-store interface: what every store guarantees, written once over a few primitives.

A store mirrors files and folders of one project below a backup root (``<root>/outputs/hpo/...``
for ``<project>/outputs/hpo/...``). Next to each backed-up path ``<p>`` it keeps a manifest
``.<p>.mlinfra.json`` (each file's size, xxh3-128 content hash and change signature) and,
while a backup runs, a staging folder ``.<p>.mlinfra-staging`` and a journal
``.<p>.mlinfra-journal.json``.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from mlinfra.core.atomic import fsync_dir
from mlinfra.core.timeutil import format_utc
from mlinfra.errors import BackupError, BackupPathError
from mlinfra.storage.paths import is_drive_path, is_inside
from mlinfra.storage.result import BackupAction, BackupResult, Expect, failure
from mlinfra.storage.scan import LocalFile, hash_file, local_file, scan_local
from mlinfra.storage.sqlite import SQLITE_SIDECARS, is_sqlite_file, snapshot_sqlite, verify_sqlite

__all__ = ["BackupCallback", "BackupStore"]

#: ``callback(path, is_directory=None) -> bool``: what :meth:`BackupStore.as_backup_callback`
#: returns, and what the Optuna callbacks accept in place of a store.
BackupCallback = Callable[..., bool]

_FORMAT = "mlinfra-backup"
_MANIFEST = ".mlinfra.json"
_JOURNAL = ".mlinfra-journal.json"
_STAGING = ".mlinfra-staging"
_WORDS = {"file": "file", "dir": "folder"}
_COPY_ATTEMPTS = 3


def _check_expect(expect: str) -> None:
    if expect not in ("any", "file", "dir"):
        raise ValueError(f"expect must be 'any', 'file' or 'dir', got {expect!r}")


def _local_kind(path: Path) -> Literal["file", "dir"] | None:
    if path.is_dir():
        return "dir"
    if path.is_file():
        return "file"
    return None


def _entry_loc(base: str, rel: str) -> str:
    return base if rel == "" else f"{base}/{rel}"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class BackupStore(abc.ABC):
    """Backs up files and folders of one project to a backup root, and restores them.

    The contract every store keeps, whatever the target:

    * **Never deletes the previous good copy first.** Changed files are uploaded to a staging
      folder next to the backup and read back; only then is a journal written (the commit point)
      and the staged files renamed into place. A backup killed before the commit leaves the
      previous backup untouched; one killed after it is finished by the next backup or restore
      of the same path. Either way a restore gives the previous backup or the new one, never a
      mix.
    * **Incremental.** A file whose size and modification time (and ``-wal`` file, for a
      database) match the manifest is not copied again; with ``compare="hash"`` its xxh3-128 hash is
      compared instead.
    * **SQLite is snapshotted, never byte-copied**: through the online backup API, then checked
      (integrity, every row read back, an Optuna study loaded and its trials counted) before it
      is uploaded.
    * **Restore verifies** every file's hash against the manifest and reads databases back
      before it replaces the local copy, which is replaced only once the whole copy is verified.
    * Safe for several processes and threads of one machine (one lock per backed-up path);
      two machines must not back up the same path to the same root at the same time.

    Subclasses say where bytes go by implementing the primitives below over "locations": the
    target's own path strings, ``/``-separated.

    Args:
        root_dir: The project root; it must exist.
        outputs_dir: The outputs folder (default ``<root_dir>/outputs``; it may lie outside the
            root, as on Colab where ``/content/outputs`` is used). It is mirrored as ``outputs``
            below the backup root on every platform, so a backup made on Colab restores on a
            laptop.
        only_outputs: Back up only paths under ``outputs_dir`` (else anything under the root).
        dry_run: Report what would be done; write nothing.
        compare: ``"mtime"`` (size + modification time) or ``"hash"`` (xxh3-128 of the content)
            to decide that a file is unchanged.
        lock_timeout: Seconds to wait for another process backing up the same path.

    Raises:
        BackupPathError: ``root_dir`` does not exist.
        ValueError: ``compare`` is not ``"mtime"`` or ``"hash"``.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        *,
        outputs_dir: str | os.PathLike[str] | None = None,
        only_outputs: bool = True,
        dry_run: bool = False,
        compare: Literal["mtime", "hash"] = "mtime",
        lock_timeout: float = 600.0,
    ) -> None:
        root = Path(os.path.abspath(root_dir))
        if not root.is_dir():
            raise BackupPathError(
                "the project root does not exist; pass the folder that holds config/",
                path=root,
            )
        if compare not in ("mtime", "hash"):
            raise ValueError(f"compare must be 'mtime' or 'hash', got {compare!r}")
        self.root_dir = root
        self.outputs_dir = Path(os.path.abspath(outputs_dir or root / "outputs"))
        self.only_outputs = only_outputs
        self.dry_run = dry_run
        self.compare = compare
        self.lock_timeout = lock_timeout

    # ---- primitives a store implements -----------------------------------------------------

    @abc.abstractmethod
    def _loc(self, key: str) -> str:
        """The location of ``key`` (a ``/``-separated path relative to the backup root)."""

    @abc.abstractmethod
    def _display(self, loc: str) -> Path | str:
        """``loc`` as shown to people and put in results (a ``Path`` or a URL)."""

    @abc.abstractmethod
    def _kind(self, loc: str) -> Literal["file", "dir"] | None:
        """Whether ``loc`` is a file, a folder, or missing."""

    @abc.abstractmethod
    def _read_bytes(self, loc: str) -> bytes | None:
        """The content of the file ``loc``, or ``None`` when it does not exist."""

    @abc.abstractmethod
    def _write_bytes(self, loc: str, data: bytes) -> None:
        """Write ``loc`` atomically (a reader sees the old content or the new), making parents."""

    @abc.abstractmethod
    def _upload(self, local: Path, loc: str) -> tuple[str, str, int]:
        """Copy the local file to ``loc`` (making parents); return the hash of the bytes sent,
        the hash of ``loc`` read back, and the size."""

    @abc.abstractmethod
    def _download(self, loc: str, local: Path) -> str:
        """Copy ``loc`` to the new local file ``local`` (fsynced); return its hash read back."""

    @abc.abstractmethod
    def _move(self, src: str, dst: str) -> None:
        """Rename the file ``src`` over ``dst`` (making ``dst``'s parents)."""

    @abc.abstractmethod
    def _remove(self, loc: str) -> None:
        """Remove the file or folder ``loc``; nothing when it is missing."""

    @abc.abstractmethod
    def _list_files(self, loc: str) -> list[str]:
        """Every file below the folder ``loc``, relative and ``/``-separated (store files
        left out)."""

    @abc.abstractmethod
    def _make_dirs(self, loc: str) -> None:
        """Create the folder ``loc`` and its parents (nothing where folders are implicit)."""

    @abc.abstractmethod
    def _contains(self, path: Path) -> bool:
        """Whether the local ``path`` lies inside the backup root (it is a backup, not a source)."""

    def _flush(self, locs: list[str]) -> None:  # noqa: B027 - optional hook
        """Make the renames of ``locs`` durable (a mounted folder fsyncs their folders)."""

    # ---- paths -----------------------------------------------------------------------------

    def key_for(self, local_path: str | os.PathLike[str]) -> str:
        """The ``/``-separated path below the backup root that mirrors ``local_path``.

        Raises:
            BackupPathError: the path is on Google Drive or inside the backup root already,
                outside the project, or not under the outputs folder while ``only_outputs``.
        """
        raw = os.fspath(local_path)
        if is_drive_path(raw):
            raise BackupPathError(
                "is on Google Drive already: it is a backup location, not a local copy; back up "
                "the local path it mirrors instead",
                path=raw,
            )
        path = Path(os.path.abspath(raw))
        if self._contains(path):
            raise BackupPathError(
                f"is inside the backup root {self._display(self._loc(''))}: it is a backup, not "
                "a local copy; back up the local path it mirrors instead",
                path=path,
            )
        if is_inside(path, self.outputs_dir):
            top = (
                self.outputs_dir.relative_to(self.root_dir).as_posix()
                if is_inside(self.outputs_dir, self.root_dir)
                else self.outputs_dir.name
            )
            rel = path.relative_to(self.outputs_dir).as_posix()
            return top if rel == "." else f"{top}/{rel}"
        if is_inside(path, self.root_dir):
            if self.only_outputs:
                raise BackupPathError(
                    f"is not under the outputs folder {self.outputs_dir}; only outputs are backed "
                    "up (pass only_outputs=False, or --all-files, to back up other project files)",
                    path=path,
                )
            if path == self.root_dir:
                raise BackupPathError(
                    "is the project root itself; back up its folders one by one", path=path
                )
            return path.relative_to(self.root_dir).as_posix()
        raise BackupPathError(
            f"is outside the project {self.root_dir}; only project files are backed up",
            path=path,
        )

    def backup_path_for(self, local_path: str | os.PathLike[str]) -> Path | str:
        """Where ``local_path`` is (or would be) backed up.

        Raises:
            BackupPathError: see :meth:`key_for`.
        """
        return self._display(self._loc(self.key_for(local_path)))

    def _side(self, key: str, suffix: str) -> str:
        parent, _, name = key.rpartition("/")
        return self._loc(f"{parent}/.{name}{suffix}" if parent else f".{name}{suffix}")

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        from filelock import FileLock, Timeout

        folder = Path(tempfile.gettempdir()) / "mlinfra-backup-locks"
        folder.mkdir(exist_ok=True)
        digest = hashlib.sha256(str(self._display(self._loc(key))).encode()).hexdigest()[:32]
        lock = FileLock(folder / f"{digest}.lock", timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout:
            raise BackupError(
                f"another process has been backing up or restoring this path for more than "
                f"{self.lock_timeout:g} s (lock {lock.lock_file}); wait for it, or raise "
                "lock_timeout",
                path=str(self._display(self._loc(key))),
            ) from None
        try:
            yield
        finally:
            lock.release()

    # ---- manifest and journal --------------------------------------------------------------

    def _read_json(self, loc: str) -> dict[str, Any] | None:
        data = self._read_bytes(loc)
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict) or value.get("format") != _FORMAT:
            raise BackupError(
                "is not an mlinfra backup manifest or journal (it was written atomically, so "
                "something else wrote it); move it away and back up again",
                path=str(self._display(loc)),
            )
        return value

    def _manifest(self, key: str, *, pending: bool = False) -> dict[str, Any] | None:
        """The manifest of ``key``; with ``pending``, that of a committed but unfinished backup."""
        if pending:
            journal = self._read_json(self._side(key, _JOURNAL))
            if journal is not None:
                manifest: dict[str, Any] = journal["manifest"]
                return manifest
        return self._read_json(self._side(key, _MANIFEST))

    def _recover(self, key: str) -> None:
        """Finish a committed backup of ``key`` that was interrupted, or drop an uncommitted one."""
        journal = self._read_json(self._side(key, _JOURNAL))
        if journal is not None:
            self._apply(key, journal)
        elif self._kind(self._side(key, _STAGING)) is not None:
            self._remove(self._side(key, _STAGING))

    def _staged(self, key: str, rel: str) -> str:
        return f"{self._side(key, _STAGING)}/{rel or key.rpartition('/')[2]}"

    def _apply(self, key: str, journal: dict[str, Any], encoded: bytes | None = None) -> None:
        base = self._loc(key)
        moved = []
        for rel in journal["put"]:
            staged, target = self._staged(key, rel), _entry_loc(base, rel)
            if self._kind(staged) == "file":
                self._move(staged, target)
                moved.append(target)
            elif self._kind(target) != "file":
                raise BackupError(
                    f"the journal of an interrupted backup lists {rel or key}, which is neither "
                    f"staged nor in place; delete {self._display(self._side(key, _JOURNAL))} and "
                    "back up again",
                    path=str(self._display(base)),
                )
        for rel in journal["delete"]:
            self._remove(_entry_loc(base, rel))
        manifest = journal["manifest"]
        if manifest["kind"] == "dir":
            self._make_dirs(base)
            # folders holding files exist once those are moved in; make the new (empty) ones
            for folder in journal.get("mkdirs", manifest["dirs"]):
                self._make_dirs(_entry_loc(base, folder))
        self._flush(moved)
        self._write_bytes(self._side(key, _MANIFEST), encoded or _dumps(manifest))
        self._remove(self._side(key, _JOURNAL))
        self._remove(self._side(key, _STAGING))

    # ---- backup ----------------------------------------------------------------------------

    def backup(self, local_path: str | os.PathLike[str], expect: Expect = "any") -> BackupResult:
        """Back up a file or folder; only what changed since the last backup is copied.

        Args:
            local_path: A file or folder of the project (under the outputs folder unless
                ``only_outputs`` is false).
            expect: ``"file"`` or ``"dir"`` to refuse anything else, ``"any"`` to take either.

        Returns:
            What was done. A refused path, a missing path or a failed copy gives ``ok=False``
            with the error attached (:meth:`BackupResult.raise_for_error` raises it); the
            previous backup is then untouched.

        Raises:
            ValueError: ``expect`` is not ``"any"``, ``"file"`` or ``"dir"``.
        """
        _check_expect(expect)
        raw = Path(local_path)
        try:
            key = self.key_for(raw)
        except BackupPathError as exc:
            return failure(raw, raw, exc)
        local = Path(os.path.abspath(raw))
        dst = self._display(self._loc(key))
        kind = _local_kind(local)
        if kind is None:
            wanted = "" if expect == "any" else f" (a {_WORDS[expect]} was expected)"
            error = BackupError(f"does not exist{wanted}; nothing was backed up", path=local)
            return failure(local, dst, error, missing=True)
        if expect != "any" and kind != expect:
            error = BackupError(
                f"is a {_WORDS[kind]}, but a {_WORDS[expect]} was expected; nothing was backed up",
                path=local,
            )
            return failure(local, dst, error)
        try:
            with self._locked(key):
                return self._backup(local, key, kind)
        except (BackupError, BackupPathError) as exc:
            return failure(local, dst, exc)
        except OSError as exc:
            error = BackupError(f"backup failed ({exc}); the previous backup is intact", path=local)
            return failure(local, dst, error)

    def _unchanged(self, lf: LocalFile, entry: dict[str, Any] | None) -> bool:
        if entry is None:
            return False
        if self.compare == "hash" and not entry.get("sqlite"):
            return bool(hash_file(lf.path) == entry["xxh3"])
        return bool(list(lf.signature) == entry["signature"])

    def _backup(self, local: Path, key: str, kind: Literal["file", "dir"]) -> BackupResult:
        base = self._loc(key)
        dst = self._display(base)
        if not self.dry_run:
            self._recover(key)
        old = self._manifest(key, pending=self.dry_run)
        there: str | None = old["kind"] if old is not None else self._kind(base)
        if there is not None and there != kind:
            raise BackupError(
                f"the backup {dst} is a {_WORDS[there]}, but the local "
                f"path is a {_WORDS[kind]}; move the backup away, or back up to another root",
                path=local,
            )
        folders: list[str] = []
        left_out: list[str] = []
        if kind == "file":
            files = {"": local_file(local)}
        else:
            files, folders, left_out = scan_local(local)
        old_entries: dict[str, Any] = old["entries"] if old else {}
        changed = [
            rel for rel, lf in files.items() if not self._unchanged(lf, old_entries.get(rel))
        ]
        deleted = sorted(set(old_entries) - set(files))
        note = f"; not followed: {', '.join(left_out[:5])}" if left_out else ""
        if self.dry_run:
            return BackupResult(
                True,
                BackupAction.SKIPPED,
                local,
                dst,
                f"dry run: would copy {len(changed)} file(s), delete {len(deleted)}, leave "
                f"{len(files) - len(changed)} unchanged{note}",
                copied=len(changed),
                skipped=len(files) - len(changed),
                deleted=len(deleted),
                dry_run=True,
            )
        if old is not None and not changed and not deleted and old.get("dirs") == folders:
            return BackupResult(
                True,
                BackupAction.SKIPPED,
                local,
                dst,
                f"unchanged since the last backup ({len(files)} file(s)){note}",
                skipped=len(files),
            )
        entries = {
            rel: {**old_entries[rel], "signature": list(lf.signature), "mtime_ns": lf.mtime_ns}
            for rel, lf in files.items()
            if rel not in changed
        }
        verified: list[str] = []
        nbytes = 0
        self._remove(self._side(key, _STAGING))
        for rel in changed:
            entry = self._stage(files[rel], self._staged(key, rel))
            entry["history"] = _history(old_entries.get(rel))
            entries[rel] = entry
            nbytes += entry["size"]
            if entry["sqlite"]:
                verified.append(f"{rel or local.name}: {entry['sqlite']}")
        manifest = {
            "format": _FORMAT,
            "version": 1,
            "kind": kind,
            "created_at": format_utc(),
            "source": str(local),
            "entries": entries,
            "dirs": folders,
        }
        known = set(old.get("dirs", ())) if old is not None else set()
        mkdirs = [folder for folder in folders if folder not in known]
        journal = {
            "format": _FORMAT,
            "manifest": manifest,
            "put": changed,
            "delete": deleted,
            "mkdirs": mkdirs,
        }
        encoded = _dumps(manifest)  # once: a manifest of thousands of files takes ms to encode
        self._write_bytes(  # the commit point
            self._side(key, _JOURNAL),
            b'{"delete":%s,"format":%s,"manifest":%s,"mkdirs":%s,"put":%s}'
            % (_dumps(deleted), _dumps(_FORMAT), encoded, _dumps(mkdirs), _dumps(changed)),
        )
        self._apply(key, journal, encoded)
        return BackupResult(
            True,
            BackupAction.COPIED,
            local,
            dst,
            f"copied {len(changed)} file(s), {len(files) - len(changed)} unchanged, "
            f"{len(deleted)} deleted{note}",
            copied=len(changed),
            skipped=len(files) - len(changed),
            deleted=len(deleted),
            bytes_copied=nbytes,
            verified=tuple(verified),
        )

    def _stage(self, lf: LocalFile, staged: str) -> dict[str, Any]:
        """Upload one changed file to ``staged`` and read it back; return its manifest entry."""
        path = lf.path
        for _ in range(_COPY_ATTEMPTS):
            before = local_file(path)
            detail = None
            if is_sqlite_file(path):
                with tempfile.TemporaryDirectory(
                    dir=path.parent, prefix=f".{path.name}.mlinfra-snap-"
                ) as tmp:
                    snap = Path(tmp) / path.name
                    snapshot_sqlite(path, snap)
                    detail = verify_sqlite(snap)
                    sent, stored, size = self._upload(snap, staged)
            else:
                sent, stored, size = self._upload(path, staged)
            if sent != stored:
                raise BackupError(
                    f"the copy at {self._display(staged)} does not read back as written; the "
                    "backup target is failing, the previous backup is intact",
                    path=path,
                )
            if detail is not None or local_file(path).signature == before.signature:
                return {
                    "size": size,
                    "xxh3": sent,
                    "signature": list(before.signature),
                    "mtime_ns": before.mtime_ns,
                    "sqlite": detail,
                }
        raise BackupError(
            f"changed while it was being copied, {_COPY_ATTEMPTS} times in a row; back it up "
            "when the process writing it is done",
            path=path,
        )

    # ---- restore ---------------------------------------------------------------------------

    def restore(self, local_path: str | os.PathLike[str], expect: Expect = "any") -> BackupResult:
        """Restore a file or folder from its backup; the local copy is replaced only once the
        whole copy is verified.

        Args:
            local_path: The local file or folder to restore (it need not exist).
            expect: ``"file"`` or ``"dir"`` to refuse a backup of the other kind.

        Returns:
            What was done; ``action=missing`` when there is no backup. Failures give ``ok=False``
            with the error attached, and the local copy untouched.

        Raises:
            ValueError: ``expect`` is not ``"any"``, ``"file"`` or ``"dir"``.
        """
        return self._restore_entry(local_path, expect, only_if_needed=False)

    def ensure_local(
        self, local_path: str | os.PathLike[str], expect: Expect = "any"
    ) -> BackupResult:
        """Restore on start: restore ``local_path`` when it is missing or older than its backup.

        Older means no file holds work the backup lacks, and some file is missing or is a
        version the backup held before (the manifest remembers each file's last few versions).
        No clock is compared, so a clock that stepped back cannot make newer work look older.
        Nothing happens (``skipped``) when there is no backup yet, when the local copy is the
        backup's, or when some local file is new work (it is kept: back it up, or restore).

        Raises:
            ValueError: ``expect`` is not ``"any"``, ``"file"`` or ``"dir"``.
        """
        return self._restore_entry(local_path, expect, only_if_needed=True)

    def backup_exists(self, local_path: str | os.PathLike[str]) -> bool:
        """Whether ``local_path`` has a backup (``False`` for a path that cannot have one)."""
        try:
            return self._kind(self._loc(self.key_for(local_path))) is not None
        except BackupPathError:
            return False

    def _restore_entry(
        self, local_path: str | os.PathLike[str], expect: Expect, *, only_if_needed: bool
    ) -> BackupResult:
        _check_expect(expect)
        raw = Path(local_path)
        try:
            key = self.key_for(raw)
        except BackupPathError as exc:
            return failure(raw, raw, exc)
        local = Path(os.path.abspath(raw))
        src = self._display(self._loc(key))
        try:
            with self._locked(key):
                return self._restore(local, key, expect, only_if_needed)
        except (BackupError, BackupPathError) as exc:
            return failure(src, local, exc)
        except OSError as exc:
            error = BackupError(f"restore failed ({exc}); the local copy is untouched", path=local)
            return failure(src, local, error)

    def _restore(self, local: Path, key: str, expect: Expect, only_if_needed: bool) -> BackupResult:
        base = self._loc(key)
        src = self._display(base)
        if not self.dry_run:
            self._recover(key)
        manifest = self._manifest(key, pending=self.dry_run)
        there = self._kind(base)
        if there is None:
            if only_if_needed:
                return BackupResult(True, BackupAction.SKIPPED, src, local, "no backup yet")
            error = BackupError(
                f"has no backup (nothing at {src}); nothing was restored", path=local
            )
            return failure(src, local, error, missing=True)
        kind = manifest["kind"] if manifest else there
        if expect != "any" and kind != expect:
            raise BackupError(
                f"the backup {src} is a {_WORDS[kind]}, but a {_WORDS[expect]} was expected; "
                "nothing was restored",
                path=local,
            )
        here = _local_kind(local)
        if here is not None and here != kind:
            raise BackupError(
                f"is a {_WORDS[here]}, but its backup {src} is a {_WORDS[kind]}; move it away "
                "first; nothing was restored",
                path=local,
            )
        if manifest is not None:
            entries: dict[str, Any] = manifest["entries"]
            folders: list[str] = manifest["dirs"]
        else:
            entries = dict.fromkeys([""] if kind == "file" else self._list_files(base))
            folders = []
        why = "restored"
        if only_if_needed:
            if here is not None:
                if manifest is None:
                    return BackupResult(
                        True,
                        BackupAction.SKIPPED,
                        src,
                        local,
                        "the local copy exists and the backup has no manifest to date it",
                    )
                new, stale = _compare_local(local, here, entries)
                if new:
                    shown = ", ".join(rel or local.name for rel in new[:3])
                    more = f" and {len(new) - 3} more" if len(new) > 3 else ""
                    return BackupResult(
                        True,
                        BackupAction.SKIPPED,
                        src,
                        local,
                        f"the local copy has work the backup does not ({shown}{more}): kept; back "
                        "it up, or restore it to replace it with the backup",
                    )
                if not stale:
                    return BackupResult(
                        True, BackupAction.SKIPPED, src, local, "the local copy is up to date"
                    )
                why = "the local copy was older than the backup: restored"
            else:
                why = "the local copy was missing: restored"
        if self.dry_run:
            return BackupResult(
                True,
                BackupAction.SKIPPED,
                src,
                local,
                f"dry run: would restore {len(entries)} file(s)",
                copied=len(entries),
                dry_run=True,
            )
        local.parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:12]
        staging = local.parent / f".{local.name}.mlinfra-restore-{token}"
        verified: list[str] = []
        nbytes = 0
        try:
            if kind == "dir":
                staging.mkdir()
                for folder in folders:
                    (staging / folder).mkdir(parents=True, exist_ok=True)
            for rel, entry in entries.items():
                dest = staging if rel == "" else staging / rel
                detail = self._fetch(key, rel, entry, _entry_loc(base, rel), dest)
                nbytes += dest.stat().st_size
                if detail:
                    verified.append(f"{rel or local.name}: {detail}")
            _swap_in(staging, local, kind)
        except BaseException:
            if staging.is_dir():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.unlink(missing_ok=True)
            raise
        legacy = "" if manifest else " (no mlinfra manifest: sizes and databases checked only)"
        return BackupResult(
            True,
            BackupAction.COPIED,
            src,
            local,
            f"{why} {len(entries)} file(s), verified{legacy}",
            copied=len(entries),
            bytes_copied=nbytes,
            verified=tuple(verified),
        )

    def _fetch(
        self, key: str, rel: str, entry: dict[str, Any] | None, loc: str, dest: Path
    ) -> str | None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        sha = self._download(loc, dest)
        if entry is not None and sha != entry["xxh3"]:
            newer = self._entry_elsewhere(key if rel == "" else f"{key}/{rel}", sha)
            if newer is None:
                raise BackupError(
                    f"the backup copy {self._display(loc)} does not match its manifest (hash "
                    f"{sha[:12]}… instead of {entry['xxh3'][:12]}…): the backup is damaged or "
                    "was changed by something else; the local copy is untouched",
                    path=str(self._display(self._loc(key))),
                )
            entry = newer
        detail = None
        if (entry is not None and entry.get("sqlite")) or is_sqlite_file(dest):
            detail = verify_sqlite(dest)
        if entry is not None:
            os.utime(dest, ns=(entry["mtime_ns"], entry["mtime_ns"]))
        return detail

    def _entry_elsewhere(self, full_key: str, sha: str) -> dict[str, Any] | None:
        """The entry of another manifest covering ``full_key`` (its own, or a folder's above it)
        that matches ``sha``: the file was backed up on its own after the folder was."""
        parts = full_key.split("/")
        for cut in range(len(parts), 0, -1):
            owner, rel = "/".join(parts[:cut]), "/".join(parts[cut:])
            manifest = self._manifest(owner)
            entry = manifest["entries"].get(rel) if manifest else None
            if entry is not None and entry["xxh3"] == sha:
                found: dict[str, Any] = entry
                return found
        return None

    # ---- callbacks -------------------------------------------------------------------------

    def as_backup_callback(self) -> BackupCallback:
        """``callback(path, is_directory=None) -> bool``: back up ``path``, ``True`` on success.

        ``is_directory`` (``True``/``False``) sets ``expect`` to ``dir``/``file``; it is what the
        Optuna backup callbacks pass. A failure returns ``False``; use :meth:`backup` to see why.
        """

        def backup_to_drive(path: str | os.PathLike[str], is_directory: bool | None = None) -> bool:
            expect: Expect = "any" if is_directory is None else ("dir" if is_directory else "file")
            return self.backup(path, expect=expect).ok

        return backup_to_drive

    def as_restore_callback(self) -> BackupCallback:
        """``callback(path, is_directory=None) -> bool``: restore ``path``, ``True`` on success."""

        def restore_from_drive(
            path: str | os.PathLike[str], is_directory: bool | None = None
        ) -> bool:
            expect: Expect = "any" if is_directory is None else ("dir" if is_directory else "file")
            return self.restore(path, expect=expect).ok

        return restore_from_drive


#: How many earlier versions of a file a manifest entry remembers, to recognise a stale copy.
_HISTORY = 8


def _history(previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ``history`` of an entry that replaces ``previous``: its content hash and signature
    first, then what it remembered, at most ``_HISTORY``."""
    if previous is None:
        return []
    earlier = {"xxh3": previous["xxh3"], "signature": previous["signature"]}
    return [earlier, *previous.get("history", ())][:_HISTORY]


def _compare_local(local: Path, kind: str, entries: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Which local files hold work the backup lacks, and which are stale or missing.

    No clock is read or compared: a file is the backup's when its change signature or its
    content hash is the entry's; stale when it is one the backup held before (its ``history``)
    or missing; new work otherwise (also a file the backup never had).

    Returns:
        ``(new, stale)``: relative paths (``""`` for a single file), each sorted.
    """
    files = {"": local_file(local)} if kind == "file" else scan_local(local)[0]
    new: list[str] = []
    stale = sorted(set(entries) - set(files))
    for rel, lf in sorted(files.items()):
        entry = entries.get(rel)
        if entry is None:
            new.append(rel)
            continue
        signature = list(lf.signature)
        if signature == entry["signature"]:
            continue
        sha = hash_file(lf.path)
        if sha == entry["xxh3"]:
            continue
        earlier = entry.get("history", ())
        if any(h["xxh3"] == sha or h["signature"] == signature for h in earlier):
            stale.append(rel)
        else:
            new.append(rel)
    return new, sorted(stale)


def _swap_in(staging: Path, local: Path, kind: str) -> None:
    """Put the verified copy ``staging`` in place of ``local`` (its previous content goes only
    once the new content is in place)."""
    if kind == "file":
        for suffix in SQLITE_SIDECARS:
            # the old database's journal must not be applied to the restored one
            Path(f"{local}{suffix}").unlink(missing_ok=True)
        staging.replace(local)
    elif local.exists():
        old = local.parent / f".{local.name}.mlinfra-old-{uuid.uuid4().hex[:12]}"
        local.replace(old)
        staging.replace(local)
        shutil.rmtree(old)
    else:
        staging.replace(local)
    fsync_dir(local.parent)
