"""Tests for mlinfra.config.overrides: override strings and training-argument overrides."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import pytest

from mlinfra.config.overrides import (
    ARGUMENT_KEYS,
    DOMAINS,
    Override,
    apply_argument_overrides,
    apply_overrides,
    parse_override,
)
from mlinfra.config.tree import Source, Tree, freeze
from mlinfra.config.yamlio import load_yaml_text
from mlinfra.errors import ConfigError

F = "base.yaml"

BASE_TEXT = (
    "model:\n"  # 1
    "  backbone: bert\n"  # 2
    "  dropout: 0.1\n"  # 3
    "hpo:\n"  # 4
    "  sampling:\n"  # 5
    "    max_trials: 10\n"  # 6
    "  search_space:\n"  # 7
    "    batch_size:\n"  # 8
    "      values:\n"  # 9
    "        - 8\n"  # 10
    "        - 16\n"  # 11
    "        - 32\n"  # 12
    "seed: 1\n"  # 13
)


def _tree() -> Tree:
    return load_yaml_text(BASE_TEXT, file=F)


def _apply(*texts: str, tree: Tree | None = None) -> Tree:
    return apply_overrides(tree or _tree(), [parse_override(t) for t in texts])


def _apply_error(*texts: str, tree: Tree | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _apply(*texts, tree=tree)
    return info.value


# --------------------------------------------------------------------------- parse_override


@pytest.mark.parametrize(
    ("text", "op", "key", "value"),
    [
        ("a.b=1", "set", ("a", "b"), 1),
        ("a.b=1.5", "set", ("a", "b"), 1.5),
        ("a.b=true", "set", ("a", "b"), True),
        ("a.b=null", "set", ("a", "b"), None),
        ("a.b=", "set", ("a", "b"), ""),
        ("a.b='5'", "set", ("a", "b"), "5"),
        ("a.b=[1, 2]", "set", ("a", "b"), [1, 2]),
        ("a.b={x: 1}", "set", ("a", "b"), {"x": 1}),
        ("a.b=x=y", "set", ("a", "b"), "x=y"),
        ("a.b=2024-01-01", "set", ("a", "b"), "2024-01-01"),
        ("a.b=${model.backbone}", "set", ("a", "b"), "${model.backbone}"),
        (" a.b = 5 ", "set", ("a", "b"), 5),
        ("+a.new=x", "add", ("a", "new"), "x"),
        ("++a.b=[1, 2]", "force", ("a", "b"), [1, 2]),
        ("~a.b", "delete", ("a", "b"), None),
        ("a.0.b=1", "set", ("a", 0, "b"), 1),
        ("a[0].b=1", "set", ("a", 0, "b"), 1),
        (
            "hpo.search_space.batch_size.values.0=32",
            "set",
            ("hpo", "search_space", "batch_size", "values", 0),
            32,
        ),
        ("a-b.c_d=1", "set", ("a-b", "c_d"), 1),
        ("+model=x", "add", ("model",), "x"),
        ("++model=x", "force", ("model",), "x"),
        ("model.dropout=0.2", "set", ("model", "dropout"), 0.2),
    ],
)
def test_parse_override(text: str, op: str, key: tuple[Any, ...], value: Any) -> None:
    ov = parse_override(text)
    assert ov == Override(text, op, key, value)  # type: ignore[arg-type]
    assert type(ov.value) is type(value)


@pytest.mark.parametrize("domain", DOMAINS)
def test_parse_domain_selection(domain: str) -> None:
    ov = parse_override(f"{domain}=deberta_v3")
    assert (ov.op, ov.key, ov.value) == ("select", (domain,), "deberta_v3")


def test_domains_are_the_documented_ones() -> None:
    assert set(DOMAINS) == {"data", "model", "train", "hpo", "env", "benchmark"}


def test_parse_domain_selection_needs_a_name() -> None:
    with pytest.raises(ConfigError, match="name the model file to use, for example model=NAME"):
        parse_override("model=")
    with pytest.raises(ConfigError, match="name the hpo file"):
        parse_override("hpo=   ")


def test_override_source_is_the_override_text() -> None:
    assert parse_override("+a.b=1").source == Source(origin="override", detail="+a.b=1")
    assert str(parse_override("a.b=1").source) == "override 'a.b=1'"


@pytest.mark.parametrize("text", ["a.b", "", "   ", "+a.b", "++a"])
def test_parse_refuses_missing_equals(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert "expected KEY=VALUE, +KEY=VALUE, ++KEY=VALUE or ~KEY" in info.value.reason
    assert f"override '{text}'" in info.value.reason


@pytest.mark.parametrize(
    ("text", "key_text"),
    [
        ("a..b=1", "a..b"),
        (".a=1", ".a"),
        ("a.=1", "a."),
        ("1a=2", "1a"),
        ("a b=1", "a b"),
        ("a.-1=3", "a.-1"),
        ("a[x]=1", "a[x]"),
        ("a/b=1", "a/b"),
        ("=1", ""),
        ("++=1", ""),
        ("+++a=1", "+a"),
        ("~", ""),
        ("~a..b", "a..b"),
        ("${x}=1", "${x}"),
        ("a.é.b=1", "a.é.b"),
    ],
)
def test_parse_refuses_malformed_keys(text: str, key_text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert f"malformed key {key_text!r}" in info.value.reason
    assert "use dotted names like hpo.sampling.max_trials" in info.value.reason


def test_surrounding_whitespace_is_not_part_of_the_override() -> None:
    assert parse_override("\ta.b=1\r\n").value == 1
    assert parse_override("  ~a.b\n").key == ("a", "b")


@pytest.mark.parametrize(
    "text",
    ["a.b\x00=1", "a.b=x\ny", "a.b=\x7f", "a.b=\tx", "~a\x1b[31m", "a.b=1\rx", "model=x\ny"],
)
def test_parse_refuses_control_characters(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    message = str(info.value)
    assert "control characters are not allowed in overrides" in message
    # the override is shown escaped, so a terminal never interprets it
    assert text.strip().encode("unicode_escape").decode("ascii") in message
    assert not any(ord(c) < 32 or ord(c) == 127 for c in message)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a.b=[1, 2", "malformed YAML"),
        ("a.b={x: 1", "malformed YAML"),
        ("a.b=!!python/object/apply:os.system [ls]", "YAML tag '!!python/object/apply:os.system'"),
        ("a.b=!!binary aGk=", "YAML tag '!!binary'"),
        ("a.b={x: 1, x: 2}", "duplicate key 'x'"),
        ("a.b=" + "[" * 40 + "]" * 40, "nesting deeper than 32 levels"),
    ],
)
def test_parse_refuses_bad_values(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    reason = info.value.reason
    assert reason.startswith(f"override '{text}': cannot read value")
    assert problem in reason


def test_parse_refuses_oversized_value() -> None:
    with pytest.raises(ConfigError, match="65536 byte limit"):
        parse_override("a.b=" + "x" * 70_000)


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(ConfigError, match="override must be a string, got int"):
        parse_override(5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- apply_overrides


def test_set_existing_key_records_override_provenance() -> None:
    out = _apply("model.dropout=0.3")
    assert out.data["model"]["dropout"] == 0.3
    assert out.sources[("model", "dropout")] == Source(
        origin="override", detail="model.dropout=0.3"
    )
    assert out.sources[("model", "backbone")] == Source(F, 2)


def test_set_list_item_by_index() -> None:
    out = _apply("hpo.search_space.batch_size.values.1=64")
    assert out.data["hpo"]["search_space"]["batch_size"]["values"] == [8, 64, 32]
    path = ("hpo", "search_space", "batch_size", "values")
    assert out.sources[(*path, 1)].detail == "hpo.search_space.batch_size.values.1=64"
    assert out.sources[(*path, 0)] == Source(F, 10)


def test_set_container_value_stamps_every_item() -> None:
    text = "model.dropout={p: [1, {q: 2}]}"
    out = _apply(text)
    assert out.data["model"]["dropout"] == {"p": [1, {"q": 2}]}
    src = Source(origin="override", detail=text)
    for path in [
        ("model", "dropout"),
        ("model", "dropout", "p"),
        ("model", "dropout", "p", 0),
        ("model", "dropout", "p", 1),
        ("model", "dropout", "p", 1, "q"),
    ]:
        assert out.sources[path] == src


def test_replacing_a_section_drops_its_old_sources() -> None:
    out = _apply("hpo.search_space=null")
    assert out.data["hpo"]["search_space"] is None
    assert not [p for p in out.sources if p[:2] == ("hpo", "search_space") and len(p) > 2]


def test_add_new_key_and_nested_path() -> None:
    out = _apply("+model.head=linear", "+extra.deep.key=1")
    assert out.data["model"]["head"] == "linear"
    assert out.data["extra"] == {"deep": {"key": 1}}
    assert out.sources[("extra", "deep", "key")].detail == "+extra.deep.key=1"


def test_force_sets_new_and_existing_keys() -> None:
    out = _apply("++model.dropout=0.5", "++model.new.sub=x")
    assert out.data["model"]["dropout"] == 0.5
    assert out.data["model"]["new"] == {"sub": "x"}


def test_delete_key_and_its_sources() -> None:
    out = _apply("~hpo.search_space")
    assert "search_space" not in out.data["hpo"]
    assert not [p for p in out.sources if p[:2] == ("hpo", "search_space")]
    assert out.data["hpo"]["sampling"] == {"max_trials": 10}


def test_delete_then_add_again() -> None:
    out = _apply("~seed", "+seed=5")
    assert out.data["seed"] == 5
    assert out.sources[("seed",)].detail == "+seed=5"


def test_delete_list_item_removes_it() -> None:
    out = _apply("~hpo.search_space.batch_size.values.0")
    assert out.data["hpo"]["search_space"]["batch_size"]["values"] == [16, 32]


def test_delete_list_item_reindexes_sources() -> None:
    out = _apply("~hpo.search_space.batch_size.values.0")
    path = ("hpo", "search_space", "batch_size", "values")
    assert out.sources.get((*path, 0)) == Source(F, 11)
    assert out.sources.get((*path, 1)) == Source(F, 12)
    assert (*path, 2) not in out.sources


def test_overrides_apply_in_order() -> None:
    out = _apply("model.dropout=0.2", "model.dropout=0.4")
    assert out.data["model"]["dropout"] == 0.4
    assert out.sources[("model", "dropout")].detail == "model.dropout=0.4"


def test_custom_source() -> None:
    stage = Source("exp.yaml", 9, "stage", "finetune")
    out = apply_overrides(_tree(), [parse_override("seed=3")], source=stage)
    assert out.sources[("seed",)] == stage


def test_apply_does_not_mutate_input_tree_or_override_value() -> None:
    tree = _tree()
    before = (copy.deepcopy(tree.data), dict(tree.sources))
    ov = parse_override("++model.extra=[1, 2]")
    out = apply_overrides(tree, [ov, parse_override("~seed")])
    assert (tree.data, tree.sources) == before
    out.data["model"]["extra"].append(3)
    assert ov.value == [1, 2]


def test_unknown_key_suggests_plus_and_close_names() -> None:
    err = _apply_error("model.dropuot=0.2")
    assert err.key == "model.dropuot"
    assert "unknown key 'model.dropuot'" in err.reason
    assert "did you mean model.dropout?" in err.reason
    assert "to add a new key write '+model.dropuot=...'" in err.reason
    assert str(err).startswith("key 'model.dropuot': override 'model.dropuot=0.2'")


def test_unknown_parent_for_set_is_unknown_key() -> None:
    err = _apply_error("nothing.here=1")
    assert err.key == "nothing.here"
    assert "'+nothing.here=...'" in err.reason


def test_add_of_existing_key_is_an_error() -> None:
    err = _apply_error("+model.dropout=0.5")
    assert err.key == "model.dropout"
    assert "'model.dropout' already exists; write 'model.dropout=...' to change it" in err.reason


def test_delete_of_missing_key_is_an_error() -> None:
    err = _apply_error("~model.nope")
    assert err.key == "model.nope"
    assert "cannot delete 'model.nope': no such key" in err.reason


def test_delete_under_missing_parent_is_an_error() -> None:
    err = _apply_error("~nope.deeper")
    assert err.key == "nope.deeper"
    assert "unknown key" in err.reason


@pytest.mark.parametrize("text", ["seed.x=1", "+seed.x=1", "++seed.x=1", "~seed.x"])
def test_setting_inside_a_scalar_is_an_error(text: str) -> None:
    err = _apply_error(text)
    assert err.key == "seed.x"
    assert "'seed' holds a int, not a mapping" in err.reason


def test_setting_deep_inside_a_scalar_is_an_error() -> None:
    err = _apply_error("++model.dropout.a.b=1")
    assert err.key == "model.dropout.a.b"
    assert "not a mapping; cannot set keys inside it" in err.reason


def test_setting_deep_inside_a_scalar_names_the_scalar() -> None:
    err = _apply_error("++model.dropout.a.b=1")
    assert "'model.dropout' is a float" in err.reason


@pytest.mark.parametrize(
    "text",
    [
        "hpo.search_space.batch_size.values.5=1",
        "+hpo.search_space.batch_size.values.3=1",
        "++hpo.search_space.batch_size.values.9=1",
        "~hpo.search_space.batch_size.values.3",
        "hpo.search_space.batch_size.values.7.x=1",
    ],
)
def test_list_index_out_of_range_is_an_error(text: str) -> None:
    tree = _tree()
    err = _apply_error(text, tree=tree)
    assert err.key is not None
    assert err.key.startswith("hpo.search_space.batch_size.values[")
    assert tree.data["hpo"]["search_space"]["batch_size"]["values"] == [8, 16, 32]


def test_list_index_out_of_range_messages() -> None:
    assert (
        "index out of range for 'hpo.search_space.batch_size.values'"
        in _apply_error("+hpo.search_space.batch_size.values.3=1").reason
    )
    assert "has 3 items" in _apply_error("hpo.search_space.batch_size.values.7.x=1").reason
    assert "no such key" in _apply_error("~hpo.search_space.batch_size.values.3").reason


def test_key_name_on_a_list_is_an_error() -> None:
    err = _apply_error("hpo.search_space.batch_size.values.first=1")
    assert err.key == "hpo.search_space.batch_size.values.first"


def test_index_on_a_mapping_is_an_error() -> None:
    err = _apply_error("++model.0=1")
    assert err.key == "model[0]"
    assert "'model' is a mapping, not a list" in err.reason


def test_select_cannot_be_applied_to_a_composed_tree() -> None:
    err = _apply_error("model=deberta")
    assert "a domain file choice must be given before the config is composed" in err.reason


def test_error_stops_and_input_is_untouched() -> None:
    tree = _tree()
    before = copy.deepcopy(tree.data)
    with pytest.raises(ConfigError):
        apply_overrides(tree, [parse_override("seed=5"), parse_override("nope=1")])
    assert tree.data == before


# --------------------------------------------------------------------------- argument overrides


def _composed() -> dict[str, Any]:
    return {
        "train": {
            "training": {
                "learning_rate": 0.001,
                "batch_size": 8,
                "epochs": 3,
                "early_stopping": {"enabled": True, "patience": 2},
            }
        },
        "model": {"backbone": "bert", "dropout": 0.1},
        "data": {"use_combined_data": False},
        "hpo": {"sampling": {"max_trials": 10}},
    }


def _flat() -> dict[str, Any]:
    return {
        "training": {
            "learning_rate": 0.001,
            "batch_size": 8,
            "early_stopping": {"enabled": True},
        },
        "model": {"dropout": 0.1},
        "data": {},
    }


def test_argument_keys_target_documented_paths() -> None:
    assert ARGUMENT_KEYS["early_stopping_enabled"] == (
        "train",
        "training",
        "early_stopping",
        "enabled",
    )
    assert ARGUMENT_KEYS["dropout"] == ("model", "dropout")
    assert all(isinstance(k, tuple) and k for k in ARGUMENT_KEYS.values())


def test_namespace_on_composed_tree() -> None:
    config = _composed()
    before = copy.deepcopy(config)
    args = argparse.Namespace(
        learning_rate=0.5,
        batch_size=None,
        early_stopping_enabled="false",
        dropout=0.3,
        random_seed=7,
        use_combined_data=True,
    )
    out = apply_argument_overrides(config, args)
    assert config == before
    training = out["train"]["training"]
    assert training["learning_rate"] == 0.5
    assert training["batch_size"] == 8  # None means "not given"
    assert training["early_stopping"] == {"enabled": False, "patience": 2}
    assert training["random_seed"] == 7
    assert out["model"] == {"backbone": "bert", "dropout": 0.3}
    assert out["data"]["use_combined_data"] is True
    assert "training" not in out
    assert vars(args)["batch_size"] is None


def test_namespace_on_flat_training_config() -> None:
    config = _flat()
    args = argparse.Namespace(
        learning_rate=0.5,
        early_stopping_enabled="False",
        fold_splits_file=Path("/splits/folds.json"),
        k_folds=5,
        epochs=None,
    )
    out = apply_argument_overrides(config, args)
    assert out["training"]["learning_rate"] == 0.5
    assert out["training"]["early_stopping"]["enabled"] is False
    assert out["training"]["fold_splits_file"] == "/splits/folds.json"
    assert out["training"]["k_folds"] == 5
    assert "epochs" not in out["training"]
    assert "train" not in out
    assert config == _flat()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("false", False),
        ("FALSE", False),
        (" no ", False),
        ("0", False),
        ("true", True),
        ("Yes", True),
        ("1", True),
        (False, False),
        (True, True),
    ],
)
def test_early_stopping_enabled_coercion(given: Any, expected: bool) -> None:
    out = apply_argument_overrides(_flat(), {"early_stopping_enabled": given})
    assert out["training"]["early_stopping"]["enabled"] is expected


def test_namespace_ignores_arguments_that_are_not_training_arguments() -> None:
    args = argparse.Namespace(
        learning_rate=0.5, output_dir="/tmp/out", verbose=True, config="exp.yaml"
    )
    out = apply_argument_overrides(_composed(), args)
    assert out["train"]["training"]["learning_rate"] == 0.5
    expected = _composed()
    expected["train"]["training"]["learning_rate"] = 0.5
    assert out == expected


def test_mapping_refuses_unknown_plain_names() -> None:
    """In a mapping, a name that is not a training argument is a key that must exist."""
    with pytest.raises(ConfigError) as info:
        apply_argument_overrides(_composed(), {"output_dir": "/tmp/out"})
    assert info.value.key == "output_dir"
    assert "unknown key 'output_dir'" in info.value.reason


@pytest.mark.parametrize("bad", ["a..b", "a b", "1x", "", "x.${y}"])
def test_mapping_refuses_malformed_keys(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_argument_overrides(_composed(), {bad: 1})
    assert f"malformed key {bad!r}" in info.value.reason


def test_early_stopping_enabled_refuses_other_text() -> None:
    with pytest.raises(ConfigError) as info:
        apply_argument_overrides(_flat(), {"early_stopping_enabled": "maybe"})
    assert info.value.key == "early_stopping_enabled"
    assert "must be true or false, got 'maybe'" in info.value.reason


def test_mapping_with_argument_names_and_dotted_keys() -> None:
    config = _composed()
    overrides = {"batch_size": 32, "hpo.sampling.max_trials": 3, "model.backbone": None}
    snapshot = copy.deepcopy(overrides)
    out = apply_argument_overrides(config, overrides)
    assert out["train"]["training"]["batch_size"] == 32
    assert out["hpo"]["sampling"]["max_trials"] == 3
    assert out["model"]["backbone"] == "bert"
    assert overrides == snapshot
    assert config == _composed()


def test_mapping_values_are_copied() -> None:
    value = [1, 2]
    out = apply_argument_overrides(_composed(), {"hpo.sampling.max_trials": value})
    out["hpo"]["sampling"]["max_trials"].append(3)
    assert value == [1, 2]


def test_mapping_with_unknown_dotted_key_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        apply_argument_overrides(_composed(), {"model.dropuot": 0.2})
    assert info.value.key == "model.dropuot"
    assert "did you mean model.dropout?" in info.value.reason


def test_list_of_strings() -> None:
    config = _composed()
    texts = ["model.dropout=0.2", "+extra.k=1", "~hpo.sampling", "++train.training.epochs=9"]
    snapshot = list(texts)
    out = apply_argument_overrides(config, texts)
    assert out["model"]["dropout"] == 0.2
    assert out["extra"] == {"k": 1}
    assert out["hpo"] == {}
    assert out["train"]["training"]["epochs"] == 9
    assert texts == snapshot
    assert config == _composed()


def test_tuple_of_strings_is_accepted() -> None:
    out = apply_argument_overrides(_composed(), ("model.dropout=0.25",))
    assert out["model"]["dropout"] == 0.25


@pytest.mark.parametrize("single", ["model.dropout=0.2", b"model.dropout=0.2"])
def test_single_string_is_refused(single: Any) -> None:
    with pytest.raises(
        ConfigError, match="overrides must be a list of strings, not a single string"
    ):
        apply_argument_overrides(_composed(), single)


def test_list_with_bad_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'model\.nope'"):
        apply_argument_overrides(_composed(), ["model.nope=1"])


def test_domain_selection_without_config_dir_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        apply_argument_overrides(_composed(), ["model=deberta"])
    assert "override 'model=deberta': choosing a domain file needs config_dir" in str(info.value)


def test_domain_selection_with_config_dir(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "deberta.yaml").write_text(
        "backbone: deberta\ndropout: 0.2\n", encoding="utf-8"
    )
    config = _composed()
    out = apply_argument_overrides(
        config, ["model=deberta", "model.dropout=0.3"], config_dir=tmp_path
    )
    assert out["model"] == {"backbone": "deberta", "dropout": 0.3}
    assert config == _composed()


def test_domain_selection_of_missing_file_lists_options(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bert.yaml").write_text("backbone: bert\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        apply_argument_overrides(_composed(), ["model=deberta"], config_dir=tmp_path)
    assert "no file model/deberta.yaml" in info.value.reason
    assert "bert" in info.value.reason


def test_domain_selection_refuses_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a path"):
        apply_argument_overrides(_composed(), ["model=../secret"], config_dir=tmp_path)


def test_namespace_with_nothing_given_returns_equal_copy() -> None:
    config = _composed()
    out = apply_argument_overrides(config, argparse.Namespace(learning_rate=None, dropout=None))
    assert out == config
    assert out is not config
    out["model"]["dropout"] = 9
    assert config["model"]["dropout"] == 0.1


def test_frozen_config_is_accepted() -> None:
    out = apply_argument_overrides(freeze(_composed()), argparse.Namespace(learning_rate=0.5))
    assert out["train"]["training"]["learning_rate"] == 0.5
