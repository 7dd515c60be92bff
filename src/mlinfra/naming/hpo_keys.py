"""Study and trial keys: what makes two HPO studies, or two trials, the same.

The payloads and what they cover are documented in :mod:`mlinfra.naming.keys`, which re-exports
every name here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mlinfra.core.canonical import stable_hash
from mlinfra.errors import NamingError

__all__ = [
    "STUDY_KEY_SCHEMA",
    "TRIAL_KEY_SCHEMA",
    "build_hpo_study_key",
    "build_hpo_trial_key",
    "compute_study_key_hash",
    "compute_trial_key_hash",
    "get_or_compute_study_key_hash",
    "get_or_compute_trial_key_hash",
]

STUDY_KEY_SCHEMA = "mlinfra.study_key/1"
TRIAL_KEY_SCHEMA = "mlinfra.trial_key/1"

_HEX = re.compile(r"[0-9a-f]{6,64}")
_DATA_KEYS = ("name", "version", "local_path", "seed", "splitting", "schema")
_HPO_KEYS = ("search_space", "objective", "k_fold", "early_termination")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise NamingError(
            f"the {what} config must be a mapping, got {type(value).__name__}", key=what
        )
    return value


def _hash_arg(value: Any, key: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or not _HEX.fullmatch(text):
        raise NamingError(
            f"{key} must be a hex digest (6 to 64 characters 0-9a-f), got {value!r}", key=key
        )
    return text


def build_hpo_study_key(
    *,
    data: Mapping[str, Any],
    hpo: Mapping[str, Any],
    train: Mapping[str, Any],
    model: str,
    data_fingerprint: str | None = None,
) -> dict[str, Any]:
    """The study key payload (its content is documented in :mod:`mlinfra.naming.keys`).

    Args:
        data: The data domain (``name``, ``version``, ``local_path``, ``seed``, ...).
        hpo: The HPO domain (``search_space``, ``objective``, ``sampling``, ...).
        train: The train domain; its ``training`` section is the training budget.
        model: The model (backbone) name.
        data_fingerprint: A fingerprint of the dataset's content, when one was computed.

    Raises:
        NamingError: an empty model, a domain that is not a mapping, data without any identity
            (name, local_path or fingerprint), HPO without search space or objective, or train
            without a ``training`` section.
    """
    if not isinstance(model, str) or not model.strip():
        raise NamingError("the study key needs a model (backbone) name", key="model")
    data_map = _mapping(data, "data")
    hpo_map = _mapping(hpo, "hpo")
    train_map = _mapping(train, "train")
    if not any(data_map.get(k) for k in ("name", "local_path")) and not data_fingerprint:
        raise NamingError(
            "the study key needs the dataset's identity: data.name, data.local_path or a "
            "data_fingerprint",
            key="data.name",
        )
    for key in ("search_space", "objective"):
        if not hpo_map.get(key):
            raise NamingError(f"the study key needs hpo.{key}", key=f"hpo.{key}")
    training = train_map.get("training")
    if not isinstance(training, Mapping):
        raise NamingError(
            "the study key needs train.training (the training budget: epochs, batch size, ...)",
            key="train.training",
        )
    sampling = hpo_map.get("sampling")
    algorithm = sampling.get("algorithm") if isinstance(sampling, Mapping) else None
    return {
        "schema": STUDY_KEY_SCHEMA,
        "model": model.strip(),
        "data": {
            **{k: _plain(data_map.get(k)) for k in _DATA_KEYS},
            "fingerprint": data_fingerprint,
        },
        "hpo": {
            **{k: _plain(hpo_map.get(k)) for k in _HPO_KEYS},
            "sampling": {"algorithm": algorithm},
        },
        "training": _plain(training),
    }


def compute_study_key_hash(
    *,
    data: Mapping[str, Any],
    hpo: Mapping[str, Any],
    train: Mapping[str, Any],
    model: str,
    data_fingerprint: str | None = None,
) -> str:
    """sha256 (64 hex characters) of the canonical JSON of :func:`build_hpo_study_key`.

    Raises:
        NamingError: as :func:`build_hpo_study_key`.
    """
    payload = build_hpo_study_key(
        data=data, hpo=hpo, train=train, model=model, data_fingerprint=data_fingerprint
    )
    try:
        return stable_hash(payload)
    except TypeError as exc:
        raise NamingError(f"the study key cannot be hashed: {exc}", key="study_key") from None


def get_or_compute_study_key_hash(
    study_key_hash: str | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    hpo: Mapping[str, Any] | None = None,
    train: Mapping[str, Any] | None = None,
    model: str | None = None,
    data_fingerprint: str | None = None,
    lookup: Callable[[], str | None] | None = None,
) -> str:
    """The study key hash: the one given, else ``lookup()``'s answer, else computed.

    Args:
        study_key_hash: A known hash (validated, lower-cased).
        data, hpo, train, model, data_fingerprint: What :func:`compute_study_key_hash` needs.
        lookup: Asked when no hash is given (for example, reads a parent run's tag); returns
            ``None`` when it has no answer.

    Raises:
        NamingError: no hash is given or found and the configs to compute one are missing; the
            message names the missing ones.
    """
    if study_key_hash is not None:
        return _hash_arg(study_key_hash, "study_key_hash")
    if lookup is not None:
        found = lookup()
        if found is not None:
            return _hash_arg(found, "study_key_hash")
    given = {"data": data, "hpo": hpo, "train": train, "model": model}
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise NamingError(
            "no study_key_hash was given or found, and computing one needs " + ", ".join(missing),
            key="study_key_hash",
        )
    assert data is not None and hpo is not None and train is not None and model is not None
    return compute_study_key_hash(
        data=data, hpo=hpo, train=train, model=model, data_fingerprint=data_fingerprint
    )


def build_hpo_trial_key(study_key_hash: str, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The trial key payload: the study key hash and the trial's hyperparameters, exactly.

    Raises:
        NamingError: the study key hash is not hex, or ``hyperparameters`` is not a mapping
            with string keys.
    """
    study = _hash_arg(study_key_hash, "study_key_hash")
    params = _mapping(hyperparameters, "hyperparameters")
    bad = [k for k in params if not isinstance(k, str)]
    if bad:
        raise NamingError(
            f"hyperparameter names must be strings, got {bad[0]!r}", key="hyperparameters"
        )
    return {
        "schema": TRIAL_KEY_SCHEMA,
        "study_key_hash": study,
        "hyperparameters": _plain(params),
    }


def compute_trial_key_hash(study_key_hash: str, hyperparameters: Mapping[str, Any]) -> str:
    """sha256 (64 hex characters) of the canonical JSON of :func:`build_hpo_trial_key`.

    Raises:
        NamingError: as :func:`build_hpo_trial_key`, or a value canonical JSON refuses (NaN,
            an object without a JSON form).
    """
    payload = build_hpo_trial_key(study_key_hash, hyperparameters)
    try:
        return stable_hash(payload)
    except TypeError as exc:
        raise NamingError(f"the trial key cannot be hashed: {exc}", key="hyperparameters") from None


def get_or_compute_trial_key_hash(
    trial_key_hash: str | None = None,
    *,
    study_key_hash: str | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    lookup: Callable[[], str | None] | None = None,
) -> str:
    """The trial key hash: the one given, else ``lookup()``'s answer, else computed.

    Raises:
        NamingError: no hash is given or found and ``study_key_hash`` or ``hyperparameters`` is
            missing; the message names them.
    """
    if trial_key_hash is not None:
        return _hash_arg(trial_key_hash, "trial_key_hash")
    if lookup is not None:
        found = lookup()
        if found is not None:
            return _hash_arg(found, "trial_key_hash")
    missing = [
        k
        for k, v in (("study_key_hash", study_key_hash), ("hyperparameters", hyperparameters))
        if v is None
    ]
    if missing:
        raise NamingError(
            "no trial_key_hash was given or found, and computing one needs " + ", ".join(missing),
            key="trial_key_hash",
        )
    assert study_key_hash is not None and hyperparameters is not None
    return compute_trial_key_hash(study_key_hash, hyperparameters)
