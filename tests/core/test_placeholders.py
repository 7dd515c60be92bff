"""Tests for mlinfra.core.placeholders: ``{name}`` patterns."""

from __future__ import annotations

import pytest

from mlinfra.core.placeholders import format_placeholders, parse_placeholders


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("", []),
        ("plain/text", []),
        ("{backbone}/study_{study_hash}", ["backbone", "study_hash"]),
        ("{b}-{a}-{b}", ["b", "a"]),
        ("{{literal}}/{x}", ["x"]),
        ("{_private1}", ["_private1"]),
    ],
)
def test_parse_placeholders_in_order_of_first_appearance(pattern: str, names: list[str]) -> None:
    assert parse_placeholders(pattern) == names


@pytest.mark.parametrize(
    ("pattern", "shown"),
    [
        ("{a.b}", "{a.b}"),
        ("{x!r}", "{x!r}"),
        ("{n:03d}", "{n:03d}"),
        ("{a[0]}", "{a[0]}"),
        ("{0}", "{0}"),
        ("{ a }", "{ a }"),
        ("{x!s:>5}", "{x!s:>5}"),
        ("{a-b}", "{a-b}"),
    ],
)
def test_parse_refuses_anything_but_plain_names(pattern: str, shown: str) -> None:
    with pytest.raises(ValueError, match="is not a plain name") as info:
        parse_placeholders(f"run/{pattern}/end")
    assert f"'{shown}'" in str(info.value)


def test_parse_refuses_empty_placeholder() -> None:
    with pytest.raises(ValueError, match=r"empty placeholder '\{\}'"):
        parse_placeholders("a/{}/b")


@pytest.mark.parametrize("pattern", ["{a", "a}", "{a}}", "}{", "x{y{z}"])
def test_parse_refuses_unbalanced_braces(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"malformed pattern|not a plain name"):
        parse_placeholders(pattern)


def test_unbalanced_brace_message_names_the_pattern() -> None:
    with pytest.raises(ValueError, match=r"malformed pattern 'runs/\{name'"):
        parse_placeholders("runs/{name")


def test_format_substitutes_values_with_str() -> None:
    out = format_placeholders(
        "{backbone}/fold{fold}/lr{lr}/{flag}", {"backbone": "bert", "fold": 3, "lr": 0.5, "flag": 0}
    )
    assert out == "bert/fold3/lr0.5/0"


def test_format_keeps_literal_braces() -> None:
    assert format_placeholders("{{x}}-{x}", {"x": "v"}) == "{x}-v"


def test_format_ignores_extra_values() -> None:
    assert format_placeholders("{a}", {"a": 1, "unused": 2}) == "1"


def test_format_does_not_apply_value_formatting() -> None:
    """A value is converted with str; its own __format__ is never consulted."""

    class Loud:
        def __str__(self) -> str:
            return "loud"

        def __format__(self, spec: str) -> str:
            return "FORMATTED"

    assert format_placeholders("{v}", {"v": Loud()}) == "loud"


def test_format_allowed_accepts_subset() -> None:
    assert format_placeholders("{a}", {"a": "x"}, allowed=["a", "b"]) == "x"


def test_format_refuses_disallowed_placeholders_and_names_allowed_ones() -> None:
    with pytest.raises(ValueError) as info:
        format_placeholders(
            "{study}/{secret}", {"study": 1, "secret": 2}, allowed=("zeta", "study")
        )
    message = str(info.value)
    assert "unknown placeholder(s) secret" in message
    assert "allowed: study, zeta" in message


def test_format_refuses_missing_values_and_names_given_ones() -> None:
    with pytest.raises(ValueError) as info:
        format_placeholders("{a}/{b}/{c}", {"c": 1, "a": 2})
    message = str(info.value)
    assert "no value for placeholder(s) b" in message
    assert "given: a, c" in message


def test_format_treats_none_as_missing() -> None:
    with pytest.raises(ValueError, match=r"no value for placeholder\(s\) a, b.*given: none"):
        format_placeholders("{a}{b}", {"a": None})


def test_format_refuses_bad_patterns_before_substituting() -> None:
    with pytest.raises(ValueError, match="not a plain name"):
        format_placeholders("{a.__class__}", {"a": 1})
    with pytest.raises(ValueError, match="not a plain name"):
        format_placeholders("{a:>10}", {"a": 1})
