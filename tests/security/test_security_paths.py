"""Bad placeholder values, naming-context values and ``paths.yaml`` entries for output folders.

``resolve_output_path``, ``build_output_path`` and ``validate_output_path`` must refuse path
traversal (plain and encoded), absolute paths, NUL and control characters, look-alike
characters and overlong names with a ``PathError`` (or ``NamingError``) that names the key and
the value, quickly, and without creating anything.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from mlinfra.errors import ConfigError, MlinfraError, NamingError, PathError
from mlinfra.naming import create_naming_context
from mlinfra.paths import build_output_path, resolve_output_path, validate_output_path

Guard = Callable[..., AbstractContextManager[None]]
STUDY = "abcdef12"

#: Values that must be refused as one folder name, with the words the refusal must contain.
REFUSED = {
    "dotdot": ("..", "'..'"),
    "traversal": ("../../etc", "'..'"),
    "traversal-backslash": ("..\\..\\windows", "'..'"),
    "traversal-inner": ("a/../../b", "'..'"),
    "absolute": ("/etc/passwd", "absolute path"),
    "absolute-unc": ("\\\\server\\share", "absolute path"),
    "absolute-drive": ("C:\\Windows", "absolute path"),
    "nul": ("a\x00b", "NUL or control character"),
    "newline": ("a\nb", "NUL or control character"),
    "escape": ("a\x1b[2Jb", "NUL or control character"),
    "delete": ("a\x7fb", "NUL or control character"),
    "overlong": ("x" * 300, "over the 255-byte limit"),
    "overlong-multibyte": ("é" * 200, "over the 255-byte limit"),
    "device-name": ("CON", "reserved device name"),
    "trailing-dot": ("name.", "ends with a dot"),
}

#: Values that look like traversal or separators once decoded or rendered.
LOOKALIKE = {
    "percent-encoded-dotdot-slash": "..%2f..%2fetc",
    "percent-encoded-dots": "%2e%2e",
    "double-encoded": "%252e%252e%252f",
    "fullwidth-solidus": "a\uff0fb",
    "fullwidth-full-stops": "\uff0e\uff0e",
    "one-dot-leaders": "\u2024\u2024",
    "division-slash": "a\u2215b",
    "rtl-override": "gpj.\u202eexe",
    "zero-width-space": "a\u200bb",
}


def _hpo_context(model: str) -> object:
    return create_naming_context(
        process_type="hpo", model=model, environment="local", study_key_hash=STUDY
    )


# ---- resolve_output_path: placeholder values -------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("value", "why"), list(REFUSED.values()), ids=list(REFUSED))
def test_resolve_refuses_unsafe_placeholder(
    example_project: Path, nothing_written: Guard, work_cwd: Path, value: str, why: str
) -> None:
    with nothing_written(example_project, work_cwd), pytest.raises(PathError) as info:
        resolve_output_path(
            example_project, example_project / "config", "hpo", backbone=value, environ={}
        )
    err = info.value
    assert err.key == "backbone", err
    assert repr(value) in str(err), err  # the value, escaped so control characters show
    assert why in str(err), err


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("value", "why"), list(REFUSED.values()), ids=list(REFUSED))
def test_resolve_refuses_unsafe_optional_placeholder(
    example_project: Path, nothing_written: Guard, value: str, why: str
) -> None:
    with nothing_written(example_project), pytest.raises(PathError) as info:
        resolve_output_path(
            example_project,
            example_project / "config",
            "hpo",
            backbone="distilbert",
            study_hash=value,
            environ={},
        )
    assert info.value.key == "study_hash" and why in str(info.value), info.value


@pytest.mark.timeout(20)
@pytest.mark.parametrize("value", list(LOOKALIKE.values()), ids=list(LOOKALIKE))
def test_resolve_refuses_lookalike_placeholder(
    example_project: Path, nothing_written: Guard, value: str
) -> None:
    with nothing_written(example_project), pytest.raises(PathError) as info:
        resolve_output_path(
            example_project, example_project / "config", "hpo", backbone=value, environ={}
        )
    assert info.value.key == "backbone"


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("category", "subcategory"),
    [
        ("../hpo", None),
        ("/etc", None),
        ("cache", "../../etc"),
        ("cache", "/etc"),
        ("hpo\x00", None),
    ],
)
def test_resolve_refuses_unknown_category(
    example_project: Path, nothing_written: Guard, category: str, subcategory: str | None
) -> None:
    with nothing_written(example_project), pytest.raises(PathError) as info:
        resolve_output_path(
            example_project, example_project / "config", category, subcategory=subcategory
        )
    shown = subcategory if subcategory is not None else category
    assert info.value.key == shown and repr(shown) in str(info.value), info.value


# ---- build_output_path: naming-context values ------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("value", "why"), list(REFUSED.values()), ids=list(REFUSED))
def test_build_refuses_unsafe_model_name(
    example_project: Path, nothing_written: Guard, value: str, why: str
) -> None:
    context = _hpo_context(value)
    with nothing_written(example_project), pytest.raises(PathError) as info:
        build_output_path(example_project, context, environ={})  # type: ignore[arg-type]
    assert info.value.key == "model" and why in str(info.value), info.value
    assert repr(value) in str(info.value)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("value", list(LOOKALIKE.values()), ids=list(LOOKALIKE))
def test_build_refuses_lookalike_model_name(
    example_project: Path, nothing_written: Guard, value: str
) -> None:
    context = _hpo_context(value)
    with nothing_written(example_project), pytest.raises(PathError):
        build_output_path(example_project, context, environ={})  # type: ignore[arg-type]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("study_key_hash", "../../abcdef"),
        ("study_key_hash", "/etc/abcdef"),
        ("trial_key_hash", "abcdef\x00"),
        ("spec_fp", "ａｂｃｄｅｆ12"),  # fullwidth hex digits
        ("conv_fp", "a" * 65),
        ("environment", "../local"),
        ("storage_env", "local\x00"),
        ("process_type", "../hpo"),
        ("variant", -1),
        ("fold_idx", "0; rm -rf /"),
    ],
)
def test_naming_context_refuses_bad_field(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "process_type": "final_training",
        "model": "distilbert",
        "environment": "local",
        "spec_fp": "abcdef12",
        "exec_fp": "abcdef12",
    }
    fields[field] = value
    with pytest.raises(NamingError) as info:
        create_naming_context(**fields)  # type: ignore[arg-type]
    assert info.value.key == field, info.value
    assert field in str(info.value), info.value


@pytest.mark.timeout(20)
def test_naming_context_refuses_unknown_field() -> None:
    with pytest.raises(NamingError) as info:
        create_naming_context(process_type="hpo", model="m", environment="local", output_dir="/etc")
    assert info.value.key == "output_dir" and "unknown naming field" in str(info.value)


# ---- validate_output_path --------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("rel", "why"),
    [
        ("../escape", "'..' part"),
        ("a/../../escape", "'..' part"),
        ("a\\..\\..\\escape", "'..' part"),
        ("a\x00b", "NUL or control character"),
        ("a\tb", "NUL or control character"),
        ("x" * 256, "over the 255-byte limit"),
        ("/".join(["abcdefgh"] * 600), "over the limit of 4096"),
        ("nul.txt", "reserved device name"),
    ],
)
def test_validate_refuses_unsafe_path(
    example_project: Path, nothing_written: Guard, rel: str, why: str
) -> None:
    root = example_project / "outputs"
    with nothing_written(example_project), pytest.raises(PathError) as info:
        validate_output_path(f"{root}/{rel}", root=root)
    assert why in str(info.value) and info.value.value == f"{root}/{rel}", info.value


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path", ["/etc/passwd", "/", "", "   ", "{root}/../..", "{root}2/x"])
def test_validate_refuses_path_outside_root(
    example_project: Path, nothing_written: Guard, path: str
) -> None:
    root = example_project / "outputs"
    with nothing_written(example_project), pytest.raises(PathError) as info:
        validate_output_path(path.format(root=root), root=root)
    assert "is refused" in str(info.value), info.value


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["\u202e", "a\uff0fb", "\uff0e\uff0e", "a\u200bb"])
def test_validate_refuses_lookalike_part(
    example_project: Path, nothing_written: Guard, name: str
) -> None:
    root = example_project / "outputs"
    with nothing_written(example_project), pytest.raises(PathError):
        validate_output_path(root / name, root=root)


# ---- paths.yaml entries that point outside the outputs folder --------------------------------

PATHS_EDITS = {
    "category-traversal": ("  hpo: hpo\n", "  hpo: ../../escape\n", "'..' part"),
    "category-absolute": ("  hpo: hpo\n", "  hpo: /etc\n", "outside its root"),
    "category-from-env": ("  hpo: hpo\n", "  hpo: ${EVIL}\n", "'..' part"),
    "category-nul": ("  hpo: hpo\n", '  hpo: "h\\0po"\n', "paths.yaml:21, key 'outputs.hpo'"),
    "outputs-traversal": ("outputs: outputs\n", "outputs: ../../escape\n", "'..' part"),
    "pattern-traversal": (
        'hpo: "{backbone}[/study_{study_hash}]"',
        'hpo: "../../{backbone}"',
        "'..' refers to a folder itself",
    ),
    "pattern-absolute": (
        'hpo: "{backbone}[/study_{study_hash}]"',
        'hpo: "/etc/{backbone}"',
        "path separator",
    ),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("old", "new", "why"), list(PATHS_EDITS.values()), ids=list(PATHS_EDITS))
def test_paths_yaml_escape_is_refused(
    example_project: Path, nothing_written: Guard, old: str, new: str, why: str
) -> None:
    paths_yaml = example_project / "config" / "paths.yaml"
    text = paths_yaml.read_text(encoding="utf-8")
    assert old in text
    paths_yaml.write_text(text.replace(old, new, 1), encoding="utf-8")
    with nothing_written(example_project), pytest.raises((PathError, ConfigError)) as info:
        resolve_output_path(
            example_project,
            example_project / "config",
            "hpo",
            backbone="distilbert",
            environ={"EVIL": "../../../etc"},
        )
    assert why in str(info.value), info.value


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "pattern",
    ['"{storage_env}/../../../{model}/study-{study8}"', '"/tmp/{model}/study-{study8}"'],
)
def test_paths_yaml_v2_pattern_escape_is_refused(
    example_project: Path, nothing_written: Guard, pattern: str
) -> None:
    paths_yaml = example_project / "config" / "paths.yaml"
    text = paths_yaml.read_text(encoding="utf-8")
    old = 'hpo_v2: "{storage_env}/{model}/study-{study8}[/trial-{trial8}]"'
    paths_yaml.write_text(text.replace(old, f"hpo_v2: {pattern}", 1), encoding="utf-8")
    with nothing_written(example_project), pytest.raises(PathError) as info:
        build_output_path(example_project, _hpo_context("distilbert"), environ={})  # type: ignore[arg-type]
    assert info.value.key == "hpo_v2" and "not a safe folder name" in str(info.value)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["h\u202eopp", "a\uff0fb"])
def test_paths_yaml_lookalike_category_folder_is_refused(
    example_project: Path, nothing_written: Guard, name: str
) -> None:
    paths_yaml = example_project / "config" / "paths.yaml"
    text = paths_yaml.read_text(encoding="utf-8")
    paths_yaml.write_text(text.replace("  hpo: hpo\n", f"  hpo: {name}\n", 1), encoding="utf-8")
    with nothing_written(example_project), pytest.raises(MlinfraError):
        resolve_output_path(
            example_project, example_project / "config", "hpo", backbone="x", environ={}
        )
