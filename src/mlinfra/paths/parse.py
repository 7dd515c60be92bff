"""Output folders back to their components: the inverse of :mod:`mlinfra.paths.resolve`.

Values come back as they appear in the folder names, that is normalised (a model id
``microsoft/deberta-v3-base`` comes back as ``microsoft_deberta-v3-base`` with the example's
rules), and short hashes as their 8-character display form.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mlinfra.config import PathsConfig
from mlinfra.core.placeholders import Pattern
from mlinfra.core.platforms import PLATFORMS
from mlinfra.core.tokens import TOKENS
from mlinfra.paths.config import apply_env_overrides
from mlinfra.paths.resolve import PROCESS_LAYOUTS, category_dir

__all__ = ["ParsedOutputPath", "parse_output_path"]

_FIELD_REGEX = {name: tok.regex for name, tok in TOKENS.items()}


@dataclass(frozen=True)
class ParsedOutputPath:
    """What an output folder says about its run.

    Attributes:
        kind: A process type (``hpo``, ``hpo_refit``, ``benchmarking``, ...) for the hash-based
            layout, or ``category`` for a folder from ``resolve_output_path``.
        category: The ``outputs`` category the folder is in.
        components: Placeholder values, as written in the folder names.
    """

    kind: str
    category: str
    components: dict[str, str] = field(default_factory=dict)


def _relative(path: Path, base: Path) -> PurePosixPath | None:
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(base))
    except ValueError:
        return None
    return PurePosixPath(rel.as_posix())


def parse_output_path(
    path: str | os.PathLike[str], paths: PathsConfig, *, root_dir: str | Path = "."
) -> ParsedOutputPath | None:
    """Recognise an output folder built from ``paths`` (any storage environment's layout).

    Hash-based layouts (``*_v2`` patterns) are tried first, then each category's pattern.
    Returns ``None`` when the folder fits none of them.
    """
    target = Path(path)
    for env in PLATFORMS:
        cfg = apply_env_overrides(paths, env)
        for kind, layout in PROCESS_LAYOUTS.items():
            pattern = cfg.patterns.get(layout.pattern_key)
            if pattern is None or layout.category not in cfg.outputs:
                continue
            if layout.cache_subcategory and layout.cache_subcategory not in cfg.cache:
                continue
            base = category_dir(root_dir, cfg, layout.category, layout.cache_subcategory)
            rel = _relative(target, base)
            if rel is None:
                continue
            text = rel.as_posix()
            if layout.suffix:
                if not text.endswith("/" + layout.suffix):
                    continue
                text = text[: -len(layout.suffix) - 1]
            elif any(
                other.suffix and text.endswith("/" + other.suffix)
                for other in PROCESS_LAYOUTS.values()
                if other.pattern_key == layout.pattern_key
            ):
                continue
            found = Pattern.parse(pattern).match(text, _FIELD_REGEX)
            # a folder names its storage env; it must sit under that env's outputs root
            if found is not None and found.get("storage_env", env) == env:
                return ParsedOutputPath(kind, layout.category, found)
        for category, pattern in cfg.patterns.items():
            if category not in cfg.outputs:
                continue
            rel = _relative(target, category_dir(root_dir, cfg, category))
            if rel is None:
                continue
            found = Pattern.parse(pattern).match(rel.as_posix(), _FIELD_REGEX)
            if found is not None:
                return ParsedOutputPath("category", category, found)
    return None
