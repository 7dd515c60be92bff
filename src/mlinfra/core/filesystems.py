"""Recognising network and FUSE file systems, where SQLite must never live.

SQLite's locking relies on POSIX advisory locks that NFS, SMB, Google Drive's FUSE mount,
blobfuse and similar file systems implement partially or not at all; a database there can be
corrupted by two writers, or by a sync client copying it mid-write. mlinfra keeps databases on
local disk and copies consistent snapshots elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Mount", "find_mount", "network_filesystem_reason", "read_mounts"]

_NETWORK_TYPES = {
    "nfs",
    "nfs4",
    "cifs",
    "smb",
    "smb2",
    "smb3",
    "smbfs",
    "afs",
    "9p",
    "ceph",
    "glusterfs",
    "lustre",
    "gpfs",
    "beegfs",
    "davfs",
    "ncpfs",
    "sshfs",
    "virtiofs",
    "vboxsf",
    "drvfs",
}
_DRIVE_PREFIXES = ("/content/drive", "/gdrive", "/mnt/gdrive")


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/mounts``: where a file system is mounted and its type."""

    mount_point: str
    fs_type: str
    source: str


def read_mounts(mounts_file: str | os.PathLike[str] = "/proc/mounts") -> list[Mount]:
    """The mounted file systems (empty where the OS has no ``/proc/mounts``)."""
    try:
        text = Path(mounts_file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            point = fields[1].replace("\\040", " ")
            out.append(Mount(point, fields[2], fields[0]))
    return out


def find_mount(path: str | os.PathLike[str], mounts: list[Mount]) -> Mount | None:
    """The mount that holds ``path`` (the longest mount point that is a prefix of it)."""
    target = os.path.abspath(os.fspath(path))
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point.rstrip("/") or "/"
        inside = target == point or target.startswith(point + "/") or point == "/"
        if inside and (best is None or len(point) > len(best.mount_point.rstrip("/") or "/")):
            best = mount
    return best


def network_filesystem_reason(
    path: str | os.PathLike[str], mounts: list[Mount] | None = None
) -> str | None:
    """Why ``path`` is on a network or FUSE file system, or ``None`` when it is on local disk.

    Args:
        path: A file or folder (it need not exist yet).
        mounts: The mount table (default: read from ``/proc/mounts``).
    """
    # realpath: a symlink from local disk onto a network mount leads to the network mount
    target = os.path.realpath(os.fspath(path))
    if any(target == p or target.startswith(p + "/") for p in _DRIVE_PREFIXES):
        return f"{target} is on Google Drive (a FUSE mount that syncs files while they change)"
    table = read_mounts() if mounts is None else mounts
    mount = find_mount(target, table)
    if mount is None:
        return None
    kind = mount.fs_type
    if kind in _NETWORK_TYPES or kind.split(".")[0] in _NETWORK_TYPES:
        return f"{target} is on a {kind} network file system mounted at {mount.mount_point}"
    if kind == "fuse" or kind.startswith("fuse."):
        return f"{target} is on a FUSE file system ({kind}) mounted at {mount.mount_point}"
    return None
