"""NamingContext: every validation rule, and create_naming_context's two call forms."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from mlinfra.errors import ConfigError, NamingError
from mlinfra.naming import (
    PROCESS_TYPES,
    STAGE_NAMES,
    NamingContext,
    create_naming_context,
    process_type_for_stage,
)

STUDY = "350a79aa" + "0" * 56
TRIAL = "747428f2" + "1" * 56


def _ctx(**changes: Any) -> NamingContext:
    base: dict[str, Any] = {"process_type": "hpo", "model": "distilbert", "environment": "local"}
    return NamingContext(**{**base, **changes})


def test_the_specification_form() -> None:
    ctx = create_naming_context(
        backbone="distilbert", stage="hpo", study_hash="abc123", environment="local"
    )
    assert (ctx.process_type, ctx.model, ctx.study_key_hash) == ("hpo", "distilbert", "abc123")
    assert ctx.storage_env == "local"
    assert ctx.stage == "hpo"


def test_the_explicit_form() -> None:
    ctx = create_naming_context("final_training", "distilbert", "abc123de", "0123abcd", "colab")
    assert (ctx.process_type, ctx.spec_fp, ctx.exec_fp, ctx.environment) == (
        "final_training",
        "abc123de",
        "0123abcd",
        "colab",
    )
    assert ctx.variant == 1


def test_unknown_process_type_lists_the_known_ones() -> None:
    with pytest.raises(NamingError, match="unknown process type 'train'") as info:
        _ctx(process_type="train")
    assert info.value.key == "process_type"
    for kind in PROCESS_TYPES:
        assert kind in str(info.value)


@pytest.mark.parametrize("model", ["", "   ", None, 3])
def test_model_is_required(model: object) -> None:
    with pytest.raises(NamingError, match="model") as info:
        _ctx(model=model)
    assert info.value.key == "model"


@pytest.mark.parametrize("key", ["environment", "storage_env"])
def test_platforms_come_from_one_vocabulary(key: str) -> None:
    with pytest.raises(NamingError, match="did you mean 'azureml'") as info:
        _ctx(**{key: "azure"})
    assert info.value.key == key
    with pytest.raises(NamingError, match="local, colab, kaggle, azureml"):
        _ctx(**{key: "laptop"})


def test_storage_env_defaults_to_the_environment() -> None:
    assert _ctx(environment="colab").storage_env == "colab"
    assert _ctx(environment="colab", storage_env="local").storage_env == "local"


@pytest.mark.parametrize(
    "key",
    ["study_key_hash", "trial_key_hash", "benchmark_config_hash", "spec_fp", "exec_fp", "conv_fp"],
)
@pytest.mark.parametrize("bad", ["xyz789ab", "abc12", "a" * 65, "abc 123", ""])
def test_hash_fields_must_be_hex(key: str, bad: str) -> None:
    with pytest.raises(NamingError, match=f"{key} must be a hex digest") as info:
        _ctx(**{key: bad})
    assert info.value.key == key


def test_hash_fields_are_stripped_and_lowered() -> None:
    assert _ctx(study_key_hash="  ABC123DEF ").study_key_hash == "abc123def"


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("variant", 0),
        ("variant", True),
        ("variant", "2"),
        ("trial_number", -1),
        ("trial_number", 1.0),
        ("fold_idx", -2),
        ("fold_idx", False),
    ],
)
def test_counters_must_be_integers_in_range(key: str, bad: object) -> None:
    changes: dict[str, Any] = {key: bad}
    if key == "fold_idx":
        changes["trial_number"] = 1
    with pytest.raises(NamingError, match=f"{key} must be an integer") as info:
        _ctx(**changes)
    assert info.value.key == key


@pytest.mark.parametrize(
    ("changes", "needs"),
    [
        ({"stage": "hpo_trial"}, "trial_number"),
        ({"fold_idx": 0}, "trial_number"),
        ({"process_type": "hpo_refit", "trial_number": 1}, "study_key_hash"),
        (
            {"process_type": "hpo_refit", "study_key_hash": STUDY},
            "trial_key_hash or trial_number",
        ),
        ({"process_type": "benchmarking", "trial_key_hash": TRIAL}, "study_key_hash"),
        ({"process_type": "benchmarking", "study_key_hash": STUDY}, "trial_key_hash"),
        ({"process_type": "final_training", "exec_fp": "abcdef12"}, "spec_fp"),
        ({"process_type": "final_training", "spec_fp": "abcdef12"}, "exec_fp"),
        ({"process_type": "conversion", "parent_training_id": "x"}, "conv_fp"),
        (
            {"process_type": "conversion", "conv_fp": "abcdef12", "spec_fp": "abcdef12"},
            "parent_training_id (or spec_fp and exec_fp)",
        ),
        ({"process_type": "best_configurations"}, "spec_fp"),
    ],
)
def test_each_process_type_needs_its_fields(changes: dict[str, Any], needs: str) -> None:
    with pytest.raises(NamingError, match="needs") as info:
        _ctx(**changes)
    assert needs in str(info.value)
    assert info.value.key == needs.split(" ")[0]


def test_complete_contexts_of_every_process_type() -> None:
    _ctx(stage="hpo_trial", trial_number=0, fold_idx=0)
    _ctx(process_type="hpo_refit", study_key_hash=STUDY, trial_key_hash=TRIAL)
    _ctx(process_type="benchmarking", study_key_hash=STUDY, trial_key_hash=TRIAL)
    _ctx(process_type="final_training", spec_fp="abcdef12", exec_fp="abcdef12", variant=3)
    _ctx(process_type="conversion", conv_fp="abcdef12", parent_training_id="anything")
    _ctx(process_type="conversion", conv_fp="abcdef12", spec_fp="abcdef12", exec_fp="abcdef12")
    _ctx(process_type="best_configurations", spec_fp="abcdef12")


@pytest.mark.parametrize(
    ("changes", "is_trial"),
    [
        ({}, False),
        ({"stage": "hpo_sweep"}, False),
        ({"trial_number": 2}, True),
        ({"trial_id": "trial_2"}, True),
        ({"stage": "hpo_trial", "trial_number": 2}, True),
        ({"process_type": "hpo_refit", "study_key_hash": STUDY, "trial_number": 2}, False),
    ],
)
def test_is_trial(changes: dict[str, Any], is_trial: bool) -> None:
    assert _ctx(**changes).is_trial is is_trial


def test_with_applies_changes_and_validates_again() -> None:
    ctx = _ctx(study_key_hash=STUDY)
    assert ctx.with_(trial_number=3).trial_number == 3
    assert ctx.trial_number is None
    with pytest.raises(NamingError, match="variant"):
        ctx.with_(variant=0)


def test_as_dict_lists_every_field() -> None:
    data = _ctx(study_key_hash=STUDY).as_dict()
    assert data["study_key_hash"] == STUDY
    assert data["storage_env"] == "local"
    assert set(data) >= {"process_type", "model", "environment", "trial_number", "conv_fp"}


def test_contexts_are_frozen() -> None:
    ctx = _ctx()
    with pytest.raises(AttributeError):
        ctx.model = "bert"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("stage", "kind"),
    [
        ("hpo_trial", "hpo"),
        ("hpo_sweep", "hpo"),
        ("refit", "hpo_refit"),
        ("benchmark", "benchmarking"),
        ("training", "final_training"),
        ("best_model_selection", "best_configurations"),
    ],
)
def test_process_type_for_stage(stage: str, kind: str) -> None:
    assert process_type_for_stage(stage) == kind
    assert stage in STAGE_NAMES


def test_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(NamingError, match="cannot tell the process type from stage 'warmup'"):
        process_type_for_stage("warmup")
    with pytest.raises(NamingError, match="hpo_trial"):
        create_naming_context(model="bert", stage="warmup", environment="local")


def test_create_refuses_disagreeing_aliases() -> None:
    with pytest.raises(NamingError, match="disagree") as info:
        create_naming_context("hpo", "bert", backbone="roberta", environment="local")
    assert info.value.key == "model"
    with pytest.raises(NamingError, match="disagree") as info:
        create_naming_context(
            "hpo", "bert", study_hash="abc123", study_key_hash="def456", environment="local"
        )
    assert info.value.key == "study_key_hash"
    same = create_naming_context("hpo", "bert", backbone="bert", environment="local")
    assert same.model == "bert"


def test_create_needs_a_model_and_a_process() -> None:
    with pytest.raises(NamingError, match="model"):
        create_naming_context("hpo", environment="local")
    with pytest.raises(NamingError, match="give process_type"):
        create_naming_context(model="bert", environment="local")


def test_create_refuses_unknown_fields() -> None:
    with pytest.raises(NamingError, match="unknown naming field") as info:
        create_naming_context("hpo", "bert", environment="local", trial=3)
    assert info.value.key == "trial"


@pytest.mark.parametrize(
    ("environ", "platform"),
    [
        ({}, "local"),
        ({"MLINFRA_PLATFORM": "kaggle"}, "kaggle"),
        ({"COLAB_RELEASE_TAG": "release"}, "colab"),
        ({"AZUREML_RUN_ID": "run"}, "azureml"),
    ],
)
def test_create_detects_the_platform_from_the_given_environment(
    environ: dict[str, str], platform: str
) -> None:
    ctx = create_naming_context("hpo", "bert", environ=environ)
    assert ctx.environment == platform == ctx.storage_env


def test_create_refuses_an_unknown_forced_platform() -> None:
    with pytest.raises(ValueError, match="MLINFRA_PLATFORM"):
        create_naming_context("hpo", "bert", environ={"MLINFRA_PLATFORM": "azure"})


def test_naming_errors_are_config_errors_that_pickle() -> None:
    with pytest.raises(ConfigError) as info:
        _ctx(variant=0)
    error = info.value
    assert isinstance(error, NamingError) and isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error)
    assert again.key == "variant"


def test_naming_errors_keep_their_class_through_pickle() -> None:
    again = pickle.loads(pickle.dumps(NamingError("bad", key="variant")))
    assert type(again) is NamingError


def test_with_environment_moves_a_following_storage_env() -> None:
    ctx = create_naming_context(process_type="hpo", model="m", environment="local")
    moved = ctx.with_(environment="colab")
    assert (moved.environment, moved.storage_env) == ("colab", "colab")
    pinned = create_naming_context(
        process_type="hpo", model="m", environment="azureml", storage_env="local"
    )
    assert pinned.with_(environment="kaggle").storage_env == "local"


def test_hpo_sweep_stage_wins_over_a_trial_number() -> None:
    ctx = create_naming_context(
        process_type="hpo", model="m", environment="local", stage="hpo_sweep", trial_number=2
    )
    assert not ctx.is_trial


def test_conversion_fingerprints_follow_a_structured_parent_id() -> None:
    ctx = create_naming_context(
        process_type="conversion",
        model="m",
        environment="local",
        parent_training_id="spec_aaaaaaaa_exec_bbbbbbbb/v2",
        conv_fp="cccccccc",
    )
    assert (ctx.spec_fp, ctx.exec_fp, ctx.variant) == ("aaaaaaaa", "bbbbbbbb", 2)


def test_conversion_parent_id_that_disagrees_is_refused() -> None:
    with pytest.raises(NamingError, match="disagrees with parent_training_id") as info:
        create_naming_context(
            process_type="conversion",
            model="m",
            environment="local",
            parent_training_id="spec_aaaaaaaa_exec_bbbbbbbb/v2",
            spec_fp="dddddddd",
            exec_fp="bbbbbbbb",
            conv_fp="cccccccc",
        )
    assert info.value.key == "spec_fp"


def test_a_bad_platform_variable_is_a_naming_error() -> None:
    with pytest.raises(NamingError, match="did you mean 'azureml'"):
        create_naming_context(process_type="hpo", model="m", environ={"MLINFRA_PLATFORM": "azure"})
