"""mlinfra.core.names: component_problem (one rule at a time), the look-alike, raw-value and
free-text checks, and normalize_value."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra.core.names import (
    MAX_COMPONENT_BYTES,
    component_problem,
    lookalike_problem,
    normalize_value,
    raw_value_problem,
    text_problem,
)

# --------------------------------------------------------------------------------------------
# component_problem


@pytest.mark.parametrize(
    "name",
    [
        "distilbert",
        "microsoft_deberta-v3-base",
        "study-350a79aa",
        "v1",
        ".hidden",
        "a.b",
        "a b",
        "console",  # starts like CON but is not a device name
        "conx.txt",
        "com10",
        "lpt",
        "é" * 127,
        "a" * MAX_COMPONENT_BYTES,
    ],
)
def test_safe_names(name: str) -> None:
    assert component_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        (".", "refers to a folder itself"),
        ("..", "refers to a folder itself"),
        ("a\x00b", "control character"),
        ("a\tb", "control character"),
        ("\x1f", "control character"),
        ("a\x7f", "control character"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("CON", "reserved device name"),
        ("con", "reserved device name"),
        ("Prn", "reserved device name"),
        ("AUX", "reserved device name"),
        ("NUL", "reserved device name"),
        ("nul.txt", "reserved device name"),
        ("NUL.tar.gz", "reserved device name"),
        ("COM1", "reserved device name"),
        ("com9.log", "reserved device name"),
        ("COM¹", "reserved device name"),
        ("LPT1", "reserved device name"),
        ("lpt0", "reserved device name"),
        ("x.", "ends with a dot or a space"),
        ("x ", "ends with a dot or a space"),
        ("...", "ends with a dot or a space"),
        ("a" * 256, "256 bytes long, over the 255-byte limit"),
        ("é" * 128, "256 bytes long"),
        ("😀" * 64, "256 bytes long"),
    ],
)
def test_unsafe_names(name: str, why: str) -> None:
    problem = component_problem(name)
    assert problem is not None
    assert why in problem


def test_byte_limit_parameter() -> None:
    assert component_problem("abcdefgh", max_bytes=8) is None
    assert component_problem("abcdefghi", max_bytes=8) == (
        "it is 9 bytes long, over the 8-byte limit for one name"
    )
    assert component_problem("éééé", max_bytes=8) is None
    assert component_problem("éééé1", max_bytes=8) is not None


@settings(deadline=None)
@given(st.text())
def test_a_safe_name_is_one_plain_component(text: str) -> None:
    if component_problem(text) is not None:
        return
    assert text not in ("", ".", "..")
    assert "/" not in text and "\\" not in text
    assert not any(ord(c) < 32 or ord(c) == 127 for c in text)
    assert len(text.encode("utf-8")) <= MAX_COMPONENT_BYTES
    assert text[-1] not in ". "
    folded = unicodedata.normalize("NFKC", text)
    assert "/" not in folded and "\\" not in folded and folded.strip(".") != ""
    assert not any(unicodedata.category(c) in ("Cf", "Zl", "Zp", "Cs") for c in text)
    decoded = unquote(unquote(text))
    assert "/" not in decoded and "\\" not in decoded and ".." not in decoded.split("/")


# --------------------------------------------------------------------------------------------
# look-alikes, raw values, free text

LOOKALIKES = {
    "..%2f..%2fetc": "percent-encoded",
    "%2E%2e": "percent-encoded",
    "%252e%252e%252f": "percent-encoded",
    "a%00b": "percent-encoded",
    "\uff05\uff12\uff45": "percent-encoded",  # fullwidth '%2e'
    "a\uff0fb": "U+FF0F (FULLWIDTH SOLIDUS), which looks like a path separator",
    "a\uff3cb": "U+FF3C (FULLWIDTH REVERSE SOLIDUS)",
    "a\u2215b": "U+2215 (DIVISION SLASH)",
    "a\u2044b": "U+2044 (FRACTION SLASH)",
    "\uff0e\uff0e": "it looks like '..'",
    "\u2024\u2024": "it looks like '..'",
    "\u2025": "it looks like '..'",
    "gpj.\u202eexe": "U+202E (RIGHT-TO-LEFT OVERRIDE)",
    "a\u200bb": "U+200B (ZERO WIDTH SPACE)",
    "a\u2066b": "U+2066 (LEFT-TO-RIGHT ISOLATE)",
    "a\u2028b": "U+2028 (LINE SEPARATOR)",
}


@pytest.mark.parametrize(("text", "why"), list(LOOKALIKES.items()))
def test_lookalikes_are_refused_everywhere(text: str, why: str) -> None:
    for check in (lookalike_problem, component_problem, raw_value_problem):
        problem = check(text)
        assert problem is not None and why in problem, (check.__name__, problem)


@pytest.mark.parametrize(
    "text",
    ["distilbert", "ｂｅｒｔ", "日本語モデル", "café", "naïve-bayes", "😀", "a.b", "50%", "x%20y"],
)
def test_real_names_are_not_lookalikes(text: str) -> None:
    assert lookalike_problem(text) is None
    assert component_problem(text) is None
    assert raw_value_problem(text) is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("../x", "'..'"),
        ("a/../b", "'..'"),
        ("/etc", "absolute path"),
        ("C:\\x", "absolute path"),
        ("a\x00b", "NUL or control character"),
        ("a\uff0fb", "looks like a path separator"),
    ],
)
def test_raw_value_problem(text: str, why: str) -> None:
    problem = raw_value_problem(text)
    assert problem is not None and why in problem, problem


def test_raw_value_allows_a_slash_that_normalisation_replaces() -> None:
    assert raw_value_problem("google/bert-base") is None
    assert component_problem("google/bert-base") is not None


@pytest.mark.parametrize(
    ("text", "code"),
    [("a\x00b", "U+0000"), ("a\x1bb", "U+001B"), ("a\x85b", "U+0085"), ("r\u202efdp", "U+202E")],
)
def test_text_problem_refuses_control_and_invisible_characters(text: str, code: str) -> None:
    problem = text_problem(text)
    assert problem is not None and code in problem, problem


@pytest.mark.parametrize(
    "text", ["plain", "tab\there", "two\nlines\r\n", "ZWJ emoji 👨\u200d👩\u200d👧", "فارسی\u200c"]
)
def test_text_problem_allows_whitespace_and_joiners(text: str) -> None:
    assert text_problem(text) is None


# --------------------------------------------------------------------------------------------
# normalize_value


def test_normalize_replaces_each_character() -> None:
    rules = {"/": "_", "\\": "_", " ": "_", ":": "-"}
    assert normalize_value("microsoft/deberta-v3-base", replace=rules) == (
        "microsoft_deberta-v3-base"
    )
    assert normalize_value("a b\\c:d", replace=rules) == "a_b_c-d"


def test_normalize_multi_character_and_empty_keys() -> None:
    assert normalize_value("a--b", replace={"--": "+", "": "X"}) == "a+b"


def test_normalize_replacement_may_delete() -> None:
    assert normalize_value("a?b*c", replace={"?": "", "*": ""}) == "abc"


def test_normalize_lowercase() -> None:
    assert normalize_value("DistilBERT", lowercase=True) == "distilbert"
    assert normalize_value("DistilBERT") == "DistilBERT"
    assert normalize_value("A/B", replace={"/": "_"}, lowercase=True) == "a_b"


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), (3, "3"), (0, "0"), (1.5, "1.5"), (None, "None")],
)
def test_normalize_non_strings(value: object, text: str) -> None:
    assert normalize_value(value) == text


def test_normalize_does_not_validate() -> None:
    assert normalize_value("..") == ".."
    assert normalize_value("") == ""
    assert normalize_value("a\x00b") == "a\x00b"
