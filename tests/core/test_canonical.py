"""Tests for mlinfra.core.canonical: canonical JSON, stable_hash and short_hash."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import random
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra.core.canonical import SHORT_HASH_LENGTH, canonical_json, short_hash, stable_hash

PROPERTY = settings(deadline=None, database=None)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)
json_dicts = st.dictionaries(st.text(max_size=6), json_values, max_size=6)


def _reinsert_shuffled(value: Any, rng: random.Random) -> Any:
    """The same value, with every dict rebuilt in a shuffled insertion order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _reinsert_shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_reinsert_shuffled(v, rng) for v in value]
    return value


def _key_orders(value: Any) -> list[list[str]]:
    if isinstance(value, dict):
        out = [list(value)]
        for v in value.values():
            out.extend(_key_orders(v))
        return out
    if isinstance(value, list):
        return [o for v in value for o in _key_orders(v)]
    return []


# --------------------------------------------------------------------------- properties


@PROPERTY
@given(value=json_dicts, rng=st.randoms(use_true_random=False))
def test_canonical_json_and_hash_ignore_key_insertion_order(
    value: dict[str, Any], rng: random.Random
) -> None:
    shuffled = _reinsert_shuffled(value, rng)
    assert shuffled == value
    assert canonical_json(shuffled) == canonical_json(value)
    assert stable_hash(shuffled) == stable_hash(value)


@PROPERTY
@given(value=json_dicts)
def test_canonical_json_reverse_insertion_order_gives_same_text(value: dict[str, Any]) -> None:
    def reverse(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: reverse(v[k]) for k in reversed(list(v))}
        if isinstance(v, list):
            return [reverse(x) for x in v]
        return v

    rev = reverse(value)
    if len(value) > 1:
        assert _key_orders(rev)[0] != _key_orders(value)[0]
    assert canonical_json(rev) == canonical_json(value)


@PROPERTY
@given(value=json_values)
def test_canonical_json_is_compact_sorted_and_round_trips(value: Any) -> None:
    def no_negative_zero(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: no_negative_zero(x) for k, x in v.items()}
        if isinstance(v, list):
            return [no_negative_zero(x) for x in v]
        if isinstance(v, float) and v == 0.0:
            return 0.0
        return v

    text = canonical_json(value)
    assert json.loads(text) == value
    expected = json.dumps(
        no_negative_zero(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert text == expected


@PROPERTY
@given(value=json_values)
def test_stable_hash_is_sha256_of_canonical_json(value: Any) -> None:
    digest = stable_hash(value)
    assert len(digest) == 64
    assert digest == hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- fixed rules


def test_canonical_json_exact_text() -> None:
    value = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": "x"}}
    assert canonical_json(value) == '{"a":{"y":"x","z":"é"},"b":[1,2.5,null,true]}'


def test_unicode_is_written_as_utf8_not_escaped() -> None:
    assert canonical_json("héllo ✓") == '"héllo ✓"'


def test_negative_zero_is_written_as_zero() -> None:
    assert canonical_json(-0.0) == "0.0"
    assert canonical_json({"x": [-0.0]}) == '{"x":[0.0]}'
    assert stable_hash(-0.0) == stable_hash(0.0)


def test_floats_use_shortest_round_trip_form() -> None:
    assert canonical_json(0.1) == "0.1"
    assert canonical_json(1e16) == "1e+16"
    assert canonical_json(1.0) == "1.0"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (1, 1.0),
        (1, True),
        (0, False),
        (None, 0),
        ("1", 1),
        ([1, 2], [2, 1]),
        ({"a": 1}, {"a": "1"}),
        ({"a": None}, {}),
    ],
)
def test_different_values_hash_differently(left: Any, right: Any) -> None:
    assert stable_hash(left) != stable_hash(right)


def test_tuples_become_lists() -> None:
    assert canonical_json((1, (2, 3))) == "[1,[2,3]]"
    assert stable_hash((1, 2)) == stable_hash([1, 2])


def test_sets_become_sorted_lists() -> None:
    assert canonical_json({3, 1, 2}) == "[1,2,3]"
    assert canonical_json(frozenset({"b", "a"})) == '["a","b"]'
    # mixed types are ordered by their JSON text, deterministically
    assert canonical_json({1, "a"}) == '["a",1]'
    assert stable_hash({"x": {5, 4}}) == stable_hash({"x": frozenset({4, 5})})


def test_paths_become_posix_strings() -> None:
    assert canonical_json(PurePosixPath("a/b/c.yaml")) == '"a/b/c.yaml"'
    assert canonical_json(PureWindowsPath("a\\b\\c.yaml")) == '"a/b/c.yaml"'
    assert canonical_json(Path("x") / "y") == '"x/y"'


def test_aware_datetimes_become_utc_iso_strings() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=plus_two)
    assert canonical_json(moment) == '"2024-01-02T03:04:05Z"'
    same = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert stable_hash(moment) == stable_hash(same)


def test_enums_become_their_values() -> None:
    class Colour(enum.Enum):
        RED = "red"
        ONE = 1

    class Level(enum.IntEnum):
        HIGH = 3

    assert canonical_json(Colour.RED) == '"red"'
    assert canonical_json({"c": Colour.ONE}) == '{"c":1}'
    assert canonical_json(Level.HIGH) == "3"


def test_pydantic_models_become_their_json_dump() -> None:
    class Model(pydantic.BaseModel):
        b: int
        a: str
        p: Path

    m = Model(b=1, a="x", p=Path("d/e"))
    assert canonical_json(m) == '{"a":"x","b":1,"p":"d/e"}'
    assert stable_hash(m) == stable_hash({"a": "x", "b": 1, "p": "d/e"})


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(TypeError, match="non-finite float"):
        canonical_json(bad)
    with pytest.raises(TypeError, match="non-finite"):
        stable_hash({"a": [1, bad]})


def test_non_finite_float_error_names_the_path() -> None:
    with pytest.raises(TypeError, match=r"'a\.b\[1\]'"):
        canonical_json({"a": {"b": [0.0, float("nan")]}})
    with pytest.raises(TypeError, match="'<root>'"):
        canonical_json(float("nan"))


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(TypeError, match=r"naive datetime at 'when'"):
        canonical_json({"when": dt.datetime(2024, 1, 1, 12, 0)})


def test_plain_date_is_refused() -> None:
    with pytest.raises(TypeError, match="date"):
        canonical_json(dt.date(2024, 1, 1))


def test_unknown_objects_are_refused_not_stringified() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    with pytest.raises(TypeError, match=r"type Thing at 'x\[0\]'"):
        canonical_json({"x": [Thing()]})
    with pytest.raises(TypeError, match="bytes"):
        stable_hash(b"raw")
    with pytest.raises(TypeError, match="complex"):
        stable_hash(1j)


@pytest.mark.parametrize("key", [1, None, ("a",), 1.5, True])
def test_non_string_mapping_keys_are_refused(key: Any) -> None:
    with pytest.raises(TypeError, match="mapping keys must be strings"):
        canonical_json({"outer": {key: 1}})


# --------------------------------------------------------------------------- short_hash


def test_short_hash_default_length() -> None:
    digest = stable_hash({"a": 1})
    assert SHORT_HASH_LENGTH == 8
    assert short_hash(digest) == digest[:8]


def test_short_hash_lowercases_and_strips() -> None:
    assert short_hash("  ABCDEF0123456789  ") == "abcdef01"


def test_short_hash_custom_length() -> None:
    assert short_hash("abcdef0123", length=3) == "abc"
    assert short_hash("abcdef0123", length=10) == "abcdef0123"


@pytest.mark.parametrize("length", [0, -1])
def test_short_hash_refuses_non_positive_length(length: int) -> None:
    with pytest.raises(ValueError, match="length must be positive"):
        short_hash("abcdef0123", length=length)


@pytest.mark.parametrize("digest", ["abc", "", "abcdefg0123", "abcd ef0123", "0x12345678"])
def test_short_hash_refuses_non_hex_or_short(digest: str) -> None:
    with pytest.raises(ValueError, match="not a hex digest"):
        short_hash(digest)


def test_short_hash_refuses_too_short_for_length() -> None:
    with pytest.raises(ValueError, match="at least 12 characters"):
        short_hash("abcdef0123", length=12)
