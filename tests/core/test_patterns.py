"""mlinfra.core.placeholders.Pattern: optional segments, escapes, render and match."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra.core.placeholders import Field, Optional, Pattern

# --------------------------------------------------------------------------------------------
# Parsing


def test_parse_structure() -> None:
    pattern = Pattern.parse("{backbone}[/study_{study_hash}]")
    assert pattern.text == "{backbone}[/study_{study_hash}]"
    assert pattern.parts == (
        Field("backbone"),
        Optional(("/study_", Field("study_hash"))),
    )


def test_names_required_optional() -> None:
    pattern = Pattern.parse("{env}/{model}/study-{study8}[/trial-{trial8}][/bench-{bench8}]")
    assert pattern.names() == ["env", "model", "study8", "trial8", "bench8"]
    assert pattern.required() == ["env", "model", "study8"]
    assert pattern.optional() == ["trial8", "bench8"]


def test_placeholder_both_required_and_optional_is_required() -> None:
    pattern = Pattern.parse("{a}[-{a}-{b}]")
    assert pattern.names() == ["a", "b"]
    assert pattern.required() == ["a"]
    assert pattern.optional() == ["b"]


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("[[x]]", "[x]"),
        ("{{x}}", "{x}"),
        ("a[[b]]c{{d}}e", "a[b]c{d}e"),
        ("]]", "]"),
        ("[[", "["),
    ],
)
def test_escapes_are_literals(text: str, literal: str) -> None:
    pattern = Pattern.parse(text)
    assert pattern.names() == []
    assert pattern.render({}) == literal
    assert pattern.match(literal) == {}


def test_escapes_inside_optional_segment() -> None:
    pattern = Pattern.parse("{a}[ [[{b}]]]")
    assert pattern.render({"a": "x", "b": "y"}) == "x [y]"
    assert pattern.render({"a": "x"}) == "x"
    assert pattern.match("x [y]") == {"a": "x", "b": "y"}
    assert pattern.match("x") == {"a": "x"}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{a}[/x[/{b}]]", "do not nest"),
        ("{a}[[x]][y]", "needs a placeholder"),
        ("[[{a}][x]]", "single ']'"),
        ("{a}[/literal]", "needs a placeholder"),
        ("{a}[]", "needs a placeholder"),
        ("{a}[[/{b}]", "single ']'"),
        ("{a}[/{b}", "never closed"),
        ("{a}]", "single ']'"),
        ("{a}}", "single '}'"),
        ("{a", "never closed"),
        ("{}", "empty placeholder"),
        ("{a b}", "not a plain name"),
        ("[{1x}]", "not a plain name"),
    ],
)
def test_malformed_patterns_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Pattern.parse(text)


def test_nesting_message_names_the_pattern() -> None:
    with pytest.raises(ValueError, match=r"malformed pattern '\[\{a\}\[\{b\}\]\]'"):
        Pattern.parse("[{a}[{b}]]")


def test_parse_is_cached_and_frozen() -> None:
    first = Pattern.parse("{a}[/{b}]")
    assert Pattern.parse("{a}[/{b}]") is first
    with pytest.raises(AttributeError):
        first.text = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Rendering


def test_optional_segment_kept_when_all_values_present() -> None:
    pattern = Pattern.parse("trial-{trial8}[/bench-{bench8}]")
    assert pattern.render({"trial8": "747428f2", "bench8": "abcdef12"}) == (
        "trial-747428f2/bench-abcdef12"
    )


@pytest.mark.parametrize("values", [{"t": "1"}, {"t": "1", "b": None}, {"t": "1", "b": ""}])
def test_optional_segment_dropped_without_value(values: dict[str, object]) -> None:
    assert Pattern.parse("trial-{t}[/bench-{b}]").render(values) == "trial-1"


def test_optional_segment_needs_every_placeholder() -> None:
    pattern = Pattern.parse("{a}[/{b}-{c}]")
    assert pattern.render({"a": 1, "b": 2}) == "1"
    assert pattern.render({"a": 1, "c": 3}) == "1"
    assert pattern.render({"a": 1, "b": 2, "c": 3}) == "1/2-3"


def test_several_independent_optional_segments() -> None:
    pattern = Pattern.parse("{a}[/x{b}][/y{c}]")
    assert pattern.render({"a": "A", "c": "C"}) == "A/yC"
    assert pattern.render({"a": "A", "b": "B"}) == "A/xB"


def test_missing_required_value_names_given_ones() -> None:
    with pytest.raises(ValueError, match=r"no value for placeholder\(s\) a in pattern") as info:
        Pattern.parse("{a}[/{b}]").render({"b": "x", "z": None})
    assert "given: b" in str(info.value)


def test_allowed_names_are_enforced_in_optional_segments_too() -> None:
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) secret"):
        Pattern.parse("{a}[/{secret}]").render({"a": 1}, allowed=["a"])


def test_convert_is_called_once_per_name_and_can_refuse() -> None:
    calls: list[tuple[str, object]] = []

    def convert(name: str, value: object) -> str:
        calls.append((name, value))
        if value == "bad":
            raise ValueError(f"{name} is bad")
        return str(value).upper()

    pattern = Pattern.parse("{a}/{a}[/{b}]")
    assert pattern.render({"a": "x", "b": "y"}, convert=convert) == "X/X/Y"
    assert calls == [("a", "x"), ("b", "y")]
    with pytest.raises(ValueError, match="b is bad"):
        pattern.render({"a": "x", "b": "bad"}, convert=convert)


def test_optional_segment_dropped_when_converted_value_is_empty() -> None:
    pattern = Pattern.parse("{a}[/{b}]")
    assert pattern.render({"a": "x", "b": "y"}, convert=lambda n, v: "" if n == "b" else v) == ("x")


# --------------------------------------------------------------------------------------------
# Matching


def test_match_returns_values() -> None:
    pattern = Pattern.parse("{storage_env}/{model}/study-{study8}[/trial-{trial8}]")
    assert pattern.match("local/bert/study-01234567/trial-89abcdef") == {
        "storage_env": "local",
        "model": "bert",
        "study8": "01234567",
        "trial8": "89abcdef",
    }
    assert pattern.match("local/bert/study-01234567") == {
        "storage_env": "local",
        "model": "bert",
        "study8": "01234567",
    }


@pytest.mark.parametrize(
    "text",
    [
        "local/bert",
        "local/bert/study-",
        "local/bert/study-0123/trial-",
        "local/bert/study-0123/extra/trial-1",
        "local/bert/study-0123/trial-1/more",
        "/local/bert/study-0123",
    ],
)
def test_match_refuses_texts_that_do_not_fit(text: str) -> None:
    pattern = Pattern.parse("{storage_env}/{model}/study-{study8}[/trial-{trial8}]")
    assert pattern.match(text) is None


def test_match_uses_field_regexes() -> None:
    pattern = Pattern.parse("study-{study8}")
    hex8 = {"study8": "[0-9a-f]{8}"}
    assert pattern.match("study-01234567", hex8) == {"study8": "01234567"}
    assert pattern.match("study-0123456", hex8) is None
    assert pattern.match("study-0123456Z", hex8) is None
    assert pattern.match("study-0123456Z") == {"study8": "0123456Z"}


def test_match_repeated_placeholder_must_agree() -> None:
    pattern = Pattern.parse("{a}/{a}")
    assert pattern.match("x/x") == {"a": "x"}
    assert pattern.match("x/y") is None


def test_regex_escapes_literal_text() -> None:
    pattern = Pattern.parse("v{n}.(+)[[{m}]]")
    assert pattern.match("v1.(+)[2]") == {"n": "1", "m": "2"}
    assert pattern.match("v1x(+)[2]") is None


_SAFE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.", min_size=1, max_size=20)


@settings(deadline=None)
@given(a=_SAFE, b=st.none() | _SAFE, c=st.none() | _SAFE)
def test_render_then_match_round_trips(a: str, b: str | None, c: str | None) -> None:
    pattern = Pattern.parse("{a}/x-{a}[/b-{b}][/c-{c}]")
    values = {"a": a, "b": b, "c": c}
    text = pattern.render(values)
    assert pattern.match(text) == {k: v for k, v in values.items() if v is not None}
