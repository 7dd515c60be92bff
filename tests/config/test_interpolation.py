"""Tests for mlinfra.config.interpolation: ``${...}`` references and environment variables."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mlinfra.config.interpolation import resolve_interpolations
from mlinfra.config.overrides import apply_overrides, parse_override
from mlinfra.config.tree import Source, Tree
from mlinfra.config.yamlio import load_yaml_text
from mlinfra.errors import ConfigError

F = "exp.yaml"


def _tree(text: str) -> Tree:
    return load_yaml_text(text, file=F)


def _resolve(text: str, env: dict[str, str] | None = None) -> Tree:
    return resolve_interpolations(_tree(text), env or {})


def _data(text: str, env: dict[str, str] | None = None) -> Any:
    return _resolve(text, env).data


def _error(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _resolve(text, env)
    return info.value


# --------------------------------------------------------------------------- key references


@pytest.mark.parametrize(
    ("value_text", "expected"),
    [
        ("5", 5),
        ("1.5", 1.5),
        ("true", True),
        ("false", False),
        ("null", None),
        ("text", "text"),
        ("[1, [2]]", [1, [2]]),
        ("{k: v, n: {m: 1}}", {"k": "v", "n": {"m": 1}}),
    ],
)
def test_whole_string_reference_keeps_type(value_text: str, expected: Any) -> None:
    data = _data(f"src:\n  v: {value_text}\ncopy: ${{src.v}}\n")
    assert data["copy"] == expected
    assert type(data["copy"]) is type(expected)


def test_referenced_containers_are_copies() -> None:
    data = _data("a:\n  l: [1, 2]\n  m: {k: 1}\nb: ${a.l}\nc: ${a.m}\n")
    assert data["b"] == [1, 2]
    assert data["b"] is not data["a"]["l"]
    assert data["c"] is not data["a"]["m"]


@pytest.mark.parametrize(
    ("value_text", "expected"),
    [
        ("5", "lr=5!"),
        ("1.5", "lr=1.5!"),
        ("true", "lr=true!"),
        ("false", "lr=false!"),
        ("null", "lr=null!"),
        ("abc", "lr=abc!"),
    ],
)
def test_embedded_reference_becomes_text(value_text: str, expected: str) -> None:
    assert _data(f"v: {value_text}\ns: 'lr=${{v}}!'\n")["s"] == expected


def test_several_expressions_in_one_string() -> None:
    data = _data(
        "model:\n  name: bert\nseed: 7\nrun: '${model.name}-${seed}-${MODE}'\n", {"MODE": "x"}
    )
    assert data["run"] == "bert-7-x"


def test_two_whole_expressions_side_by_side_are_text() -> None:
    assert _data("a: 1\nb: 2\nc: ${a}${b}\n")["c"] == "12"


def test_list_item_references() -> None:
    data = _data("a: [10, 20]\nb: ${a[1]}\nc: ${a.0}\nd: ['${a[0]}', x]\n")
    assert data["b"] == 20
    assert data["c"] == 10
    assert data["d"] == [10, "x"]


def test_references_resolve_recursively_in_any_order() -> None:
    data = _data("first: ${second}\nsecond: ${third.v}\nthird:\n  v: ${fourth}\nfourth: 4\n")
    assert data == {"first": 4, "second": 4, "third": {"v": 4}, "fourth": 4}


def test_reference_to_a_mapping_with_references_inside() -> None:
    data = _data("x: 3\nsection:\n  a: ${x}\n  b: 'n${x}'\ncopy: ${section}\n")
    assert data["copy"] == {"a": 3, "b": "n3"}


def test_reference_through_an_already_resolved_reference() -> None:
    data = _data("a: ${b}\nb:\n  c: 1\nd: ${a.c}\n")
    assert data == {"a": {"c": 1}, "b": {"c": 1}, "d": 1}


def test_reference_through_a_later_reference_is_order_independent() -> None:
    data = _data("d: ${a.c}\na: ${b}\nb:\n  c: 1\n")
    assert data == {"d": 1, "a": {"c": 1}, "b": {"c": 1}}


def test_reference_through_several_later_references() -> None:
    data = _data("x: ${p.q.r}\np: ${m}\nm:\n  q: ${n}\nn:\n  r: 5\n")
    assert data == {"x": 5, "p": {"q": {"r": 5}}, "m": {"q": {"r": 5}}, "n": {"r": 5}}


def test_cycle_through_a_path_step_is_reported() -> None:
    err = _error("a: ${b.c}\nb: ${a}\n")
    assert (err.file, err.line, err.key) == (F, 1, "a")
    assert "interpolation cycle: a -> b -> a" in err.reason


def test_reference_through_a_reference_to_a_scalar_is_missing() -> None:
    err = _error("a: ${b.c}\nb: ${d}\nd: 3\n")
    assert (err.line, err.key) == (1, "a")
    assert "'${b.c}' refers to a key that does not exist" in err.reason


def test_resolution_does_not_touch_the_input_tree() -> None:
    tree = _tree("a: 1\nb: ${a}\nc: ${HOME_X}\n")
    before = (copy.deepcopy(tree.data), dict(tree.sources))
    out = resolve_interpolations(tree, {"HOME_X": "h"})
    assert out.data == {"a": 1, "b": 1, "c": "h"}
    assert (tree.data, tree.sources) == before
    assert out is not tree


def test_strings_without_expressions_are_left_alone() -> None:
    data = _data("a: 'cost $5'\nb: '{x}'\nc: '$ {x}'\nd: '$'\n")
    assert data == {"a": "cost $5", "b": "{x}", "c": "$ {x}", "d": "$"}


# --------------------------------------------------------------------------- literals


def test_double_dollar_writes_a_literal() -> None:
    data = _data("a: $${lit}\nb: 'x $${HOME} y'\nc: 1\nd: '$${c}${c}'\n")
    assert data == {"a": "${lit}", "b": "x ${HOME} y", "c": 1, "d": "${c}1"}


def test_literal_is_not_resolved_again() -> None:
    """The text a literal produces is final, even when another key refers to it."""
    data = _data("a: $${b}\nb: 1\nc: ${a}\n")
    assert data["a"] == "${b}"
    assert data["c"] == "${b}"


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize(
    ("env_value", "expected"),
    [
        ("3", 3),
        ("-2", -2),
        ("1.5", 1.5),
        ("true", True),
        ("False", False),
        ("null", None),
        ("~", None),
        ("hello", "hello"),
        ("'quoted'", "quoted"),
        ("", ""),
        ("[1, 2]", "[1, 2]"),
        ("a: b", "a: b"),
        ("2024-01-01", "2024-01-01"),
        ("!!python/object/apply:os.system ['true']", "!!python/object/apply:os.system ['true']"),
        ("${OTHER}", "${OTHER}"),
    ],
)
def test_env_values_are_read_as_yaml_scalars(env_value: str, expected: Any) -> None:
    data = _data("v: ${VAR}\n", {"VAR": env_value, "OTHER": "no"})
    assert data["v"] == expected
    assert type(data["v"]) is type(expected)


def test_env_value_in_longer_string_is_text() -> None:
    assert _data("p: '/data/${USER_NAME}/x'\n", {"USER_NAME": "ann"})["p"] == "/data/ann/x"
    assert _data("p: 'n=${N}'\n", {"N": "007"})["p"] == "n=7"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 3),
        ({"EPOCHS": ""}, 3),
        ({"EPOCHS": "10"}, 10),
        ({"EPOCHS": "abc"}, "abc"),
    ],
)
def test_env_default(env: dict[str, str], expected: Any) -> None:
    assert _data("epochs: ${EPOCHS:-3}\n", env)["epochs"] == expected


@pytest.mark.parametrize(
    ("default_text", "expected"),
    [
        ("", ""),
        ("1.5", 1.5),
        ("true", True),
        ("/tmp/out", "/tmp/out"),
        ("a:-b", "a:-b"),
        ("null", None),
    ],
)
def test_env_default_is_read_as_yaml_scalar(default_text: str, expected: Any) -> None:
    assert _data(f"v: '${{UNSET_VAR:-{default_text}}}'\n")["v"] == expected


def test_env_set_but_empty_without_default_is_empty_text() -> None:
    assert _data("v: ${VAR}\n", {"VAR": ""})["v"] == ""


def test_env_name_may_have_surrounding_spaces() -> None:
    assert _data("v: ${ VAR }\n", {"VAR": "1"})["v"] == 1


def test_env_is_read_from_the_given_mapping_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLINFRA_TEST_ONLY_IN_OS", "1")
    err = _error("v: ${MLINFRA_TEST_ONLY_IN_OS}\n", {})
    assert "MLINFRA_TEST_ONLY_IN_OS is not set" in err.reason


def test_lowercase_names_are_key_references_not_env() -> None:
    err = _error("v: ${home}\n", {"home": "/root", "HOME": "/root"})
    assert "refers to a key that does not exist" in err.reason


# --------------------------------------------------------------------------- errors


def test_missing_key_error_with_did_you_mean() -> None:
    text = "model:\n  backbone: bert\n  dropout: 0.1\nname: ${model.backbon}\n"
    err = _error(text)
    assert (err.file, err.line, err.key) == (F, 4, "name")
    assert "'${model.backbon}' refers to a key that does not exist" in err.reason
    assert "did you mean model.backbone?" in err.reason


def test_missing_key_error_without_close_match_has_no_hint() -> None:
    err = _error("a: 1\nb: ${zzzzzz.qqqq}\n")
    assert (err.line, err.key) == (2, "b")
    assert "did you mean" not in err.reason


def test_missing_key_inside_list_item_names_item() -> None:
    err = _error("a:\n  - 1\n  - 'x${nope}'\n")
    assert (err.file, err.line, err.key) == (F, 3, "a[1]")


def test_reference_to_a_missing_list_index() -> None:
    err = _error("a: [1]\nb: ${a[3]}\n")
    assert (err.line, err.key) == (2, "b")
    assert "does not exist" in err.reason


def test_unset_env_var_without_default() -> None:
    err = _error("a: 1\nout:\n  dir: ${DATA_ROOT}/x\n", {"OTHER": "1"})
    assert err.file == F
    assert err.line == 3
    assert err.key == "out.dir"
    assert "environment variable DATA_ROOT is not set" in err.reason
    assert "${DATA_ROOT:-default}" in err.reason
    assert str(err).startswith("exp.yaml:3, key 'out.dir': environment variable DATA_ROOT")


def test_cycle_shows_the_chain() -> None:
    err = _error("a: ${b}\nb: ${a}\n")
    assert (err.file, err.line, err.key) == (F, 1, "a")
    assert "interpolation cycle: a -> b -> a" in err.reason


def test_longer_cycle_through_nested_keys() -> None:
    err = _error("a: ${b.c}\nb:\n  c: 'x${d}'\nd: ${a}\n")
    assert "interpolation cycle: a -> b.c -> d -> a" in err.reason


def test_self_reference_is_a_cycle() -> None:
    err = _error("x: 1\nloop: 'again ${loop}'\n")
    assert (err.line, err.key) == (2, "loop")
    assert "interpolation cycle: loop -> loop" in err.reason


def test_reference_to_an_ancestor_is_a_cycle() -> None:
    err = _error("a:\n  b: ${a}\n")
    assert "interpolation cycle" in err.reason
    assert "a -> a.b -> a" in err.reason


@pytest.mark.parametrize(
    ("target", "kind"),
    [("[1, 2]", "list"), ("{k: 1}", "dict")],
)
def test_container_inside_a_longer_string_is_an_error(target: str, kind: str) -> None:
    err = _error(f"a:\n  c: {target}\nb: 'x ${{a.c}}'\n")
    # the line is where the expression is written, not where the container is
    assert (err.file, err.line, err.key) == (F, 3, "b")
    assert f"'${{a.c}}' is a {kind} and cannot be placed inside a longer string" in err.reason


def test_default_on_a_key_reference_is_an_error() -> None:
    err = _error("a: 1\nb: ${a:-3}\n")
    assert (err.file, err.line, err.key) == (F, 2, "b")
    assert "'${a:-3}': a ':-' default is only allowed for environment variables" in err.reason


@pytest.mark.parametrize("expr", ["", " ", "1bad", "a b", "a..b", "a.", "-x", "Mixed Case"])
def test_malformed_expression(expr: str) -> None:
    err = _error(f"a: 1\nb: '${{{expr}}}'\n")
    assert (err.file, err.line, err.key) == (F, 2, "b")
    assert f"'${{{expr}}}' is neither a key reference" in err.reason


def test_error_in_value_set_by_override_names_the_override() -> None:
    tree = apply_overrides(_tree("a: 1\nb: 2\n"), [parse_override("b=${nope}")])
    with pytest.raises(ConfigError) as info:
        resolve_interpolations(tree, {})
    err = info.value
    assert err.key == "b"
    assert err.file is None
    assert "(set by override 'b=${nope}')" in err.reason


def test_error_for_tree_without_sources() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_interpolations(Tree({"a": {"b": "${x.y}"}}, {}), {})
    err = info.value
    assert (err.file, err.line, err.key) == (None, None, "a.b")


# --------------------------------------------------------------------------- provenance


def test_provenance_notes_key_reference() -> None:
    out = _resolve("a:\n  b: 5\nc: ${a.b}\nd: 'x${a.b}'\n")
    assert out.sources[("c",)] == Source(F, 3, note="via ${a.b}")
    assert out.sources[("d",)] == Source(F, 4, note="via ${a.b}")
    assert str(out.sources[("c",)]) == "exp.yaml:3 (via ${a.b})"
    assert out.sources[("a", "b")] == Source(F, 2)


def test_provenance_notes_environment_variable_and_default() -> None:
    out = _resolve("a: ${EPOCHS}\nb: ${BATCH:-8}\nc: '${EPOCHS}/${BATCH:-8}'\n", {"EPOCHS": "3"})
    assert out.data == {"a": 3, "b": 8, "c": "3/8"}
    assert out.sources[("a",)] == Source(F, 1, note="from environment variable EPOCHS")
    assert out.sources[("b",)] == Source(F, 2, note="default of ${BATCH}")
    assert out.sources[("c",)].note == "from environment variable EPOCHS; default of ${BATCH}"
    assert out.sources[("c",)].detail is None


def test_provenance_of_value_without_source_gets_default_origin() -> None:
    out = resolve_interpolations(Tree({"a": 1, "b": "${a}"}, {}), {})
    assert out.data == {"a": 1, "b": 1}
    assert out.sources[("b",)] == Source(origin="default", note="via ${a}")


def test_provenance_of_referenced_container_items() -> None:
    out = _resolve("a:\n  l:\n    - 1\n    - 2\nb: ${a.l}\n")
    assert out.data["b"] == [1, 2]
    assert out.sources[("b", 0)] == Source(F, 3)
    assert out.sources[("b", 1)] == Source(F, 4)


def test_provenance_of_key_holding_a_referenced_container() -> None:
    out = _resolve("a:\n  l:\n    - 1\n    - 2\nb: ${a.l}\n")
    assert out.sources[("b",)] == Source(F, 5, note="via ${a.l}")


def test_provenance_of_override_value_keeps_override_origin() -> None:
    tree = apply_overrides(_tree("a: 1\nb: 2\n"), [parse_override("b=${a}")])
    out = resolve_interpolations(tree, {})
    assert out.data["b"] == 1
    assert out.sources[("b",)] == Source(None, None, "override", "b=${a}", "via ${a}")


# --------------------------------------------------------------------------- robustness


def test_long_reference_chain_does_not_crash() -> None:
    text = "".join(f"a{i}: ${{a{i + 1}}}\n" for i in range(400)) + "a400: 1\n"
    try:
        data = _data(text)
    except ConfigError:
        return
    assert data["a0"] == 1


def test_interpolation_in_file_loaded_tree(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("root: ${ROOT:-/data}\nout: '${root}/runs'\n", encoding="utf-8")
    from mlinfra.config.yamlio import load_yaml_file

    out = resolve_interpolations(load_yaml_file(path, display="c.yaml"), {})
    assert out.data == {"root": "/data", "out": "/data/runs"}
    assert out.sources[("out",)] == Source("c.yaml", 2, note="via ${root}")
