"""Run keys, counter keys, study keys and trial keys: what they hold and what they ignore."""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra.config import compose_experiment
from mlinfra.errors import NamingError
from mlinfra.naming import (
    STUDY_KEY_SCHEMA,
    TRIAL_KEY_SCHEMA,
    NamingContext,
    build_counter_key,
    build_hpo_study_key,
    build_hpo_trial_key,
    build_mlflow_run_key,
    build_mlflow_run_key_hash,
    compute_study_key_hash,
    compute_trial_key_hash,
    create_naming_context,
    get_or_compute_study_key_hash,
    get_or_compute_trial_key_hash,
)

STUDY = "350a79aa" + "0" * 56
OTHER_STUDY = "350a79aa" + "f" * 56
TRIAL = "747428f2" + "1" * 56
SPEC, EXEC, CONV, BENCH = "abc123de" * 2, "0123abcd" * 2, "c0ffee12" * 2, "abcdef12" * 2


def _ctx(process_type: str = "hpo", **fields: Any) -> NamingContext:
    fields.setdefault("model", "distilbert")
    fields.setdefault("environment", "local")
    return create_naming_context(process_type, **fields)


# ---------------------------------------------------------------------------------------------
# run keys


@pytest.mark.parametrize(
    ("context", "key"),
    [
        (_ctx(study_key_hash=STUDY), f"hpo:distilbert:study_{STUDY}"),
        (
            _ctx(study_key_hash=STUDY, trial_number=3),
            f"hpo:distilbert:study_{STUDY}:trial_n3",
        ),
        (
            _ctx(study_key_hash=STUDY, trial_number=3, trial_key_hash=TRIAL),
            f"hpo:distilbert:study_{STUDY}:trial_{TRIAL}",
        ),
        (
            _ctx(study_key_hash=STUDY, trial_number=3, fold_idx=2),
            f"hpo:distilbert:study_{STUDY}:trial_n3:fold_2",
        ),
        (
            _ctx("hpo_refit", study_key_hash=STUDY, trial_key_hash=TRIAL, trial_number=3),
            f"hpo_refit:distilbert:study_{STUDY}:trial_{TRIAL}",
        ),
        (
            _ctx("hpo_refit", study_key_hash=STUDY, trial_number=3),
            f"hpo_refit:distilbert:study_{STUDY}:trial_n3",
        ),
        (
            _ctx("benchmarking", study_key_hash=STUDY, trial_key_hash=TRIAL),
            f"benchmark:distilbert:study_{STUDY}:trial_{TRIAL}:bench_none",
        ),
        (
            _ctx(
                "benchmarking",
                study_key_hash=STUDY,
                trial_key_hash=TRIAL,
                benchmark_config_hash=BENCH,
            ),
            f"benchmark:distilbert:study_{STUDY}:trial_{TRIAL}:bench_{BENCH}",
        ),
        (
            _ctx("final_training", spec_fp=SPEC, exec_fp=EXEC, variant=2),
            f"final_training:distilbert:spec_{SPEC}:exec_{EXEC}:v2",
        ),
        (
            _ctx("conversion", parent_training_id=f"spec_{SPEC}_exec_{EXEC}/v2", conv_fp=CONV),
            f"conversion:distilbert:spec_{SPEC}_exec_{EXEC}/v2:conv_{CONV}",
        ),
        (
            _ctx("conversion", spec_fp=SPEC, exec_fp=EXEC, variant=3, conv_fp=CONV),
            f"conversion:distilbert:spec_{SPEC}_exec_{EXEC}/v3:conv_{CONV}",
        ),
        (
            _ctx("best_configurations", spec_fp=SPEC),
            f"best_configurations:distilbert:spec_{SPEC}",
        ),
    ],
    ids=[
        "sweep",
        "trial-number",
        "trial-hash",
        "fold",
        "refit",
        "refit-number",
        "bench-none",
        "bench",
        "final",
        "conversion",
        "conversion-fps",
        "best",
    ],
)
def test_run_key_templates(context: NamingContext, key: str) -> None:
    assert build_mlflow_run_key(context) == key
    assert build_mlflow_run_key_hash(context) == hashlib.sha256(key.encode()).hexdigest()


def test_a_sweep_key_needs_the_study_hash() -> None:
    with pytest.raises(NamingError, match="needs study_key_hash") as info:
        build_mlflow_run_key(_ctx())
    assert info.value.key == "study_key_hash"
    with pytest.raises(NamingError, match="an HPO trial needs study_key_hash"):
        build_mlflow_run_key(_ctx(trial_number=1))


def test_a_trial_key_needs_a_trial_identity() -> None:
    with pytest.raises(NamingError, match="trial_key_hash or trial_number"):
        build_mlflow_run_key(_ctx(study_key_hash=STUDY, trial_id="t-1"))


def test_trial_keys_are_scoped_by_study() -> None:
    one = _ctx(study_key_hash=STUDY, trial_number=3)
    two = _ctx(study_key_hash=OTHER_STUDY, trial_number=3)
    assert build_mlflow_run_key(one) != build_mlflow_run_key(two)


def test_the_platform_is_not_part_of_a_run_key() -> None:
    local = _ctx(study_key_hash=STUDY, environment="local")
    colab = _ctx(study_key_hash=STUDY, environment="colab", storage_env="kaggle")
    assert build_mlflow_run_key_hash(local) == build_mlflow_run_key_hash(colab)


def test_the_model_is_used_as_given() -> None:
    short = _ctx(study_key_hash=STUDY, model="distilbert")
    long = _ctx(study_key_hash=STUDY, model="distilbert-base-uncased")
    spaced = _ctx(study_key_hash=STUDY, model="  distilbert ")
    assert build_mlflow_run_key(short) != build_mlflow_run_key(long)
    assert build_mlflow_run_key(short) == build_mlflow_run_key(spaced)
    assert build_mlflow_run_key(long).startswith("hpo:distilbert-base-uncased:")


def test_parent_training_ids_are_canonical_in_keys() -> None:
    keys = {
        build_mlflow_run_key(_ctx("conversion", parent_training_id=parent, conv_fp=CONV))
        for parent in (
            f"spec_{SPEC}_exec_{EXEC}/v1",
            f"spec-{SPEC}-exec-{EXEC}/v1",
            f"spec_{SPEC.upper()}_exec_{EXEC}",
        )
    }
    assert keys == {f"conversion:distilbert:spec_{SPEC}_exec_{EXEC}/v1:conv_{CONV}"}
    free = _ctx("conversion", parent_training_id=" run-7 ", conv_fp=CONV)
    assert build_mlflow_run_key(free) == f"conversion:distilbert:run-7:conv_{CONV}"


def test_run_key_hash_matches_the_reference() -> None:
    digest = build_mlflow_run_key_hash("hpo:distilbert:trial_3")
    assert len(digest) == 64
    assert digest.startswith("b5a03f30") and digest.endswith("6f3c")
    with pytest.raises(NamingError, match="non-empty"):
        build_mlflow_run_key_hash("  ")


def test_counter_key() -> None:
    digest = build_mlflow_run_key_hash("hpo:distilbert:trial_3")
    assert build_counter_key("resume-ner", "hpo", digest, "colab") == (
        f"resume-ner:hpo:{digest}:colab"
    )


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("", "hpo", "a" * 64, "local"), "project"),
        (("a:b", "hpo", "a" * 64, "local"), "project"),
        (("p", " ", "a" * 64, "local"), "process"),
        (("p", "hpo", "abc", "local"), "run_key_hash"),
        (("p", "hpo", "A" * 64, "local"), "run_key_hash"),
        (("p", "hpo", "a" * 64, "azure"), "storage_env"),
    ],
)
def test_counter_key_refuses_bad_parts(args: tuple[str, str, str, str], key: str) -> None:
    with pytest.raises(NamingError) as info:
        build_counter_key(*args)
    assert info.value.key == key


# ---------------------------------------------------------------------------------------------
# study keys

DATA: dict[str, Any] = {
    "name": "resume_tiny",
    "version": "1.0",
    "local_path": "../dataset_tiny",
    "seed": 0,
    "splitting": {"train_test_ratio": 0.8, "random_seed": 42},
    "schema": {"entity_types": ["NAME", "EMAIL"]},
    "description": "not part of the identity",
}
HPO: dict[str, Any] = {
    "search_space": {
        "learning_rate": {"type": "loguniform", "min": 1e-5, "max": 5e-5},
        "batch_size": {"type": "choice", "values": [8, 16]},
    },
    "sampling": {"algorithm": "tpe", "max_trials": 20, "timeout_minutes": 720, "seed": 1},
    "objective": {"metric": "macro-f1", "direction": "maximize"},
    "k_fold": {"enabled": True, "n_splits": 5},
    "early_termination": {"policy": "median"},
    "checkpoint": {"study_name": "hpo_distilbert_prod"},
}
TRAIN: dict[str, Any] = {
    "training": {"epochs": 3, "batch_size": 16, "max_steps": None},
    "logging": {"log_interval": 10},
}


def _study(**changes: Any) -> str:
    args: dict[str, Any] = {
        "data": DATA,
        "hpo": HPO,
        "train": TRAIN,
        "model": "distilbert",
    }
    args.update(changes)
    return compute_study_key_hash(**args)


def _with(tree: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(dict(tree))
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return out


def test_study_key_payload() -> None:
    payload = build_hpo_study_key(
        data=DATA, hpo=HPO, train=TRAIN, model=" distilbert ", data_fingerprint="f" * 16
    )
    assert payload == {
        "schema": STUDY_KEY_SCHEMA,
        "model": "distilbert",
        "data": {
            "name": "resume_tiny",
            "version": "1.0",
            "local_path": "../dataset_tiny",
            "seed": 0,
            "splitting": {"train_test_ratio": 0.8, "random_seed": 42},
            "schema": {"entity_types": ["NAME", "EMAIL"]},
            "fingerprint": "f" * 16,
        },
        "hpo": {
            "search_space": HPO["search_space"],
            "objective": HPO["objective"],
            "k_fold": HPO["k_fold"],
            "early_termination": HPO["early_termination"],
            "sampling": {"algorithm": "tpe"},
        },
        "training": {"epochs": 3, "batch_size": 16, "max_steps": None},
    }
    assert len(_study()) == 64


def test_changing_the_dataset_seed_changes_the_study_key() -> None:
    assert _study(data=_with(DATA, "seed", 1)) != _study()


def test_changing_the_training_epochs_changes_the_study_key() -> None:
    assert _study(train=_with(TRAIN, "training.epochs", 4)) != _study()


def test_raising_the_trial_budget_keeps_the_study_key() -> None:
    assert _study(hpo=_with(HPO, "sampling.max_trials", 200)) == _study()
    assert _study(hpo=_with(HPO, "sampling.timeout_minutes", 5)) == _study()


@pytest.mark.parametrize(
    "changes",
    [
        {"data": _with(DATA, "local_path", "../dataset")},
        {"data": _with(DATA, "version", "2.0")},
        {"data": _with(DATA, "splitting.random_seed", 7)},
        {"data_fingerprint": "0" * 16},
        {"model": "distilbert-base-uncased"},
        {"hpo": _with(HPO, "search_space.batch_size.values", [8, 32])},
        {"hpo": _with(HPO, "objective.direction", "minimize")},
        {"hpo": _with(HPO, "sampling.algorithm", "random")},
        {"hpo": _with(HPO, "k_fold.n_splits", 3)},
        {"train": _with(TRAIN, "training.max_steps", 100)},
    ],
    ids=lambda c: next(iter(c)),
)
def test_what_changes_the_study_key(changes: dict[str, Any]) -> None:
    assert _study(**changes) != _study()


@pytest.mark.parametrize(
    "changes",
    [
        {"data": _with(DATA, "description", "other")},
        {"hpo": _with(HPO, "sampling.seed", 99)},
        {"hpo": _with(HPO, "checkpoint.study_name", "renamed")},
        {"train": _with(TRAIN, "logging.log_interval", 50)},
        {"model": "distilbert  "},
        {"hpo": _with(HPO, "search_space.learning_rate.min", 0.00001)},
    ],
    ids=lambda c: next(iter(c)),
)
def test_what_does_not_change_the_study_key(changes: dict[str, Any]) -> None:
    assert _study(**changes) == _study()


def test_study_key_of_the_example_experiment(config_dir: Path) -> None:
    tree = compose_experiment(config_dir, "resume_ner_baseline", environ={}).to_dict()
    base = compute_study_key_hash(
        data=tree["data"], hpo=tree["hpo"], train=tree["train"], model=tree["model"]["backbone"]
    )
    more = compose_experiment(
        config_dir, "resume_ner_baseline", overrides=["hpo.sampling.max_trials=50"], environ={}
    ).to_dict()
    assert base == compute_study_key_hash(
        data=more["data"], hpo=more["hpo"], train=more["train"], model=more["model"]["backbone"]
    )
    seeded = compose_experiment(
        config_dir, "resume_ner_baseline", overrides=["data.seed=1"], environ={}
    ).to_dict()
    assert base != compute_study_key_hash(
        data=seeded["data"],
        hpo=seeded["hpo"],
        train=seeded["train"],
        model=seeded["model"]["backbone"],
    )


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"model": " "}, "model"),
        ({"data": {"version": "1"}}, "data.name"),
        ({"data": ["not", "a", "mapping"]}, "data"),
        ({"hpo": _with(HPO, "search_space", {})}, "hpo.search_space"),
        ({"hpo": {k: v for k, v in HPO.items() if k != "objective"}}, "hpo.objective"),
        ({"train": {"epochs": 3}}, "train.training"),
    ],
)
def test_study_key_refuses_incomplete_configs(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(NamingError) as info:
        _study(**changes)
    assert info.value.key == key


def test_a_data_fingerprint_alone_identifies_the_dataset() -> None:
    assert len(_study(data={}, data_fingerprint="ab" * 8)) == 64


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    return value


@settings(deadline=None)
@given(seed=st.integers())
def test_study_key_ignores_key_order(seed: int) -> None:
    rng = random.Random(seed)
    shuffled = _study(
        data=_shuffled(DATA, rng), hpo=_shuffled(HPO, rng), train=_shuffled(TRAIN, rng)
    )
    assert shuffled == _study()


def test_get_or_compute_study_key_hash() -> None:
    assert get_or_compute_study_key_hash(" ABC123 ") == "abc123"
    calls: list[str] = []

    def lookup() -> str | None:
        calls.append("asked")
        return STUDY

    assert get_or_compute_study_key_hash(STUDY.upper(), lookup=lookup) == STUDY
    assert calls == []
    assert get_or_compute_study_key_hash(lookup=lookup) == STUDY
    assert calls == ["asked"]
    computed = get_or_compute_study_key_hash(
        data=DATA, hpo=HPO, train=TRAIN, model="distilbert", lookup=lambda: None
    )
    assert computed == _study()


def test_get_or_compute_study_key_hash_names_what_is_missing() -> None:
    with pytest.raises(NamingError, match="computing one needs data, hpo, train, model"):
        get_or_compute_study_key_hash()
    with pytest.raises(NamingError, match=r"needs train$"):
        get_or_compute_study_key_hash(data=DATA, hpo=HPO, model="m", lookup=lambda: None)
    with pytest.raises(NamingError, match="hex digest"):
        get_or_compute_study_key_hash("not-a-hash")
    with pytest.raises(NamingError, match="hex digest"):
        get_or_compute_study_key_hash(lookup=lambda: "nope")


# ---------------------------------------------------------------------------------------------
# trial keys

PARAMS: dict[str, Any] = {"learning_rate": 3e-5, "batch_size": 16, "optimizer": "AdamW"}


def test_trial_key_payload() -> None:
    assert build_hpo_trial_key(STUDY.upper(), PARAMS) == {
        "schema": TRIAL_KEY_SCHEMA,
        "study_key_hash": STUDY,
        "hyperparameters": PARAMS,
    }
    assert len(compute_trial_key_hash(STUDY, PARAMS)) == 64


def test_two_different_studies_never_share_a_trial_key() -> None:
    assert compute_trial_key_hash(STUDY, PARAMS) != compute_trial_key_hash(OTHER_STUDY, PARAMS)


def test_trial_key_values_are_kept_exactly() -> None:
    base = compute_trial_key_hash(STUDY, PARAMS)
    assert compute_trial_key_hash(STUDY, {**PARAMS, "optimizer": "adamw"}) != base
    assert compute_trial_key_hash(STUDY, {**PARAMS, "learning_rate": 3.0000001e-5}) != base
    assert compute_trial_key_hash(STUDY, {**PARAMS, "learning_rate": 0.00003}) == base


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("xyz", PARAMS), "study_key_hash"),
        ((STUDY, ["lr"]), "hyperparameters"),
        ((STUDY, {1: 2}), "hyperparameters"),
        ((STUDY, {"lr": float("nan")}), "hyperparameters"),
        ((STUDY, {"lr": object()}), "hyperparameters"),
    ],
)
def test_trial_key_refuses_bad_input(args: tuple[Any, Any], key: str) -> None:
    with pytest.raises(NamingError) as info:
        compute_trial_key_hash(*args)
    assert info.value.key == key


@settings(deadline=None)
@given(
    params=st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.one_of(
            st.integers(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=10),
            st.booleans(),
        ),
        max_size=8,
    ),
    seed=st.integers(),
)
def test_trial_key_ignores_key_order(params: dict[str, Any], seed: int) -> None:
    items = list(params.items())
    random.Random(seed).shuffle(items)
    assert compute_trial_key_hash(STUDY, dict(items)) == compute_trial_key_hash(STUDY, params)


def test_get_or_compute_trial_key_hash() -> None:
    assert get_or_compute_trial_key_hash(TRIAL.upper()) == TRIAL
    assert get_or_compute_trial_key_hash(lookup=lambda: TRIAL) == TRIAL
    computed = get_or_compute_trial_key_hash(
        study_key_hash=STUDY, hyperparameters=PARAMS, lookup=lambda: None
    )
    assert computed == compute_trial_key_hash(STUDY, PARAMS)
    with pytest.raises(NamingError, match="computing one needs study_key_hash, hyperparameters"):
        get_or_compute_trial_key_hash()
    with pytest.raises(NamingError, match=r"needs hyperparameters$"):
        get_or_compute_trial_key_hash(study_key_hash=STUDY)
