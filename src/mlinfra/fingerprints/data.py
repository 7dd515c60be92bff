"""Data fingerprints: what the bytes of a file or a folder are, at the speed of reading them.

A file's content is hashed with xxh3-128 (the reading is pipelined: one thread reads the next
block while the hash of the previous one runs, with the GIL released, so a large file hashes at
close to the speed of ``cat``). A folder's fingerprint is the sha256 of its manifest: one line
``<relative POSIX path> NUL <size> NUL <xxh3-128 of the content>`` per file, sorted by path, so it
changes when a file's content, name or place changes, and never because of a touch, a copy or the
order the file system lists entries in. Empty folders are not part of it.

A stat cache makes an unchanged tree cheap to fingerprint again: for each file it remembers size,
``mtime_ns``, ``ctime_ns`` and inode with the content hash, and a file whose four values are
unchanged is not read again. A file modified within :data:`RACY_WINDOW_NS` of the scan that
recorded it is not cached (its timestamp could hide a second write in the same tick; git calls
this "racily clean"). The cache is one JSON file per fingerprinted path, written atomically; a
damaged cache file is ignored and rewritten, never trusted.

Symbolic links are followed (a dataset folder often links to shared storage); a link loop or a
broken link is an error. A file that changes while it is being read, or a folder whose listing
changes during the fingerprint, raises :class:`~mlinfra.errors.DataChangedError`: the result
would mix two versions of the data.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import translate
from pathlib import Path
from typing import Any

import xxhash

from mlinfra.core.atomic import atomic_write_text
from mlinfra.errors import DataChangedError, FingerprintError

__all__ = [
    "DATA_SCHEMA",
    "DEFAULT_IGNORE",
    "RACY_WINDOW_NS",
    "DataFingerprint",
    "FileEntry",
    "data_fingerprint",
    "hash_file",
]

DATA_SCHEMA = "mlinfra.data/1"
#: Names never part of a data fingerprint (matched against each file or folder name).
DEFAULT_IGNORE: tuple[str, ...] = (
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".ipynb_checkpoints",
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
)
#: A file modified less than this long before a scan is re-read next time instead of cached.
RACY_WINDOW_NS = 2_000_000_000

_BLOCK = 8 << 20  # read size of the pipelined path; 4 to 8 MiB measured fastest here
_SMALL = 16 << 20  # files up to this size are read in one call, without a thread
_CACHE_SCHEMA = "mlinfra.data-stat-cache/2"

Progress = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)``, called as content is read."""


@dataclass(frozen=True)
class FileEntry:
    """One file of a fingerprint: its path relative to the root, size and content hash."""

    path: str
    size: int
    digest: str


@dataclass(frozen=True)
class DataFingerprint:
    """The fingerprint of a file or folder.

    Attributes:
        hash: 64 hex characters (sha256 of the manifest).
        path: The path that was fingerprinted, as given (made absolute).
        kind: ``file`` or ``dir``.
        files: The number of files.
        bytes: Their total size.
        bytes_read: How many bytes were read (0 when every file came from the stat cache).
        entries: Every file, sorted by path.
    """

    hash: str
    path: str
    kind: str
    files: int
    bytes: int
    bytes_read: int
    entries: tuple[FileEntry, ...] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description without the file list."""
        return {
            "hash": self.hash,
            "path": self.path,
            "kind": self.kind,
            "files": self.files,
            "bytes": self.bytes,
        }


# ---- hashing one file -----------------------------------------------------------------------


def _changed(path: Path, before: os.stat_result, after: os.stat_result, read: int) -> str | None:
    if read != before.st_size:
        return f"{read} bytes were read but the file had {before.st_size}"
    if after.st_size != before.st_size or after.st_mtime_ns != before.st_mtime_ns:
        return "its size or modification time changed while it was read"
    return None


def _hash_fd(fd: int, size: int, progress: Callable[[int], None] | None) -> tuple[str, int]:
    """xxh3-128 of everything readable from ``fd``; returns (hex digest, bytes read)."""
    hasher = xxhash.xxh3_128()
    if size <= _SMALL:
        # one read of size + 1 bytes sees the whole file and whether it grew; a short read
        # (only at the end of a regular file, or after a signal) is continued to the end
        total = 0
        want = size + 1
        while True:
            chunk = os.read(fd, want)
            if not chunk:
                break
            hasher.update(chunk)
            total += len(chunk)
            if total == size and len(chunk) < want:
                break
            want = _BLOCK
        if progress is not None:
            progress(total)
        return hasher.hexdigest(), total
    # Pipelined: read block i+1 while block i is hashed (xxhash releases the GIL).
    buffers = (bytearray(_BLOCK), bytearray(_BLOCK))
    views = (memoryview(buffers[0]), memoryview(buffers[1]))
    total = 0
    pending: Future[None] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlinfra-hash") as pool:
        turn = 0
        with os.fdopen(os.dup(fd), "rb", buffering=0) as handle:
            while True:
                count = handle.readinto(buffers[turn])
                if pending is not None:
                    pending.result()
                    pending = None
                if not count:
                    break
                total += count
                pending = pool.submit(hasher.update, views[turn][:count])
                if progress is not None:
                    progress(count)
                turn ^= 1
    return hasher.hexdigest(), total


def hash_file(
    path: str | os.PathLike[str],
    *,
    expected: os.stat_result | None = None,
    progress: Callable[[int], None] | None = None,
) -> str:
    """The xxh3-128 hex digest of a file's content.

    Args:
        path: The file (symbolic links are followed).
        expected: The file's stat taken earlier; the content must still match it.
        progress: Called with the number of bytes read by each step.

    Raises:
        FingerprintError: the file is missing or unreadable.
        DataChangedError: the file changed while it was read (or since ``expected``).
    """
    target = Path(path)
    try:
        # O_NONBLOCK: a FIFO put in a file's place must not block the open (it is refused
        # below); on a regular file the flag changes nothing
        fd = os.open(
            target, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except FileNotFoundError:
        if expected is not None:
            raise DataChangedError(
                "the file disappeared while the data was being fingerprinted; run it again "
                "once writers have finished",
                path=target,
            ) from None
        raise FingerprintError("no such file", path=target) from None
    except OSError as exc:
        raise FingerprintError(f"cannot open: {exc.strerror or exc}", path=target) from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise FingerprintError("not a regular file", path=target)
        if expected is not None and (
            before.st_size != expected.st_size or before.st_mtime_ns != expected.st_mtime_ns
        ):
            raise DataChangedError(
                "the file changed while the data was being fingerprinted; run it again once "
                "writers have finished",
                path=target,
            )
        try:
            digest, read = _hash_fd(fd, before.st_size, progress)
            after = os.fstat(fd)
        except OSError as exc:
            raise FingerprintError(
                f"reading failed part-way: {exc.strerror or exc}", path=target
            ) from None
        problem = _changed(target, before, after, read)
        if problem is not None:
            raise DataChangedError(
                f"{problem}; the fingerprint would mix two versions. Run it again once writers "
                "have finished",
                path=target,
            )
        return digest
    finally:
        os.close(fd)


# ---- walking a tree -------------------------------------------------------------------------


def _ignore_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """One compiled test for every pattern (``fnmatch`` per name and pattern is the slow part
    of a warm scan)."""
    compiled = [translate(p) for p in patterns]
    if not compiled:
        return lambda _name: False
    regex = re.compile("|".join(f"(?:{c})" for c in compiled))
    return lambda name: regex.match(name) is not None


def _walk(root: Path, ignore: tuple[str, ...]) -> tuple[list[tuple[str, str, os.stat_result]], int]:
    """Every regular file under ``root`` (links followed) as ``(relative path, path, stat)``,
    sorted by relative path, and the latest ``ctime_ns`` of any file or folder seen."""
    ignored = _ignore_matcher(ignore)
    try:
        root_stat = root.stat()
    except OSError as exc:
        raise FingerprintError(f"cannot read folder: {exc.strerror or exc}", path=root) from None
    files: list[tuple[str, str, os.stat_result]] = []
    latest = root_stat.st_ctime_ns
    ancestors: list[tuple[int, int]] = [(root_stat.st_dev, root_stat.st_ino)]

    def visit(folder: str, prefix: str) -> None:
        nonlocal latest
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            raise FingerprintError(
                f"cannot list folder: {exc.strerror or exc}", path=folder
            ) from None
        for entry in entries:
            if ignored(entry.name):
                continue
            path = entry.path
            try:
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                if entry.is_symlink():
                    raise FingerprintError(
                        f"broken symbolic link (to {os.readlink(path)!r}); remove it or "  # noqa: PTH115
                        "fix its target",
                        path=path,
                    ) from None
                raise DataChangedError(
                    "the file disappeared while the data was being fingerprinted", path=path
                ) from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # a link that points at itself
                    raise FingerprintError("symbolic link loop", path=path) from None
                raise FingerprintError(f"cannot stat: {exc.strerror or exc}", path=path) from None
            if st.st_ctime_ns > latest:
                latest = st.st_ctime_ns
            if stat.S_ISDIR(st.st_mode):
                ident = (st.st_dev, st.st_ino)
                if ident in ancestors:
                    raise FingerprintError(
                        "symbolic link loop: this folder links back to one of its parents",
                        path=path,
                    )
                ancestors.append(ident)
                visit(path, f"{prefix}{entry.name}/")
                ancestors.pop()
            elif stat.S_ISREG(st.st_mode):
                files.append((f"{prefix}{entry.name}", path, st))
            # sockets, FIFOs and devices are not data

    visit(str(root), "")
    # sorted by the full relative path, so the order never depends on the file system
    files.sort(key=lambda item: item[0])
    return files, latest


# ---- the stat cache -------------------------------------------------------------------------


def _cache_file(cache_dir: Path, root: Path) -> Path:
    key = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return cache_dir / f"data-{key}.json"


def _load_cache(path: Path, root: Path) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(raw, dict)
        or raw.get("schema") != _CACHE_SCHEMA
        or raw.get("root") != str(root)
        or not isinstance(raw.get("files"), dict)
    ):
        return {}
    files: dict[str, str] = raw["files"]
    return files


def _signature(st: os.stat_result) -> str:
    """What must not change for a cached digest to hold: size, mtime, ctime, inode."""
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:"


def _cached_digest(cache: dict[str, str], rel: str, signature: str) -> str | None:
    # one string per file ("<signature><digest>"): the cache of a large tree parses fast
    row = cache.get(rel)
    if isinstance(row, str) and row.startswith(signature) and len(row) == len(signature) + 32:
        return row[len(signature) :]
    return None


# ---- the fingerprint ------------------------------------------------------------------------


def _manifest_hash(kind: str, entries: list[FileEntry]) -> str:
    digest = hashlib.sha256(f"{DATA_SCHEMA}\n{kind}\n".encode())
    for item in entries:
        digest.update(f"{item.path}\0{item.size}\0{item.digest}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def data_fingerprint(
    path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    ignore: Iterable[str] = DEFAULT_IGNORE,
    progress: Progress | None = None,
) -> DataFingerprint:
    """Fingerprint the content of a file or a folder (see the module docstring).

    Args:
        path: A file or a folder.
        cache_dir: Where the stat cache lives (a local folder; created when missing). Without
            it every file is read.
        ignore: Glob patterns of file and folder names to leave out.
        progress: Called as ``progress(bytes_done, bytes_total)`` while content is read.

    Raises:
        FingerprintError: the path does not exist, a file or folder cannot be read, a symbolic
            link is broken or loops.
        DataChangedError: a file or the folder's listing changed during the fingerprint.
    """
    given = Path(os.path.abspath(path))
    try:
        top = given.stat()
    except FileNotFoundError:
        hint = " (a broken symbolic link)" if given.is_symlink() else ""
        raise FingerprintError(
            f"no such file or folder{hint}; check the path",
            path=given,
        ) from None
    except OSError as exc:
        if exc.errno == 40:
            raise FingerprintError("symbolic link loop", path=given) from None
        raise FingerprintError(f"cannot stat: {exc.strerror or exc}", path=given) from None

    patterns = tuple(ignore)
    scan_started = time.time_ns()
    if stat.S_ISREG(top.st_mode):
        kind = "file"
        listing = [(given.name, str(given), top)]
        latest_change = top.st_ctime_ns
    elif stat.S_ISDIR(top.st_mode):
        kind = "dir"
        listing, latest_change = _walk(given, patterns)
    else:
        raise FingerprintError("neither a file nor a folder", path=given)
    cache_path = _cache_file(Path(cache_dir), given) if cache_dir is not None else None
    cache = _load_cache(cache_path, given) if cache_path is not None else {}

    total = sum(st.st_size for _, _, st in listing)
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    entries: list[FileEntry] = []
    fresh: dict[str, str] = {}
    bytes_read = 0
    for rel, file_path, st in listing:
        signature = _signature(st)
        digest = _cached_digest(cache, rel, signature)
        if digest is None:
            digest = hash_file(file_path, expected=st, progress=step)
            bytes_read += st.st_size
        else:
            step(st.st_size)
        entries.append(FileEntry(rel if kind == "dir" else "", st.st_size, digest))
        if st.st_mtime_ns < scan_started - RACY_WINDOW_NS:
            fresh[rel] = signature + digest

    if kind == "dir" and (bytes_read or latest_change >= scan_started - RACY_WINDOW_NS):
        # Content was read, or something changed around the scan: the listing must not have
        # moved under us (same files, sizes and times). An old, unchanged tree needs no second
        # scan: a change made during the scan to a file or folder not yet seen would show a
        # ctime after the scan started; one made after it was seen leaves the older state whole.
        again = [(rel, st.st_size, st.st_mtime_ns) for rel, _, st in _walk(given, patterns)[0]]
        before = [(rel, st.st_size, st.st_mtime_ns) for rel, _, st in listing]
        if again != before:
            changed = sorted(set(again).symmetric_difference(before))
            first = changed[0][0] if changed else "?"
            raise DataChangedError(
                f"the folder changed while it was being fingerprinted ({len(changed)} "
                f"difference(s), first: {first}); run it again once writers have finished",
                path=given,
            )

    if cache_path is not None and fresh != cache:
        _save_cache(cache_path, given, fresh)

    return DataFingerprint(
        hash=_manifest_hash(kind, entries),
        path=str(given),
        kind=kind,
        files=len(entries),
        bytes=total,
        bytes_read=bytes_read,
        entries=tuple(entries),
    )


def _save_cache(path: Path, root: Path, files: dict[str, str]) -> None:
    """Write the stat cache; a cache that cannot be written only costs speed next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            {"schema": _CACHE_SCHEMA, "root": str(root), "files": files},
            separators=(",", ":"),
        )
        atomic_write_text(path, text)
    except OSError:
        return
