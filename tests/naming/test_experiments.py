"""Experiment names: ``<experiment>-<stage>[-<backbone>]``, each part checked."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra.errors import NamingError
from mlinfra.naming import (
    MAX_EXPERIMENT_NAME_LENGTH,
    build_aml_experiment_name,
    build_mlflow_experiment_name,
)


def test_mlflow_experiment_name() -> None:
    assert build_mlflow_experiment_name("resume_ner_baseline", "hpo", "distilbert") == (
        "resume_ner_baseline-hpo-distilbert"
    )
    assert (
        build_mlflow_experiment_name(
            "resume_ner_baseline", "hpo", "distilbert", include_backbone=False
        )
        == "resume_ner_baseline-hpo"
    )
    assert build_mlflow_experiment_name("exp", "hpo", include_backbone=False) == "exp-hpo"


def test_a_backbone_is_needed_when_included() -> None:
    with pytest.raises(NamingError, match="include_backbone is set") as info:
        build_mlflow_experiment_name("exp", "hpo")
    assert info.value.key == "backbone"


def test_aml_experiment_name_has_the_backbone_only_when_given() -> None:
    assert build_aml_experiment_name("exp", "training") == "exp-training"
    assert build_aml_experiment_name("exp", "training", "deberta") == "exp-training-deberta"


@pytest.mark.parametrize(
    ("args", "key", "why"),
    [
        (("", "hpo", "b"), "experiment_name", "non-empty"),
        (("exp", "  ", "b"), "stage", "non-empty"),
        (("exp", "hpo", "microsoft/deberta-v3-base"), "backbone", "contains '/'"),
        (("exp\n", "hpo", "b"), "experiment_name", "leading or trailing spaces"),
        (("ex\x01p", "hpo", "b"), "experiment_name", "control character"),
        ((" exp", "hpo", "b"), "experiment_name", "leading or trailing spaces"),
        (("exp", "hpo", 3), "backbone", "non-empty"),
    ],
)
def test_bad_parts_are_named(args: tuple[object, ...], key: str, why: str) -> None:
    with pytest.raises(NamingError, match=why) as info:
        build_mlflow_experiment_name(*args)  # type: ignore[arg-type]
    assert info.value.key == key


def test_the_length_is_limited() -> None:
    name = build_mlflow_experiment_name("e" * 239, "hpo", "bert12")
    assert len(name) == MAX_EXPERIMENT_NAME_LENGTH
    with pytest.raises(NamingError, match="251 characters long, over the limit of 250"):
        build_mlflow_experiment_name("e" * 240, "hpo", "bert12")


@settings(deadline=None)
@given(parts=st.lists(st.text(max_size=120), min_size=3, max_size=3))
def test_names_are_valid_or_refused(parts: list[str]) -> None:
    try:
        name = build_mlflow_experiment_name(*parts)
    except NamingError:
        return
    assert name == "-".join(parts)
    assert len(name) <= MAX_EXPERIMENT_NAME_LENGTH
    assert "/" not in name
    assert all(ord(c) >= 0x20 and c != "\x7f" for c in name)
