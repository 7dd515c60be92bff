"""Tests for mlinfra.config.merge: deep merge of plain data and of trees with provenance."""

from __future__ import annotations

import copy
import doctest
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra.config import merge as merge_module
from mlinfra.config.merge import merge_configs_with_precedence, merge_trees
from mlinfra.config.tree import KeyPath, Source, Tree, freeze
from mlinfra.config.yamlio import load_yaml_text

PROPERTY = settings(deadline=None, database=None)

# --------------------------------------------------------------------------- strategies

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-3, max_value=3)
    | st.sampled_from([0.5, -0.0, 1e300])
    | st.text(alphabet="pq", max_size=2)
)

# Arbitrary trees: any key may hold anything, so kinds clash between inputs.
any_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from("abcde"), children, max_size=4)
    ),
    max_leaves=20,
)
any_trees = st.dictionaries(st.sampled_from("abcde"), any_values, max_size=5)

# Kind-consistent trees: a key's name decides what it holds, in every input. Few names, each
# present about half the time, so the three inputs of a property overlap often.
DICT_KEYS = ("a", "b")  # always sub-mappings
LEAF_KEYS = ("x", "y")  # always scalars or lists (replaced whole)
LIST_KEYS = ("l",)  # always lists of ints
small_ints = st.integers(min_value=-3, max_value=3)
leaf_values = st.one_of(small_ints, small_ints, small_ints, scalars, st.lists(scalars, max_size=3))
int_lists = st.lists(st.integers(min_value=0, max_value=9), max_size=3)


@st.composite
def kind_trees(draw: st.DrawFn, depth: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in LEAF_KEYS + LIST_KEYS + (DICT_KEYS if depth > 0 else ()):
        if not draw(st.sampled_from((True, True, True, False))):
            continue
        if name in DICT_KEYS:
            out[name] = draw(kind_trees(depth - 1))
        elif name in LIST_KEYS:
            out[name] = draw(int_lists)
        else:
            out[name] = draw(leaf_values)
    return out


EXTEND_L = {"*l": "extend"}


def _leaves(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """Every non-mapping value reached through mappings only (lists count as leaves)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path, value


def _get(data: Any, path: KeyPath) -> Any:
    for part in path:
        data = data[part]
    return data


def _container_ids(value: Any) -> set[int]:
    out: set[int] = set()
    if isinstance(value, (dict, list)):
        out.add(id(value))
        for v in value.values() if isinstance(value, dict) else value:
            out |= _container_ids(v)
    return out


def _check_base_keys_kept(base: Any, over: Any, result: Any) -> None:
    for key, value in base.items():
        if key not in over:
            assert result[key] == value
        elif isinstance(value, dict) and isinstance(over[key], dict):
            _check_base_keys_kept(value, over[key], result[key])


# --------------------------------------------------------------------------- properties


@PROPERTY
@given(base=any_trees, over=any_trees)
def test_right_biased_every_leaf_of_the_override_is_in_the_result(
    base: dict[str, Any], over: dict[str, Any]
) -> None:
    result = merge_configs_with_precedence(base, over)
    for path, value in _leaves(over):
        if value == {}:
            continue  # an empty mapping sets nothing
        assert _get(result, path) == value
    _check_base_keys_kept(base, over, result)


@PROPERTY
@given(a=kind_trees(), b=kind_trees(), c=kind_trees())
def test_associative_for_kind_consistent_trees(
    a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]
) -> None:
    left = merge_configs_with_precedence(merge_configs_with_precedence(a, b), c)
    right = merge_configs_with_precedence(a, merge_configs_with_precedence(b, c))
    assert left == right
    assert merge_configs_with_precedence(a, b, c) == left


@PROPERTY
@given(a=kind_trees(), b=kind_trees(), c=kind_trees())
def test_associative_with_extend_policy(
    a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]
) -> None:
    def m(*args: dict[str, Any]) -> dict[str, Any]:
        return merge_configs_with_precedence(*args, list_policy=EXTEND_L)

    assert m(m(a, b), c) == m(a, m(b, c)) == m(a, b, c)


@PROPERTY
@given(a=kind_trees())
def test_merge_with_empty_and_self(a: dict[str, Any]) -> None:
    assert merge_configs_with_precedence(a, {}) == a
    assert merge_configs_with_precedence({}, a) == a
    assert merge_configs_with_precedence(a, a) == a


@PROPERTY
@given(base=any_trees, over1=any_trees, over2=any_trees)
def test_inputs_are_never_mutated_or_shared(
    base: dict[str, Any], over1: dict[str, Any], over2: dict[str, Any]
) -> None:
    before = copy.deepcopy((base, over1, over2))
    for policy in (None, {"*": "extend"}):
        result = merge_configs_with_precedence(base, over1, over2, list_policy=policy)
        assert (base, over1, over2) == before
        shared = _container_ids(result) & (
            _container_ids(base) | _container_ids(over1) | _container_ids(over2)
        )
        assert not shared


# --------------------------------------------------------------------------- plain merge rules


def test_docstring_example() -> None:
    failures, tried = doctest.testmod(merge_module, verbose=False)
    assert tried >= 1
    assert failures == 0


def test_mappings_merge_recursively_and_base_keys_are_kept() -> None:
    base = {"model": {"backbone": "bert", "dropout": 0.1, "head": {"size": 2}}, "seed": 1}
    over = {"model": {"dropout": 0.3, "head": {"act": "relu"}}}
    assert merge_configs_with_precedence(base, over) == {
        "model": {"backbone": "bert", "dropout": 0.3, "head": {"size": 2, "act": "relu"}},
        "seed": 1,
    }


def test_lists_are_replaced_whole() -> None:
    out = merge_configs_with_precedence(
        {"a": [1, 2, 3], "b": {"c": [1]}}, {"a": [9], "b": {"c": []}}
    )
    assert out == {"a": [9], "b": {"c": []}}


def test_list_extend_policy_with_fnmatch_patterns() -> None:
    base = {
        "hpo": {"search_space": {"lr": {"values": [1]}, "bs": {"values": [8]}, "other": [0]}},
        "tags": ["a"],
    }
    over = {
        "hpo": {"search_space": {"lr": {"values": [2]}, "bs": {"values": [16]}, "other": [5]}},
        "tags": ["b"],
    }
    out = merge_configs_with_precedence(
        base, over, list_policy={"hpo.search_space.*.values": "extend"}
    )
    assert out["hpo"]["search_space"]["lr"]["values"] == [1, 2]
    assert out["hpo"]["search_space"]["bs"]["values"] == [8, 16]
    assert out["hpo"]["search_space"]["other"] == [5]
    assert out["tags"] == ["b"]


def test_list_policy_first_matching_pattern_wins() -> None:
    base, over = {"a": {"l": [1]}}, {"a": {"l": [2]}}
    assert merge_configs_with_precedence(
        base, over, list_policy={"a.l": "replace", "a.*": "extend"}
    ) == {"a": {"l": [2]}}
    assert merge_configs_with_precedence(
        base, over, list_policy={"a.*": "extend", "a.l": "replace"}
    ) == {"a": {"l": [1, 2]}}


def test_list_policy_is_case_sensitive() -> None:
    out = merge_configs_with_precedence(
        {"Tags": [1]}, {"Tags": [2]}, list_policy={"tags": "extend"}
    )
    assert out == {"Tags": [2]}


def test_extend_over_several_overrides() -> None:
    out = merge_configs_with_precedence(
        {"a": [1]}, {"a": [2]}, {"a": [3, 4]}, list_policy={"a": "extend"}
    )
    assert out == {"a": [1, 2, 3, 4]}


def test_extend_needs_lists_on_both_sides() -> None:
    policy = {"a": "extend"}
    assert merge_configs_with_precedence({"a": 1}, {"a": [2]}, list_policy=policy) == {"a": [2]}
    assert merge_configs_with_precedence({"a": [1]}, {"a": 2}, list_policy=policy) == {"a": 2}


def test_explicit_none_overrides_and_missing_key_does_not() -> None:
    base = {"a": {"x": 1}, "b": 2, "c": [1]}
    assert merge_configs_with_precedence(base, {"a": None}) == {"a": None, "b": 2, "c": [1]}
    assert merge_configs_with_precedence(base, {"b": None, "c": None}) == {
        "a": {"x": 1},
        "b": None,
        "c": None,
    }
    assert merge_configs_with_precedence(base, {}) == base


def test_mapping_replaces_scalar_and_scalar_replaces_mapping() -> None:
    assert merge_configs_with_precedence({"a": None}, {"a": {"x": 1}}) == {"a": {"x": 1}}
    assert merge_configs_with_precedence({"a": {"x": 1}}, {"a": 5}) == {"a": 5}


def test_no_overrides_returns_a_deep_copy() -> None:
    base = {"a": {"b": [1]}}
    out = merge_configs_with_precedence(base)
    assert out == base
    out["a"]["b"].append(2)
    assert base == {"a": {"b": [1]}}


def test_read_only_top_level_mappings_are_accepted() -> None:
    base = MappingProxyType({"a": {"x": 1}})
    out = merge_configs_with_precedence(base, MappingProxyType({"a": {"y": 2}}))
    assert out == {"a": {"x": 1, "y": 2}}
    assert type(out) is dict


@pytest.mark.parametrize(
    ("base", "over", "expected"),
    [
        (freeze({"a": {"x": 1}}), {"a": {"y": 2}}, {"a": {"x": 1, "y": 2}}),
        ({"b": 1}, freeze({"a": {"x": 1}}), {"a": {"x": 1}, "b": 1}),
    ],
    ids=["frozen-base", "frozen-override"],
)
def test_frozen_nested_mappings_are_accepted(
    base: Any, over: Any, expected: dict[str, Any]
) -> None:
    out = merge_configs_with_precedence(base, over)
    assert out == expected
    assert type(out["a"]) is dict


# --------------------------------------------------------------------------- merge_trees


def _lines(tree: Tree) -> dict[KeyPath, tuple[str | None, int | None]]:
    return {p: (s.file, s.line) for p, s in tree.sources.items()}


BASE_TEXT = (
    "a:\n"  # 1
    "  x: 1\n"  # 2
    "  l:\n"  # 3
    "    - 1\n"  # 4
    "    - 2\n"  # 5
    "    - 3\n"  # 6
    "  k: keep\n"  # 7
    "r: [1, 2]\n"  # 8
)
OVER_TEXT = (
    "a:\n"  # 1
    "  x: 2\n"  # 2
    "  l:\n"  # 3
    "    - 30\n"  # 4
    "    - 40\n"  # 5
    "  n: new\n"  # 6
    "r:\n"  # 7
    "  - 9\n"  # 8
)


def _pair() -> tuple[Tree, Tree]:
    return load_yaml_text(BASE_TEXT, file="base.yaml"), load_yaml_text(OVER_TEXT, file="over.yaml")


def test_merge_trees_replace_carries_sources() -> None:
    base, over = _pair()
    out = merge_trees(base, over)
    assert out.data == {"a": {"x": 2, "l": [30, 40], "k": "keep", "n": "new"}, "r": [9]}
    assert _lines(out) == {
        (): ("base.yaml", 1),
        ("a",): ("base.yaml", 1),
        ("a", "x"): ("over.yaml", 2),
        ("a", "l"): ("over.yaml", 3),
        ("a", "l", 0): ("over.yaml", 4),
        ("a", "l", 1): ("over.yaml", 5),
        ("a", "k"): ("base.yaml", 7),
        ("a", "n"): ("over.yaml", 6),
        ("r",): ("over.yaml", 7),
        ("r", 0): ("over.yaml", 8),
    }
    # the base list had 3 items: no stale source is left for index 2
    assert ("a", "l", 2) not in out.sources


def test_merge_trees_extend_reindexes_appended_items() -> None:
    base, over = _pair()
    out = merge_trees(base, over, list_policy={"a.l": "extend"})
    assert out.data["a"]["l"] == [1, 2, 3, 30, 40]
    assert out.data["r"] == [9]
    assert _lines(out)[("a", "l")] == ("base.yaml", 3)
    assert [_lines(out)[("a", "l", i)] for i in range(5)] == [
        ("base.yaml", 4),
        ("base.yaml", 5),
        ("base.yaml", 6),
        ("over.yaml", 4),
        ("over.yaml", 5),
    ]
    assert ("a", "l", 5) not in out.sources


def test_merge_trees_extend_reindexes_nested_item_sources() -> None:
    base = load_yaml_text("l:\n  - x: 1\n", file="b.yaml")
    over = load_yaml_text("l:\n  - x: 2\n    y: 3\n", file="o.yaml")
    out = merge_trees(base, over, list_policy={"l": "extend"})
    assert out.data == {"l": [{"x": 1}, {"x": 2, "y": 3}]}
    assert out.sources[("l", 0, "x")] == Source("b.yaml", 2)
    assert out.sources[("l", 1)] == Source("o.yaml", 2)
    assert out.sources[("l", 1, "x")] == Source("o.yaml", 2)
    assert out.sources[("l", 1, "y")] == Source("o.yaml", 3)


def test_merge_trees_scalar_replacing_mapping_drops_child_sources() -> None:
    base = load_yaml_text("a:\n  x: 1\n  y: 2\n", file="b.yaml")
    over = load_yaml_text("\na: 5\n", file="o.yaml")
    out = merge_trees(base, over)
    assert out.data == {"a": 5}
    assert out.sources[("a",)] == Source("o.yaml", 2)
    assert not [p for p in out.sources if len(p) > 1]


def test_merge_trees_mapping_replacing_scalar_brings_child_sources() -> None:
    base = load_yaml_text("a: 5\n", file="b.yaml")
    over = load_yaml_text("a:\n  x: 1\n", file="o.yaml")
    out = merge_trees(base, over)
    assert out.data == {"a": {"x": 1}}
    assert out.sources[("a",)] == Source("o.yaml", 1)
    assert out.sources[("a", "x")] == Source("o.yaml", 2)


def test_merge_trees_explicit_none_takes_override_source() -> None:
    base = load_yaml_text("a:\n  x: 1\n", file="b.yaml")
    over = load_yaml_text("\n\na: null\n", file="o.yaml")
    out = merge_trees(base, over)
    assert out.data == {"a": None}
    assert out.sources[("a",)] == Source("o.yaml", 3)
    assert ("a", "x") not in out.sources


def test_merge_trees_root_source_from_override_when_base_has_none() -> None:
    base = Tree({}, {})
    over = load_yaml_text("a: 1\n", file="o.yaml")
    out = merge_trees(base, over)
    assert out.data == {"a": 1}
    assert out.sources[()] == Source("o.yaml", 1)
    assert out.sources[("a",)] == Source("o.yaml", 1)


def test_merge_trees_does_not_mutate_inputs() -> None:
    base, over = _pair()
    before = (
        copy.deepcopy(base.data),
        dict(base.sources),
        copy.deepcopy(over.data),
        dict(over.sources),
    )
    for policy in (None, {"a.l": "extend"}):
        out = merge_trees(base, over, list_policy=policy)
        assert (base.data, base.sources, over.data, over.sources) == before
        assert not _container_ids(out.data) & (
            _container_ids(base.data) | _container_ids(over.data)
        )
        out.data["a"]["l"].append(99)
        out.sources[("zz",)] = Source("x", 1)
        assert (base.data, base.sources, over.data, over.sources) == before


def _synth_sources(data: Any, file: str) -> dict[KeyPath, Source]:
    out: dict[KeyPath, Source] = {(): Source(file, 1)}

    def walk(value: Any, path: KeyPath) -> None:
        items = (
            value.items()
            if isinstance(value, dict)
            else enumerate(value)
            if isinstance(value, list)
            else []
        )
        for k, v in items:
            out[(*path, k)] = Source(file, len(out) + 1)
            walk(v, (*path, k))

    walk(data, ())
    return out


def _expected_sources(
    b: Any, o: Any, bs: dict[KeyPath, Source], os_: dict[KeyPath, Source], path: KeyPath
) -> dict[KeyPath, Source]:
    """Reference rule: replaced values take the override's sources, kept values the base's."""

    def sub(src: dict[KeyPath, Source], prefix: KeyPath) -> dict[KeyPath, Source]:
        return {p: s for p, s in src.items() if p[: len(prefix)] == prefix}

    out: dict[KeyPath, Source] = {}
    for k in b:
        if k not in o:
            out.update(sub(bs, (*path, k)))
    for k, ov in o.items():
        here = (*path, k)
        if k in b and isinstance(b[k], dict) and isinstance(ov, dict):
            out[here] = bs[here]
            out.update(_expected_sources(b[k], ov, bs, os_, here))
        else:
            out.update(sub(os_, here))
    return out


@PROPERTY
@given(base=any_trees, over=any_trees)
def test_merge_trees_matches_plain_merge_and_source_rule(
    base: dict[str, Any], over: dict[str, Any]
) -> None:
    bs, os_ = _synth_sources(base, "base"), _synth_sources(over, "over")
    out = merge_trees(Tree(copy.deepcopy(base), dict(bs)), Tree(copy.deepcopy(over), dict(os_)))
    assert out.data == merge_configs_with_precedence(base, over)
    expected = _expected_sources(base, over, bs, os_, ())
    expected[()] = bs[()]
    assert out.sources == expected
