"""Command-line overrides: Hydra-style strings and the training-argument mapping.

Override strings (values are read as YAML, so ``5`` is an int, ``[1, 2]`` a list, ``null`` None):

* ``a.b=1``      set an existing key (an unknown key is an error that suggests ``+``);
* ``+a.new=x``   add a key that does not exist yet;
* ``++a.b=x``    set a key whether or not it exists;
* ``~a.b``       delete a key;
* ``model=deberta``  choose another file for a domain (``model/deberta.yaml``); the domains are
  ``data``, ``model``, ``train``, ``hpo``, ``env`` and ``benchmark``.

List items are addressed by index: ``hpo.search_space.batch_size.values.0=32``.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlinfra.config.tree import KeyPath, Source, Tree, format_key, parse_key, thaw
from mlinfra.config.yamlio import YamlLimits, load_yaml_text
from mlinfra.errors import ConfigError

__all__ = [
    "ARGUMENT_KEYS",
    "DOMAINS",
    "Override",
    "apply_argument_overrides",
    "apply_overrides",
    "parse_override",
]

DOMAINS: tuple[str, ...] = ("data", "model", "train", "hpo", "env", "benchmark")

#: Training-script arguments (``argparse`` names) and the key each one sets in a composed tree.
ARGUMENT_KEYS: Mapping[str, KeyPath] = {
    "learning_rate": ("train", "training", "learning_rate"),
    "batch_size": ("train", "training", "batch_size"),
    "weight_decay": ("train", "training", "weight_decay"),
    "epochs": ("train", "training", "epochs"),
    "random_seed": ("train", "training", "random_seed"),
    "fold_idx": ("train", "training", "fold_idx"),
    "fold_splits_file": ("train", "training", "fold_splits_file"),
    "k_folds": ("train", "training", "k_folds"),
    "early_stopping_enabled": ("train", "training", "early_stopping", "enabled"),
    "use_all_data": ("train", "training", "use_all_data"),
    "dropout": ("model", "dropout"),
    "use_combined_data": ("data", "use_combined_data"),
}

_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.([A-Za-z_][\w-]*|\d+)|\[\d+\])*$")
#: Longest name for one part of an override's key, and most parts: keys are short names, and an
#: override that adds one should not be able to write a megabyte of key into a recorded config.
MAX_KEY_PART_LENGTH = 100
MAX_KEY_PARTS = 32
_VALUE_LIMITS = YamlLimits(max_bytes=64 * 1024, max_nodes=10_000, max_depth=32)

Op = Literal["set", "add", "force", "delete", "select"]


@dataclass(frozen=True)
class Override:
    """One parsed override.

    Attributes:
        text: The override as written.
        op: ``set``, ``add`` (``+``), ``force`` (``++``), ``delete`` (``~``) or ``select``
            (a domain file choice such as ``model=deberta``).
        key: The key path it changes.
        value: The parsed value (``None`` for a delete).
    """

    text: str
    op: Op
    key: KeyPath
    value: Any = None

    @property
    def source(self) -> Source:
        """The provenance every value set by this override carries."""
        return Source(origin="override", detail=self.text)


def _fail(text: str, reason: str, key: str | None = None) -> ConfigError:
    return ConfigError(f"override '{text}': {reason}", key=key)


def parse_override(text: str) -> Override:
    """Parse one override string (syntax in the module docstring).

    Raises:
        ConfigError: the string is not an override, or its key or value is malformed.
    """
    if not isinstance(text, str):
        raise ConfigError(f"override must be a string, got {type(text).__name__}: {text!r}")
    raw = text.strip()
    if raw.startswith("~"):
        key_text, eq, _ = raw[1:].partition("=")
        if eq:
            raise _fail(text, "a delete takes no value; write ~KEY")
        op: Op = "delete"
    else:
        if "=" not in raw:
            raise _fail(text, "expected KEY=VALUE, +KEY=VALUE, ++KEY=VALUE or ~KEY")
        key_text, _, value_text = raw.partition("=")
        if key_text.startswith("++"):
            op, key_text = "force", key_text[2:]
        elif key_text.startswith("+"):
            op, key_text = "add", key_text[1:]
        else:
            op = "set"
    key_text = key_text.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        shown = raw.encode("unicode_escape").decode("ascii")
        raise _fail(shown, "control characters are not allowed in overrides")
    if not _KEY.match(key_text):
        raise _fail(
            text,
            f"malformed key {key_text!r}: use dotted names like hpo.sampling.max_trials",
        )
    key = parse_key(key_text)
    if len(key) > MAX_KEY_PARTS:
        raise _fail(text, f"key has {len(key)} parts, over the limit of {MAX_KEY_PARTS}")
    for part in key:
        if isinstance(part, str) and len(part) > MAX_KEY_PART_LENGTH:
            raise _fail(
                text[:60] + "...",
                f"key part {part[:20]!r}... is {len(part)} characters long, over the limit of "
                f"{MAX_KEY_PART_LENGTH}; configuration keys are short names",
            )
    if op == "delete":
        return Override(text, op, key)
    if op == "set" and len(key) == 1 and key[0] in DOMAINS:
        choice = value_text.strip()
        if not choice:
            raise _fail(text, f"name the {key[0]} file to use, for example {key[0]}=NAME")
        return Override(text, "select", key, choice)
    value: Any = ""
    if value_text.strip():
        try:
            value = load_yaml_text(value_text, file=None, limits=_VALUE_LIMITS).data
        except ConfigError as exc:
            raise _fail(text, f"cannot read value {value_text!r}: {exc.reason}") from exc
    return Override(text, op, key, value)


def _known_keys(data: Any) -> list[str]:
    out: list[str] = []

    def walk(v: Any, p: KeyPath) -> None:
        if p:
            out.append(format_key(p))
        if isinstance(v, Mapping):
            for k, item in v.items():
                walk(item, (*p, k))

    walk(data, ())
    return out


def _parent(data: Any, ov: Override, create: bool) -> Any:
    node = data
    for i, part in enumerate(ov.key[:-1]):
        here = format_key(ov.key[:i]) if i else "<root>"
        if isinstance(node, dict):
            if part not in node:
                if not create:
                    raise _unknown(data, ov)
                node[part] = {}
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int):
            if part >= len(node):
                raise _fail(
                    ov.text,
                    f"index {part} is out of range: list '{here}' has {len(node)} items",
                    format_key(ov.key),
                )
            node = node[part]
        else:
            raise _fail(
                ov.text,
                f"'{here}' is a {type(node).__name__}, not a mapping; cannot set keys inside it",
                format_key(ov.key),
            )
    if not isinstance(node, (dict, list)):
        raise _fail(
            ov.text,
            f"'{format_key(ov.key[:-1])}' holds a {type(node).__name__}, not a mapping",
            format_key(ov.key),
        )
    return node


def _unknown(data: Any, ov: Override) -> ConfigError:
    dotted = format_key(ov.key)
    close = difflib.get_close_matches(dotted, _known_keys(data), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return _fail(
        ov.text,
        f"unknown key '{dotted}'; {hint}to add a new key write '+{dotted}=...'",
        dotted,
    )


def _exists(parent: Any, last: str | int) -> bool:
    if isinstance(parent, Mapping):
        return last in parent
    return isinstance(last, int) and last < len(parent)


def apply_overrides(
    tree: Tree, overrides: Sequence[Override], *, source: Source | None = None
) -> Tree:
    """Apply parsed set/add/force/delete overrides to a copy of ``tree``; record provenance.

    ``select`` overrides are not handled here: they choose files before composition.
    ``source`` replaces the provenance recorded for the values set (default: the override itself).

    Raises:
        ConfigError: an unknown key without ``+``, an existing key with ``+``, a delete of a key
            that does not exist, or a key inside a scalar.
    """
    work = tree.copy()
    for ov in overrides:
        if ov.op == "select":
            raise _fail(ov.text, "a domain file choice must be given before the config is composed")
        parent = _parent(work.data, ov, create=ov.op in ("add", "force"))
        last = ov.key[-1]
        exists = _exists(parent, last)
        dotted = format_key(ov.key)
        if ov.op == "set" and not exists:
            if isinstance(parent, list):
                raise _fail(
                    ov.text,
                    f"index {last} is out of range: list '{format_key(ov.key[:-1])}' has "
                    f"{len(parent)} items",
                    dotted,
                )
            raise _unknown(work.data, ov)
        if ov.op == "add" and exists:
            raise _fail(
                ov.text, f"'{dotted}' already exists; write '{dotted}=...' to change it", dotted
            )
        if ov.op == "delete":
            if not exists:
                raise _fail(ov.text, f"cannot delete '{dotted}': no such key", dotted)
            del parent[last]
            work.drop_sources(ov.key)
            if isinstance(parent, list) and isinstance(last, int):
                _shift_list_sources(work, ov.key[:-1], last)
            continue
        if isinstance(parent, list):
            if not isinstance(last, int) or last >= len(parent):
                raise _fail(ov.text, f"index out of range for '{format_key(ov.key[:-1])}'", dotted)
        elif not isinstance(last, str):
            raise _fail(ov.text, f"'{format_key(ov.key[:-1])}' is a mapping, not a list", dotted)
        parent[last] = copy.deepcopy(ov.value)
        work.drop_sources(ov.key)
        _stamp(work, ov.key, ov.value, source or ov.source)
    return work


def _shift_list_sources(tree: Tree, list_path: KeyPath, removed: int) -> None:
    """After removing item ``removed`` of a list, move the sources of later items down one."""
    n = len(list_path)
    moved: dict[KeyPath, Source] = {}
    for path in [p for p in tree.sources if len(p) > n and p[:n] == list_path]:
        index = path[n]
        if isinstance(index, int) and index > removed:
            new_path = (*list_path, index - 1, *path[n + 1 :])
            moved[new_path] = tree.sources.pop(path)
    tree.sources.update(moved)


def _stamp(tree: Tree, path: KeyPath, value: Any, source: Source) -> None:
    tree.sources[path] = source
    if isinstance(value, Mapping):
        for k, v in value.items():
            _stamp(tree, (*path, k), v, source)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _stamp(tree, (*path, i), v, source)


def _coerce_argument(name: str, value: Any) -> Any:
    if name == "early_stopping_enabled" and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(
            f"argument early_stopping_enabled must be true or false, got {value!r}",
            key="early_stopping_enabled",
        )
    if isinstance(value, Path):
        return str(value)
    return value


def _arguments_to_overrides(
    config: Mapping[str, Any], args: Mapping[str, Any], *, namespace: bool
) -> list[Override]:
    composed = "train" in config
    out: list[Override] = []
    for name, value in args.items():
        if value is None or (namespace and name not in ARGUMENT_KEYS):
            continue
        if name in ARGUMENT_KEYS:
            key = ARGUMENT_KEYS[name]
            if not composed and key[0] == "train":
                key = key[1:]
            out.append(Override(f"--{name}={value}", "force", key, _coerce_argument(name, value)))
        else:
            text = f"{name}={value}"
            if not isinstance(name, str) or not _KEY.match(name):
                raise _fail(text, f"malformed key {name!r}: use dotted names like model.dropout")
            out.append(Override(text, "set", parse_key(name), copy.deepcopy(value)))
    return out


def apply_argument_overrides(
    config: Mapping[str, Any],
    overrides: argparse.Namespace | Mapping[str, Any] | Sequence[str],
    *,
    config_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Return a copy of ``config`` with ``overrides`` applied; ``config`` is not changed.

    Args:
        config: A composed config (domains at the top: ``train``, ``model``, ...) or a flat
            training config (``training``, ``model``, ``data`` at the top).
        overrides: One of
            * an ``argparse.Namespace`` of training arguments (``learning_rate``, ``batch_size``,
              ``dropout``, ... see :data:`ARGUMENT_KEYS`); ``None`` means "not given", and the
              script's other arguments (``output_dir``, ...) are left alone;
            * a mapping of those arguments, where any other key is a dotted key that must exist
              (``{"hpo.sampling.max_trials": 5}``); ``None`` values mean "not given";
            * a sequence of override strings (``"hpo.sampling.max_trials=5"``, ``"+a.b=1"``,
              ``"~a.b"``, ``"model=deberta"``).
        config_dir: Needed only for a domain file choice (``model=deberta``), to find the file.

    Raises:
        ConfigError: a malformed override, an unknown key, or a missing domain file.
    """
    if isinstance(overrides, argparse.Namespace):
        parsed = _arguments_to_overrides(config, vars(overrides), namespace=True)
    elif isinstance(overrides, Mapping):
        parsed = _arguments_to_overrides(config, overrides, namespace=False)
    elif isinstance(overrides, (str, bytes)):
        raise ConfigError("overrides must be a list of strings, not a single string")
    else:
        parsed = [parse_override(o) for o in overrides]
    tree = Tree(thaw(config), {})
    for ov in parsed:
        if ov.op == "select":
            if config_dir is None:
                raise _fail(ov.text, "choosing a domain file needs config_dir")
            from mlinfra.config.loader import domain_file_for_choice
            from mlinfra.config.yamlio import load_yaml_file

            domain = str(ov.key[0])
            path = domain_file_for_choice(Path(config_dir), domain, str(ov.value), ov.text)
            tree.data[domain] = load_yaml_file(path).data
        else:
            tree = apply_overrides(tree, [ov])
    return dict(tree.data)
