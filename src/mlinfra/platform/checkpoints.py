"""Finding a model checkpoint in an output folder."""

from __future__ import annotations

import os
from pathlib import Path

from mlinfra.errors import CheckpointNotFoundError

__all__ = ["WEIGHT_FILES", "resolve_checkpoint_dir"]

#: Files that hold a model's weights (one of them must sit next to ``config.json``).
WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.pt",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
_LISTED = 40


def resolve_checkpoint_dir(
    path: str | os.PathLike[str], checkpoint_dir_name: str = "checkpoint"
) -> Path:
    """The checkpoint folder: ``path`` itself or ``path/<checkpoint_dir_name>``, whichever holds
    ``config.json`` and a weights file (:data:`WEIGHT_FILES`).

    Raises:
        CheckpointNotFoundError: neither holds a checkpoint; the message lists what is there
            (up to 40 files).
    """
    root = Path(path)
    for candidate in (root, root / checkpoint_dir_name):
        if (candidate / "config.json").is_file() and any(
            (candidate / name).is_file() for name in WEIGHT_FILES
        ):
            return candidate
    wanted = f"config.json and one of {', '.join(WEIGHT_FILES)}"
    if not root.is_dir():
        raise CheckpointNotFoundError(
            f"no checkpoint: the folder does not exist (expected {wanted} in it or in "
            f"{checkpoint_dir_name}/); restore it from its backup, or train first",
            path=root,
        )
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    shown = ", ".join(found[:_LISTED]) or "nothing"
    more = f" and {len(found) - _LISTED} more" if len(found) > _LISTED else ""
    raise CheckpointNotFoundError(
        f"no checkpoint: expected {wanted} in the folder or in {checkpoint_dir_name}/; "
        f"found: {shown}{more}",
        path=root,
    )
