"""MLflow (and AzureML) experiment names: ``<experiment>-<stage>[-<backbone>]``.

Every part must be non-empty and free of ``/`` and control characters, and the whole name at most
250 characters, so the same name is valid in MLflow and in AzureML, where it is also a folder.
"""

from __future__ import annotations

import re

from mlinfra.errors import NamingError

__all__ = [
    "MAX_EXPERIMENT_NAME_LENGTH",
    "build_aml_experiment_name",
    "build_mlflow_experiment_name",
]

#: The longest experiment name accepted.
MAX_EXPERIMENT_NAME_LENGTH = 250

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _part(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise NamingError(f"the experiment name needs a non-empty {key}, got {value!r}", key=key)
    if value != value.strip():
        raise NamingError(f"{key} {value!r} has leading or trailing spaces; remove them", key=key)
    if "/" in value:
        raise NamingError(
            f"{key} {value!r} contains '/', which experiment names cannot hold; use a short "
            "name without it (for example 'deberta' for 'microsoft/deberta-v3-base')",
            key=key,
        )
    if _CONTROL.search(value):
        raise NamingError(f"{key} {value!r} contains a control character", key=key)
    return value


def build_mlflow_experiment_name(
    experiment_name: str,
    stage: str,
    backbone: str | None = None,
    *,
    include_backbone: bool = True,
) -> str:
    """The experiment name ``<experiment_name>-<stage>[-<backbone>]``.

    Args:
        experiment_name: The experiment (``resume_ner_baseline``).
        stage: The stage (``hpo``).
        backbone: The model; required unless ``include_backbone`` is false.
        include_backbone: Whether the backbone is part of the name (the experiment file's
            ``naming.include_backbone_in_experiment``).

    Raises:
        NamingError: a part is empty or holds ``/`` or a control character, the backbone is
            missing while ``include_backbone`` is set, or the name is over 250 characters.

    Example:
        >>> build_mlflow_experiment_name("resume_ner_baseline", "hpo", "distilbert")
        'resume_ner_baseline-hpo-distilbert'
    """
    parts = [_part("experiment_name", experiment_name), _part("stage", stage)]
    if include_backbone:
        if backbone is None:
            raise NamingError(
                "include_backbone is set but no backbone was given; pass backbone=, or "
                "include_backbone=False for one experiment shared by every backbone",
                key="backbone",
            )
        parts.append(_part("backbone", backbone))
    name = "-".join(parts)
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise NamingError(
            f"experiment name {name!r} is {len(name)} characters long, over the limit of "
            f"{MAX_EXPERIMENT_NAME_LENGTH}; shorten the experiment or stage name",
            key="experiment_name",
        )
    return name


def build_aml_experiment_name(experiment_name: str, stage: str, backbone: str | None = None) -> str:
    """The AzureML experiment name: as :func:`build_mlflow_experiment_name`, with the backbone
    only when one is given.

    Raises:
        NamingError: as :func:`build_mlflow_experiment_name`.

    Example:
        >>> build_aml_experiment_name("resume_ner_baseline", "hpo")
        'resume_ner_baseline-hpo'
    """
    return build_mlflow_experiment_name(
        experiment_name, stage, backbone, include_backbone=backbone is not None
    )
