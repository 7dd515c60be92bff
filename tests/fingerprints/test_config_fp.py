"""Config fingerprints: what changes them and what does not."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlinfra.fingerprints import (
    DEFAULT_VOLATILE,
    ConfigFingerprint,
    compute_config_hash,
    config_fingerprint,
)

BASE: dict[str, Any] = {
    "experiment": {"name": "resume_ner_baseline", "stage": "smoke"},
    "data": {
        "name": "resume_tiny",
        "local_path": "../dataset_tiny",
        "seed": 0,
        "description": "tiny",
        "splitting": {"train_test_ratio": 0.8, "random_seed": 42},
    },
    "model": {
        "backbone": "distilbert",
        "dropout": 0.1,
        "layers": [768, 256],
        "deep": {"nested": {"device": "cpu", "verbose": False, "width": 2}},
    },
    "train": {
        "training": {"epochs": 3, "learning_rate": 2e-5, "seed": 7, "num_workers": 4},
        "logging": {"log_interval": 10},
        "output_dir": "outputs/x",
    },
    "env": {"device": "cpu", "logging": {"level": "INFO"}},
}


def _fp(config: dict[str, Any], **kwargs: Any) -> str:
    return config_fingerprint(config, **kwargs).hash


def _with(path: str, value: Any, config: dict[str, Any] | None = None) -> dict[str, Any]:
    out = copy.deepcopy(BASE if config is None else config)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def _reversed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    return value


def test_hash_is_64_hex_and_stable() -> None:
    found = config_fingerprint(BASE)
    assert isinstance(found, ConfigFingerprint)
    assert len(found.hash) == 64 and int(found.hash, 16) >= 0
    assert _fp(copy.deepcopy(BASE)) == found.hash
    assert compute_config_hash(BASE) == found.hash


def test_key_order_does_not_matter() -> None:
    flipped = _reversed(BASE)
    assert list(flipped) != list(BASE)
    assert list(flipped["train"]["training"]) != list(BASE["train"]["training"])
    assert _fp(flipped) == _fp(BASE)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("train.output_dir", "/elsewhere"),
        ("env.device", "cuda:1"),
        ("env.logging.level", "DEBUG"),
        ("env.logging", None),
        ("train.logging.log_interval", 1),
        ("train.training.num_workers", 16),
        ("data.description", "a different description"),
        ("model.deep.nested.device", "mps"),
        ("model.deep.nested.verbose", True),
        ("train.training.dataloader_num_workers", 2),
        ("train.progress_bar", False),
        ("train.log_dir", "logs/"),
    ],
)
def test_volatile_keys_do_not_count_at_any_depth(path: str, value: Any) -> None:
    assert _fp(_with(path, value)) == _fp(BASE)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("train.training.epochs", 4),
        ("train.training.learning_rate", 3e-5),
        ("data.seed", 1),
        ("data.splitting.random_seed", 43),
        ("data.local_path", "../dataset"),
        ("model.backbone", "bert"),
        ("model.new_key", None),
        ("env.precision", "bf16"),
        ("benchmark", {"batch_sizes": [1]}),
    ],
)
def test_values_that_count(path: str, value: Any) -> None:
    assert _fp(_with(path, value)) != _fp(BASE)


def test_removing_a_key_counts() -> None:
    smaller = copy.deepcopy(BASE)
    del smaller["model"]["dropout"]
    assert _fp(smaller) != _fp(BASE)


def test_int_and_float_differ_and_list_order_counts() -> None:
    assert _fp(_with("train.training.epochs", 3.0)) != _fp(BASE)
    assert _fp(_with("model.layers", [256, 768])) != _fp(BASE)
    assert _fp(_with("model.layers", [768, 256, 0])) != _fp(BASE)
    assert _fp(_with("model.flag", True)) != _fp(_with("model.flag", 1))
    assert _fp(_with("model.name", "1")) != _fp(_with("model.name", 1))


def test_volatile_keys_inside_lists_of_mappings() -> None:
    one = _with("model.heads", [{"size": 3, "device": "cpu"}, {"size": 5}])
    two = _with("model.heads", [{"size": 3, "device": "cuda"}, {"size": 5}])
    three = _with("model.heads", [{"size": 4, "device": "cpu"}, {"size": 5}])
    assert _fp(one) == _fp(two)
    assert _fp(one) != _fp(three)


def test_a_declared_pattern_matches_trailing_parts_only() -> None:
    declared = ("training.seed",)
    changed_train_seed = _with("train.training.seed", 8)
    changed_data_seed = _with("data.seed", 8)
    assert _fp(changed_train_seed, volatile=declared) == _fp(BASE, volatile=declared)
    assert _fp(changed_data_seed, volatile=declared) != _fp(BASE, volatile=declared)
    # without the declaration the training seed counts
    assert _fp(changed_train_seed) != _fp(BASE)
    # a pattern matches whole key names, not parts of one
    pre = _with("train.pretraining", {"seed": 1})
    assert _fp(_with("train.pretraining.seed", 2, pre), volatile=declared) != _fp(
        pre, volatile=declared
    )
    found = config_fingerprint(BASE, volatile=declared)
    assert "train.training.seed" in found.volatile
    assert "train.training.seed" not in found.values
    assert found.values["data.seed"] == 0
    assert compute_config_hash(changed_train_seed, volatile=declared) == found.hash


def test_glob_patterns_and_full_paths() -> None:
    assert _fp(_with("train.training.epochs", 9), volatile=("train.*.epochs",)) == _fp(
        BASE, volatile=("train.*.epochs",)
    )
    assert _fp(_with("model.dropout", 0.5), volatile=("model.drop*",)) == _fp(
        BASE, volatile=("model.drop*",)
    )
    # a full-path pattern anchored at the top does not match the same key under another domain
    assert _fp(_with("data.dropout", 0.5), volatile=("model.dropout",)) != _fp(
        BASE, volatile=("model.dropout",)
    )


def test_defaults_can_be_turned_off() -> None:
    moved = _with("train.output_dir", "/elsewhere")
    assert _fp(moved, defaults=False) != _fp(BASE, defaults=False)
    assert _fp(moved, defaults=False, volatile=("output_dir",)) == _fp(
        BASE, defaults=False, volatile=("output_dir",)
    )


def test_the_experiment_domain_does_not_count() -> None:
    other_stage = _with("experiment.stage", "hpo")
    other_name = _with("experiment.name", "something_else")
    assert _fp(other_stage) == _fp(BASE) == _fp(other_name)
    without = copy.deepcopy(BASE)
    del without["experiment"]
    assert _fp(without) == _fp(BASE)
    # only the top-level domain: a key named experiment elsewhere counts
    assert _fp(_with("model.experiment", "x")) != _fp(BASE)


def test_values_lists_the_leaves_that_count() -> None:
    found = config_fingerprint(BASE)
    assert found.values["train.training.epochs"] == 3
    assert found.values["model.layers"] == [768, 256]
    assert found.values["data.splitting.random_seed"] == 42
    assert not any(k.startswith("experiment") for k in found.values)
    for dropped in ("train.output_dir", "env.device", "env.logging", "train.logging"):
        assert dropped in found.volatile
        assert not any(k == dropped or k.startswith(f"{dropped}.") for k in found.values)
    assert "data.description" not in found.values
    assert found.values["env"] == {}  # everything under env is volatile: an empty leaf
    assert all(not isinstance(v, dict) or v == {} for v in found.values.values())


def test_default_volatile_names_the_documented_keys() -> None:
    for name in ("output_dir", "device", "logging", "description", "num_workers"):
        assert name in DEFAULT_VOLATILE


def test_a_value_without_a_json_form_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        config_fingerprint(_with("model.obj", object()))
    with pytest.raises(TypeError):
        config_fingerprint(_with("model.lr", float("nan")))
