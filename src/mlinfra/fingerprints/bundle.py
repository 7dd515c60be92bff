"""All fingerprints of an experiment stage, how they are recorded, and why two differ.

:func:`fingerprint_experiment` composes an experiment and computes its config, data, code and
environment fingerprints and the ``spec_fp``/``exec_fp`` built from them.
:meth:`Fingerprints.record` is the JSON form the trackers store (MLflow tags hold the hashes,
the run artifact ``mlinfra/fingerprints.json`` and the output folder's ``metadata.json`` hold the
record), and
:func:`compare_records` explains the difference between two records: which fingerprints differ
and, for the config, which keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlinfra.config import compose_experiment, load_infra_config
from mlinfra.core.canonical import short_hash, stable_hash
from mlinfra.core.redact import is_secret_key, redact
from mlinfra.core.timeutil import format_utc
from mlinfra.errors import ConfigError, FingerprintError, MlinfraError
from mlinfra.fingerprints.code import DEFAULT_EXCLUDE, CodeFingerprint, code_fingerprint
from mlinfra.fingerprints.compute import compute_exec_fp, compute_spec_fp
from mlinfra.fingerprints.config import ConfigFingerprint, config_fingerprint
from mlinfra.fingerprints.data import DataFingerprint, Progress, data_fingerprint
from mlinfra.fingerprints.environment import (
    EnvironmentFingerprint,
    environment_fingerprint,
    precision_from_config,
)

__all__ = [
    "FINGERPRINT_NAMES",
    "RECORD_SCHEMA",
    "Difference",
    "Fingerprints",
    "compare_records",
    "fingerprint_experiment",
    "stat_cache_dir",
]

RECORD_SCHEMA = "mlinfra.fingerprints/1"
#: The fingerprints of a stage, in the order they are shown.
FINGERPRINT_NAMES: tuple[str, ...] = ("config", "data", "code", "env", "spec", "exec", "conv")


@dataclass(frozen=True)
class Fingerprints:
    """The fingerprints of one experiment stage.

    Attributes:
        config: The resolved configuration without volatile keys.
        data: The content of each data path (empty when the experiment names none).
        code: The code (commit and uncommitted changes).
        environment: Python, platform, key packages, CUDA, precision.
        spec: ``spec_fp``: model, data and train configs with the data's content.
        exec: ``exec_fp``: code, environment and env config.
        conv: ``conv_fp`` of a conversion stage, when there is one.
    """

    config: ConfigFingerprint
    data: tuple[DataFingerprint, ...]
    code: CodeFingerprint
    environment: EnvironmentFingerprint
    spec: str
    exec: str
    conv: str | None = None
    created_at: str = field(default_factory=format_utc)

    @property
    def data_hash(self) -> str | None:
        """The data fingerprint: of the one data path, or of all of them in order."""
        if not self.data:
            return None
        if len(self.data) == 1:
            return self.data[0].hash
        return stable_hash({"schema": "mlinfra.data-set/1", "parts": [d.hash for d in self.data]})

    def hashes(self) -> dict[str, str]:
        """Fingerprint name → 64-hex hash (``data`` and ``conv`` only when present)."""
        out = {
            "config": self.config.hash,
            "data": self.data_hash,
            "code": self.code.hash,
            "env": self.environment.hash,
            "spec": self.spec,
            "exec": self.exec,
            "conv": self.conv,
        }
        return {k: v for k, v in out.items() if v is not None}

    def record(self) -> dict[str, Any]:
        """The JSON form stored with a run: hashes and what :func:`compare_records` needs."""
        return {
            "schema": RECORD_SCHEMA,
            "created_at": self.created_at,
            "hashes": self.hashes(),
            "config": {
                # credentials are recorded as *** (the hash covers the real values)
                "values": {k: _redact_path(k, v) for k, v in self.config.values.items()},
                "volatile": list(self.config.volatile),
            },
            "data": [d.summary() for d in self.data],
            "code": self.code.summary(),
            "env": self.environment.summary(),
        }


def _redact_path(path: str, value: Any) -> Any:
    """A flattened config value as recorded: secret when any part of its dotted path names a
    credential (``hpo.search_space.api_token.values``)."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        if is_secret_key(parts[end - 1]):
            return redact(parts[end - 1], value) if end == len(parts) else redact("secret", value)
    return redact(path, value)


# ---- computing them for an experiment --------------------------------------------------------


def _data_paths(
    resolved: Any, config_dir: Path, declared: Sequence[str] | None
) -> list[tuple[Path, str]]:
    """(absolute path, where it was configured) of every data path of the experiment."""
    if declared is not None:
        where = f"fingerprint.data in {resolved.experiment.file.name}"
        return [(Path(os.path.abspath(config_dir / p)), where) for p in declared]
    local = resolved.get("data.local_path", None)
    if local in (None, ""):
        return []
    if not isinstance(local, str):
        raise ConfigError(
            f"data.local_path must be a path, got {type(local).__name__}", key="data.local_path"
        )
    source = resolved.source("data.local_path")
    where = f"data.local_path = {local!r}"
    if source is not None:
        where += f" ({source})"
    return [(Path(os.path.abspath(config_dir / local)), where)]


def stat_cache_dir(config_dir: str | os.PathLike[str], root_dir: str | os.PathLike[str]) -> Path:
    """The project's data stat cache: ``<outputs>/<cache>/fingerprints`` from ``paths.yaml``."""
    return _default_layout(Path(config_dir), Path(root_dir))[0]


def _default_layout(config_dir: Path, root: Path) -> tuple[Path, tuple[str, ...]]:
    """The stat-cache folder and the folders the code fingerprint leaves out, from paths.yaml."""
    outputs, excludes = "outputs", list(DEFAULT_EXCLUDE)
    if (config_dir / "paths.yaml").is_file():
        paths = load_infra_config(config_dir, "paths")
        outputs = paths.base.outputs
        excludes.append(outputs)
        if paths.base.mlruns:
            excludes.append(paths.base.mlruns)
        cache = paths.outputs.get("cache", "cache")
    else:
        cache = "cache"
    base = Path(outputs) if Path(outputs).is_absolute() else root / outputs
    return base / cache / "fingerprints", tuple(dict.fromkeys(excludes))


def fingerprint_experiment(
    config_dir: str | os.PathLike[str],
    experiment: str,
    *,
    stage: str | None = None,
    overrides: Sequence[str] = (),
    root_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
    code: CodeFingerprint | None = None,
    environment: EnvironmentFingerprint | None = None,
    on_data: Callable[[Path], None] | None = None,
) -> Fingerprints:
    """Compute every fingerprint of an experiment stage.

    Args:
        config_dir: The config folder.
        experiment: The experiment name.
        stage: The stage (its overrides and file choices apply).
        overrides: Override strings, as on the command line.
        root_dir: The project root (default: the config folder's parent).
        cache_dir: The data stat cache (default: ``<outputs>/cache/fingerprints``).
        use_cache: Set ``False`` to read every data file (the cache is neither read nor written).
        progress: Data hashing progress, ``progress(bytes_done, bytes_total)``.
        environ: The environment ``${VAR}`` expressions read.
        code: A code fingerprint computed before (a sweep computes it once).
        environment: An environment fingerprint computed before.
        on_data: Called with each data path before it is fingerprinted.

    Raises:
        ConfigError: the configuration is invalid.
        FingerprintError: a data path does not exist or cannot be read; git fails.
        DataChangedError: data changed while it was fingerprinted.
    """
    folder = Path(config_dir)
    root = Path(root_dir) if root_dir is not None else folder.resolve().parent
    resolved = compose_experiment(
        folder, experiment, stage=stage, overrides=overrides, environ=environ
    )
    spec = resolved.experiment.fingerprint
    values = resolved.to_dict()
    cfg = config_fingerprint(values, volatile=spec.volatile)

    default_cache, excludes = _default_layout(folder, root)
    stat_cache = (
        (Path(cache_dir) if cache_dir is not None else default_cache) if use_cache else None
    )
    data: list[DataFingerprint] = []
    for path, where in _data_paths(resolved, folder, spec.data):
        if on_data is not None:
            on_data(path)
        try:
            data.append(data_fingerprint(path, cache_dir=stat_cache, progress=progress))
        except FingerprintError as exc:
            if not path.exists() and not path.is_symlink():
                raise FingerprintError(
                    f"the data path does not exist; it comes from {where}. Create the data "
                    "there or change the path",
                    path=path,
                ) from None
            raise exc from None

    code_fp = code if code is not None else code_fingerprint(root, exclude=excludes)
    env_fp = (
        environment
        if environment is not None
        else environment_fingerprint(
            packages=spec.packages, precision=precision_from_config(values)
        )
    )
    data_hash = Fingerprints(cfg, tuple(data), code_fp, env_fp, "", "").data_hash
    spec_fp = compute_spec_fp(
        values.get("model") or {},
        values.get("data") or {},
        values.get("train") or {},
        data_fingerprint=data_hash,
        volatile=spec.volatile,
    )
    exec_fp = compute_exec_fp(
        env_config=values.get("env"),
        include_precision=env_fp.precision,
        code=code_fp,
        environment=env_fp,
        volatile=spec.volatile,
    )
    return Fingerprints(cfg, tuple(data), code_fp, env_fp, spec_fp, exec_fp)


# ---- explaining a difference -----------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """How one fingerprint compares between two records.

    Attributes:
        name: The fingerprint (``config``, ``data``, ...).
        status: ``same``, ``differs``, or ``missing`` (one side has no such fingerprint).
        left, right: The two hashes (``None`` where absent).
        details: Human-readable lines: changed keys, files, packages, or what a composite
            fingerprint follows from.
    """

    name: str
    status: str
    left: str | None
    right: str | None
    details: tuple[str, ...] = ()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _config_details(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[str]:
    a = left.get("config", {}).get("values") if isinstance(left.get("config"), Mapping) else None
    b = right.get("config", {}).get("values") if isinstance(right.get("config"), Mapping) else None
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return ["(no config values recorded on one side)"]
    lines: list[str] = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            lines.append(f"- {key} = {_show(a[key])} (only in A)")
        elif key not in a:
            lines.append(f"+ {key} = {_show(b[key])} (only in B)")
        elif stable_hash(a[key]) != stable_hash(b[key]):
            lines.append(f"~ {key}: {_show(a[key])} -> {_show(b[key])}")
    return lines


def _section(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = record.get(name)
    return value if isinstance(value, Mapping) else {}


def _code_details(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[str]:
    a, b = _section(left, "code"), _section(right, "code")
    lines: list[str] = []
    if a.get("commit") != b.get("commit"):
        lines.append(f"commit: {a.get('commit') or '-'} -> {b.get('commit') or '-'}")
    for side, info in (("A", a), ("B", b)):
        if info.get("dirty"):
            changed = list(info.get("changed") or [])
            shown = ", ".join(changed[:8]) + (
                f" (+{len(changed) - 8} more)" if len(changed) > 8 else ""
            )
            lines.append(f"{side} has uncommitted changes: {shown or '(files not recorded)'}")
    if a.get("kind") != b.get("kind"):
        lines.append(f"fingerprinted from: {a.get('kind')} -> {b.get('kind')}")
    return lines


def _env_details(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[str]:
    a, b = _section(left, "env"), _section(right, "env")
    lines = [
        f"{key}: {a.get(key) or '-'} -> {b.get(key) or '-'}"
        for key in ("python", "platform", "cuda", "precision")
        if a.get(key) != b.get(key)
    ]
    pa = a.get("packages") if isinstance(a.get("packages"), Mapping) else {}
    pb = b.get("packages") if isinstance(b.get("packages"), Mapping) else {}
    assert isinstance(pa, Mapping) and isinstance(pb, Mapping)
    for name in sorted(set(pa) | set(pb)):
        if pa.get(name) != pb.get(name):
            lines.append(
                f"{name}: {pa.get(name) or 'not installed'} -> {pb.get(name) or 'not installed'}"
            )
    return lines


def _data_details(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[str]:
    a = left.get("data") if isinstance(left.get("data"), list) else []
    b = right.get("data") if isinstance(right.get("data"), list) else []
    assert isinstance(a, list) and isinstance(b, list)
    lines: list[str] = []
    for i in range(max(len(a), len(b))):
        da = a[i] if i < len(a) and isinstance(a[i], Mapping) else {}
        db = b[i] if i < len(b) and isinstance(b[i], Mapping) else {}
        if da.get("hash") == db.get("hash"):
            continue
        where = da.get("path") or db.get("path") or f"data path {i + 1}"
        if da.get("path") != db.get("path"):
            lines.append(f"path: {da.get('path') or '-'} -> {db.get('path') or '-'}")
        lines.append(
            f"{where}: {da.get('files', '?')} files, {da.get('bytes', '?')} bytes -> "
            f"{db.get('files', '?')} files, {db.get('bytes', '?')} bytes (content differs)"
        )
    return lines


_COMPOSITES = {"spec": ("config", "data"), "exec": ("code", "env"), "conv": ("spec", "exec")}
_DETAILS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]]] = {
    "config": _config_details,
    "code": _code_details,
    "env": _env_details,
    "data": _data_details,
}


def compare_records(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[Difference]:
    """Compare two fingerprint records (:meth:`Fingerprints.record`, or a mapping holding just
    ``{"hashes": {...}}`` when only the hashes are known).

    Returns:
        One :class:`Difference` per fingerprint either side has, in :data:`FINGERPRINT_NAMES`
        order.
    """
    ha = left.get("hashes") if isinstance(left.get("hashes"), Mapping) else {}
    hb = right.get("hashes") if isinstance(right.get("hashes"), Mapping) else {}
    assert isinstance(ha, Mapping) and isinstance(hb, Mapping)
    names = [n for n in FINGERPRINT_NAMES if n in ha or n in hb]
    names += sorted((set(ha) | set(hb)) - set(FINGERPRINT_NAMES))
    out: list[Difference] = []
    for name in names:
        a, b = ha.get(name), hb.get(name)
        if a is None or b is None:
            out.append(
                Difference(name, "missing", a, b, (f"only {'A' if b is None else 'B'} has it",))
            )
            continue
        if a == b:
            out.append(Difference(name, "same", a, b))
            continue
        details: list[str] = []
        if name in _DETAILS:
            details = _DETAILS[name](left, right)
        elif name in _COMPOSITES:
            parts = [p for p in _COMPOSITES[name] if ha.get(p) != hb.get(p)]
            if parts:
                details = [f"follows from: {', '.join(parts)}"]
            elif name == "exec":
                details = ["follows from: the env config or the precision/determinism settings"]
            else:
                details = ["follows from: settings outside the component fingerprints"]
        out.append(Difference(name, "differs", a, b, tuple(details)))
    return out


def describe(differences: Iterable[Difference]) -> str:
    """A one-line verdict: ``identical`` or which fingerprints differ."""
    differing = [d.name for d in differences if d.status != "same"]
    return "identical" if not differing else "differ in: " + ", ".join(differing)


def short(value: str | None) -> str:
    """A hash shortened for display (``-`` for none)."""
    if value is None:
        return "-"
    try:
        return short_hash(value)
    except (TypeError, ValueError, MlinfraError):
        return value[:8]
