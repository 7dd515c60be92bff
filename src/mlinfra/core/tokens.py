"""The placeholders that path patterns and run-name patterns may use, and where.

Each token has a scope: ``path`` (folder patterns in ``paths.yaml``), ``name`` (run-name patterns
in ``naming.yaml``) or both. A pattern that uses a token outside its scope, or an unknown token, is
refused when the file is validated, naming the allowed tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["TOKENS", "Token", "tokens_for"]

_HEX8 = "[0-9a-f]{8}"
_INT = "[0-9]+"


@dataclass(frozen=True)
class Token:
    """One placeholder: where it may appear, what it means, and how to recognise its value."""

    scopes: frozenset[str]
    description: str
    regex: str = "[^/]+?"


def _t(scopes: str, description: str, regex: str = "[^/]+?") -> Token:
    return Token(frozenset(scopes.split(",")), description, regex)


TOKENS: Mapping[str, Token] = MappingProxyType(
    {
        # where and what
        "env": _t("name", "storage environment, normalised for names"),
        "storage_env": _t(
            "path",
            "storage environment: local, colab, kaggle or azureml",
            "local|colab|kaggle|azureml",
        ),
        "model": _t("path,name", "model (backbone) name, normalised"),
        "backbone": _t("path", "model (backbone) name, normalised"),
        "stage": _t("path,name", "experiment stage"),
        # hash-based identity: 8-character display forms
        "study8": _t("path,name", "study key hash, first 8 characters", _HEX8),
        "trial8": _t("path,name", "trial key hash, first 8 characters", _HEX8),
        "bench8": _t("path,name", "benchmark config hash, first 8 characters", _HEX8),
        "spec8": _t("path,name", "spec fingerprint, first 8 characters", _HEX8),
        "exec8": _t("path,name", "exec fingerprint, first 8 characters", _HEX8),
        "conv8": _t("path,name", "conversion fingerprint, first 8 characters", _HEX8),
        "study_hash": _t("path,name", "study key hash (display form)"),
        "trial_hash": _t("name", "trial key hash (display form)"),
        "bench_hash": _t("name", "benchmark config hash (display form)"),
        "spec_hash": _t("name", "spec fingerprint (display form)"),
        "exec_hash": _t("name", "exec fingerprint (display form)"),
        "conv_hash": _t("name", "conversion fingerprint (display form)"),
        "spec_fp": _t("path,name", "spec fingerprint, full"),
        "exec_fp": _t("path,name", "exec fingerprint, full"),
        "conv_fp": _t("path,name", "conversion fingerprint, full"),
        # counters and positions
        "variant": _t("path,name", "final-training variant number", _INT),
        "trial_number": _t("path,name", "Optuna trial number", _INT),
        "fold_idx": _t("path,name", "cross-validation fold index", _INT),
        "version": _t("name", "unique run-name version suffix, reserved from the registry"),
        "semantic_suffix": _t("name", "readable suffix from the study name"),
        # free identifiers for cache files
        "trial_id": _t("path", "trial identifier"),
        "parent_training_id": _t("path", "parent training identifier"),
        "trial": _t("path", "trial identifier"),
        "run_id": _t("path", "MLflow run id"),
        "identifier": _t("path", "free identifier"),
        "timestamp": _t("path", "UTC timestamp"),
    }
)


def tokens_for(scope: str) -> frozenset[str]:
    """The tokens allowed in ``scope`` (``"path"`` or ``"name"``)."""
    if scope not in ("path", "name"):
        raise ValueError(f"unknown token scope {scope!r}; use 'path' or 'name'")
    return frozenset(name for name, tok in TOKENS.items() if scope in tok.scopes)
