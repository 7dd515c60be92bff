"""The spec's composite fingerprints: ``spec_fp``, ``exec_fp``, ``conv_fp`` and friends.

* ``spec_fp``: *what* is trained: the model, data and training configs (without volatile keys),
  the seed, and the data's content fingerprint when one is given.
* ``exec_fp``: *how and where* it ran: the code fingerprint (commit and uncommitted changes), the
  environment fingerprint (Python, platform, key packages, CUDA), the env config, and the actual
  precision and determinism settings.
* ``conv_fp``: a conversion of a trained model: its parent's ``spec_fp`` and ``exec_fp`` and the
  conversion config.

Each is a full sha256 (64 hex characters) of canonical JSON; folder and run names shorten them to
8 characters for display (:func:`mlinfra.core.canonical.short_hash`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from mlinfra.core.canonical import stable_hash
from mlinfra.errors import FingerprintError
from mlinfra.fingerprints.code import CodeFingerprint
from mlinfra.fingerprints.config import DEFAULT_VOLATILE, strip_volatile
from mlinfra.fingerprints.environment import EnvironmentFingerprint

__all__ = [
    "compute_bench_fp",
    "compute_conv_fp",
    "compute_exec_fp",
    "compute_hardware_fp",
    "compute_spec_fp",
]

_HEX = re.compile(r"[0-9a-f]{8,64}")


def _plain(config: Mapping[str, Any] | None, what: str, volatile: Iterable[str]) -> Any:
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise TypeError(f"{what} must be a mapping, got {type(config).__name__}")
    kept, _ = strip_volatile(config, volatile)
    return kept


def _volatile(extra: Iterable[str]) -> tuple[str, ...]:
    return (*DEFAULT_VOLATILE, *extra)


def _hex(value: Any, name: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    if not _HEX.fullmatch(text):
        raise FingerprintError(
            f"{name} must be a hex fingerprint (8 to 64 of 0-9a-f), got {value!r}"
        )
    return text


def compute_spec_fp(
    model_config: Mapping[str, Any],
    data_config: Mapping[str, Any],
    train_config: Mapping[str, Any],
    seed: int | str | None = None,
    *,
    data_fingerprint: str | None = None,
    volatile: Iterable[str] = (),
) -> str:
    """The specification fingerprint: what is trained (see the module docstring).

    Args:
        model_config, data_config, train_config: The resolved domain configs.
        seed: The training seed, when it is not in ``train_config``.
        data_fingerprint: The data's content fingerprint
            (:func:`~mlinfra.fingerprints.data_fingerprint`), so a changed dataset behind the
            same path changes the spec.
        volatile: Key patterns to leave out on top of the defaults.

    Raises:
        TypeError: a config is not a mapping, or holds a value with no JSON form.
    """
    patterns = _volatile(volatile)
    return stable_hash(
        {
            "schema": "mlinfra.spec/1",
            "model": _plain(model_config, "model_config", patterns),
            "data": _plain(data_config, "data_config", patterns),
            "train": _plain(train_config, "train_config", patterns),
            "seed": seed,
            "data_fingerprint": data_fingerprint,
        }
    )


def compute_exec_fp(
    git_sha: str | None = None,
    env_config: Mapping[str, Any] | None = None,
    include_precision: str | None = None,
    include_determinism: bool | str | None = None,
    *,
    code: CodeFingerprint | str | None = None,
    environment: EnvironmentFingerprint | str | None = None,
    volatile: Iterable[str] = (),
) -> str:
    """The execution fingerprint: how and where it ran (see the module docstring).

    Args:
        git_sha: The commit, when no ``code`` fingerprint is given (uncommitted changes are then
            not covered: prefer ``code``).
        env_config: The env domain config.
        include_precision: The precision itself (``"bf16"``, ``"fp32"``), not a flag.
        include_determinism: The determinism setting (``True``/``False`` or a mode name).
        code: A :class:`CodeFingerprint` or its hash.
        environment: An :class:`EnvironmentFingerprint` or its hash.
        volatile: Key patterns to leave out of ``env_config`` on top of the defaults.

    Raises:
        FingerprintError: neither ``code`` nor ``git_sha`` says which code ran.
        TypeError: ``include_precision`` is a bool (the old flag form; pass the precision).
    """
    if isinstance(include_precision, bool):
        raise TypeError(
            "include_precision is the precision itself (for example 'bf16' or 'fp32'), not a flag"
        )
    if code is None and not git_sha:
        raise FingerprintError(
            "exec_fp needs to know which code ran: pass code=code_fingerprint(project_root) "
            "(commit and uncommitted changes) or git_sha"
        )
    code_part: Any = code.hash if isinstance(code, CodeFingerprint) else code
    env_part = environment.hash if isinstance(environment, EnvironmentFingerprint) else environment
    return stable_hash(
        {
            "schema": "mlinfra.exec/1",
            "code": code_part if code_part is not None else {"git_sha": git_sha},
            "environment": env_part,
            "env_config": _plain(env_config, "env_config", _volatile(volatile)),
            "precision": include_precision,
            "determinism": include_determinism,
        }
    )


def compute_conv_fp(
    parent_spec_fp: str, parent_exec_fp: str, conversion_config: Mapping[str, Any]
) -> str:
    """The conversion fingerprint: the parent training's fingerprints and the conversion config.

    Raises:
        FingerprintError: a parent fingerprint is not hex.
        TypeError: the config is not a mapping.
    """
    return stable_hash(
        {
            "schema": "mlinfra.conv/1",
            "parent_spec_fp": _hex(parent_spec_fp, "parent_spec_fp"),
            "parent_exec_fp": _hex(parent_exec_fp, "parent_exec_fp"),
            "conversion": _plain(conversion_config, "conversion_config", _volatile(())),
        }
    )


def compute_bench_fp(model_config: Mapping[str, Any], benchmark_config: Mapping[str, Any]) -> str:
    """The benchmark fingerprint: the model config and the benchmark config."""
    patterns = _volatile(())
    return stable_hash(
        {
            "schema": "mlinfra.bench/1",
            "model": _plain(model_config, "model_config", patterns),
            "benchmark": _plain(benchmark_config, "benchmark_config", patterns),
        }
    )


def compute_hardware_fp(hardware_info: Mapping[str, Any]) -> str:
    """The hardware fingerprint: whatever describes the machine (GPU model, count, memory)."""
    return stable_hash({"schema": "mlinfra.hardware/1", "hardware": dict(hardware_info)})
