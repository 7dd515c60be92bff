"""Path tests the stores share: Google Drive paths, and containment."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DRIVE_MOUNT_POINT", "is_drive_path", "is_inside"]

#: Where Colab mounts Google Drive (``<mount point>/MyDrive`` is the user's Drive).
DRIVE_MOUNT_POINT = "/content/drive"


def is_drive_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is on Colab's Google Drive mount (``/content/drive/...``).

    Relative paths are never Drive paths (they are relative to a local working directory).

    Raises:
        TypeError: ``path`` is ``None`` or not path-like.
    """
    text = os.fspath(path)
    if not Path(text).is_absolute():
        return False
    norm = os.path.normpath(text)
    return norm == DRIVE_MOUNT_POINT or norm.startswith(DRIVE_MOUNT_POINT + os.sep)


def is_inside(path: Path, folder: Path, *, follow_links: bool = False) -> bool:
    """Whether ``path`` is ``folder`` or below it: lexically, and with ``follow_links`` also
    after following symbolic links on both sides."""
    if path == folder or folder in path.parents:
        return True
    if not follow_links:
        return False
    real, real_folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return real == real_folder or real_folder in real.parents
