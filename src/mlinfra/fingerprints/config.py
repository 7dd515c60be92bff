"""Config fingerprints: is the resolved configuration the same, ignoring what cannot change a
result?

The fingerprint is the sha256 of the canonical JSON (:mod:`mlinfra.core.canonical`: sorted keys,
normalised floats) of the resolved configuration without its *volatile* keys: output locations,
logging, devices and worker counts, descriptions. Key order, YAML formatting, comments and which
file a value came from never change it. The composition metadata (the ``experiment`` domain:
experiment name and stage) is left out too: two stages that resolve to the same values share a
fingerprint.

A volatile pattern is a dotted key glob matched against a key's full path and against each of its
trailing parts: ``device`` leaves out ``device``, ``train.device`` and ``train.training.device``;
``training.seed`` leaves out ``train.training.seed`` but not ``data.seed``. A matched key is left
out with everything below it. Experiments add patterns with ``fingerprint.volatile`` in their
experiment file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Any

from mlinfra.core.canonical import stable_hash

__all__ = [
    "CONFIG_SCHEMA",
    "DEFAULT_VOLATILE",
    "ConfigFingerprint",
    "compute_config_hash",
    "config_fingerprint",
    "flatten",
    "strip_volatile",
]

CONFIG_SCHEMA = "mlinfra.config/1"

#: Keys that never change a result: where outputs and logs go, which device and how many loader
#: workers, human descriptions.
DEFAULT_VOLATILE: tuple[str, ...] = (
    "output_dir",
    "output_path",
    "outputs_dir",
    "logging",
    "log_level",
    "log_dir",
    "logging_dir",
    "device",
    "devices",
    "num_workers",
    "dataloader_num_workers",
    "verbose",
    "verbosity",
    "progress_bar",
    "description",
)

#: Domains that describe the composition, not the values (experiment name and stage).
_COMPOSITION_DOMAINS = ("experiment",)


def _matcher(patterns: Iterable[str]) -> re.Pattern[str] | None:
    compiled = [translate(p) for p in patterns if p]
    return re.compile("|".join(f"(?:{c})" for c in compiled)) if compiled else None


def _is_volatile(path: str, regex: re.Pattern[str] | None) -> bool:
    if regex is None:
        return False
    parts = path.split(".")
    return any(regex.fullmatch(".".join(parts[i:])) for i in range(len(parts)))


def strip_volatile(
    config: Mapping[str, Any], volatile: Iterable[str] = DEFAULT_VOLATILE
) -> tuple[dict[str, Any], list[str]]:
    """``config`` without its volatile keys, and the dotted paths that were left out."""
    regex = _matcher(volatile)
    dropped: list[str] = []

    def walk(value: Any, prefix: str) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                path = f"{prefix}.{key}" if prefix else str(key)
                if _is_volatile(path, regex):
                    dropped.append(path)
                    continue
                out[str(key)] = walk(item, path)
            return out
        if isinstance(value, (list, tuple)):
            return [walk(item, f"{prefix}[{i}]") for i, item in enumerate(value)]
        return value

    return walk(config, ""), dropped


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf of ``config`` by dotted path (``train.training.epochs``); an empty mapping is
    a leaf of its own (``{}``); lists are leaves."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path))
        elif isinstance(value, Mapping):
            out[path] = {}
        elif isinstance(value, tuple):
            out[path] = list(value)
        else:
            out[path] = value
    return out


@dataclass(frozen=True)
class ConfigFingerprint:
    """The fingerprint of a resolved configuration.

    Attributes:
        hash: 64 hex characters.
        values: Every leaf that counts, by dotted path (what ``mlinfra fingerprint --why``
            compares).
        volatile: The dotted paths left out.
    """

    hash: str
    values: dict[str, Any] = field(repr=False)
    volatile: tuple[str, ...] = field(default=(), repr=False)


def config_fingerprint(
    config: Mapping[str, Any],
    *,
    volatile: Iterable[str] = (),
    defaults: bool = True,
) -> ConfigFingerprint:
    """Fingerprint a resolved configuration (a mapping keyed by domain, or any mapping).

    Args:
        config: The configuration, e.g. ``ResolvedConfig.to_dict()``.
        volatile: Patterns to leave out in addition to :data:`DEFAULT_VOLATILE`.
        defaults: Use :data:`DEFAULT_VOLATILE` (``False``: only ``volatile``).

    Raises:
        TypeError: a value has no JSON form (see :func:`mlinfra.core.canonical.canonical_json`).
    """
    patterns = (*DEFAULT_VOLATILE, *volatile) if defaults else tuple(volatile)
    body = {k: v for k, v in config.items() if k not in _COMPOSITION_DOMAINS}
    kept, dropped = strip_volatile(body, patterns)
    digest = stable_hash({"schema": CONFIG_SCHEMA, "config": kept})
    return ConfigFingerprint(hash=digest, values=flatten(kept), volatile=tuple(dropped))


def compute_config_hash(config: Mapping[str, Any], *, volatile: Iterable[str] = ()) -> str:
    """The spec's config hash: the full config fingerprint (64 hex; shorten for display only)."""
    return config_fingerprint(config, volatile=volatile).hash
