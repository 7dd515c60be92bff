"""Refusals: unsafe placeholder values, unsafe finished paths, and nothing created on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra.core.names import component_problem
from mlinfra.core.platforms import PLATFORMS
from mlinfra.errors import ConfigError, PathError
from mlinfra.naming import create_naming_context
from mlinfra.paths import (
    apply_env_overrides,
    build_output_path,
    category_dir,
    load_paths_config,
    render_pattern,
    resolve_output_path,
    validate_output_path,
)

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "resume_ner" / "config"
HPO_PATTERN = "{backbone}[/study_{study_hash}]"


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def _edit_paths(config_dir: Path, old: str, new: str) -> None:
    path = config_dir / "paths.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Unsafe placeholder values

UNSAFE_VALUES = [
    pytest.param("..", "'..'", id="dotdot"),
    pytest.param("../x", "'..'", id="dotdot-slash"),
    pytest.param("x/../../y", "'..'", id="dotdot-inside"),
    pytest.param("..\\x", "'..'", id="dotdot-backslash"),
    pytest.param("/etc", "absolute", id="absolute-posix"),
    pytest.param("\\\\server\\share", "absolute", id="unc"),
    pytest.param("C:\\x", "absolute", id="drive-backslash"),
    pytest.param("c:/x", "absolute", id="drive-slash"),
    pytest.param("a\x00b", "control", id="nul"),
    pytest.param("a\nb", "control", id="newline"),
    pytest.param("a\x1fb", "control", id="unit-separator"),
    pytest.param("a\x7fb", "control", id="del"),
    pytest.param("CON", "reserved", id="con"),
    pytest.param("con", "reserved", id="con-lower"),
    pytest.param("nul.txt", "reserved", id="nul-ext"),
    pytest.param("COM1", "reserved", id="com1"),
    pytest.param("lpt9.tar.gz", "reserved", id="lpt9"),
    pytest.param("x.", "ends with a dot", id="trailing-dot"),
    pytest.param(".", "refers to a folder", id="dot"),
    pytest.param("...", "ends with a dot", id="three-dots"),
    pytest.param("", "empty", id="empty"),
    pytest.param("a" * 256, "256 bytes", id="256-ascii"),
    pytest.param("é" * 128, "256 bytes", id="256-bytes-multibyte"),
    pytest.param("日本" * 43, "258 bytes", id="258-bytes-cjk"),
]


@pytest.mark.parametrize("placeholder", ["backbone", "study_hash"])
@pytest.mark.parametrize(("value", "why"), UNSAFE_VALUES)
def test_unsafe_value_is_refused_and_nothing_created(
    example_project: Path, placeholder: str, value: str, why: str
) -> None:
    root = example_project
    before = _listing(root)
    values = {"backbone": "bert", placeholder: value}
    with pytest.raises(PathError) as info:
        resolve_output_path(root, root / "config", "hpo", **values)
    err = info.value
    assert isinstance(err, ConfigError) and isinstance(err, ValueError)
    assert err.pattern == HPO_PATTERN
    assert err.placeholder == placeholder
    assert err.value == value
    message = str(err)
    assert HPO_PATTERN in message
    assert f"'{placeholder}'" in message
    assert repr(value) in message
    assert why in message
    assert _listing(root) == before
    assert not (root / "outputs").exists()


def test_multibyte_limit_counts_bytes_not_characters(example_project: Path) -> None:
    root = example_project
    ok = resolve_output_path(root, root / "config", "hpo", backbone="é" * 127)  # 254 bytes
    assert ok.name == "é" * 127
    assert resolve_output_path(root, root / "config", "hpo", backbone="a" * 255).name == "a" * 255


def test_trailing_space_is_normalised_by_the_example_rules(example_project: Path) -> None:
    """The example replaces ' ' with '_', so a trailing space never reaches the disk."""
    root = example_project
    assert resolve_output_path(root, root / "config", "hpo", backbone="x ").name == "x_"


def test_trailing_space_is_refused_without_a_replace_rule(config_dir: Path) -> None:
    _edit_paths(config_dir, '    " ": "_"\n', "")
    root = config_dir.parent
    before = _listing(root)
    assert resolve_output_path(root, config_dir, "hpo", backbone="a b").name == "a b"
    with pytest.raises(PathError, match="ends with a dot or a space") as info:
        resolve_output_path(root, config_dir, "hpo", backbone="bert ")
    assert info.value.placeholder == "backbone"
    assert info.value.value == "bert "
    assert _listing(root) == before


def test_separators_are_replaced_not_split(example_project: Path) -> None:
    root = example_project
    path = resolve_output_path(root, root / "config", "hpo", backbone="a/b\\c:d")
    assert path == root / "outputs" / "hpo" / "a_b_c_d"


def test_separator_without_replace_rule_is_refused(config_dir: Path) -> None:
    _edit_paths(config_dir, '    "/": "_"\n', "")
    root = config_dir.parent
    with pytest.raises(PathError, match="path separator") as info:
        resolve_output_path(root, config_dir, "hpo", backbone="org/model")
    assert info.value.placeholder == "backbone"
    assert info.value.value == "org/model"


def test_configured_component_limit(config_dir: Path) -> None:
    _edit_paths(config_dir, "max_component_length: 255", "max_component_length: 16")
    root = config_dir.parent
    assert resolve_output_path(root, config_dir, "hpo", backbone="b" * 16).name == "b" * 16
    with pytest.raises(PathError, match="16-byte limit") as info:
        resolve_output_path(root, config_dir, "hpo", backbone="b" * 17)
    assert info.value.placeholder == "backbone"


def test_lowercase_rule(config_dir: Path) -> None:
    _edit_paths(config_dir, "lowercase: false", "lowercase: true")
    root = config_dir.parent
    assert resolve_output_path(root, config_dir, "hpo", backbone="DistilBERT").name == "distilbert"


def test_whole_path_over_max_path_length(config_dir: Path) -> None:
    root = config_dir.parent
    folder = os.path.abspath(root / "outputs" / "hpo")
    limit = len(folder) + 12  # room for "/" and 11 characters
    _edit_paths(config_dir, "max_path_length: 4096", f"max_path_length: {limit}")
    before = _listing(root)
    assert resolve_output_path(root, config_dir, "hpo", backbone="a" * 11).name == "a" * 11
    with pytest.raises(PathError) as info:
        resolve_output_path(root, config_dir, "hpo", backbone="a" * 12)
    message = str(info.value)
    assert "max_path_length" in message
    assert str(limit) in message
    assert info.value.value is not None and info.value.value.endswith("a" * 12)
    with pytest.raises(PathError, match="max_path_length"):
        resolve_output_path(root, config_dir, "hpo", backbone="a" * 5, study_hash="abcdef")
    assert _listing(root) == before


def test_whole_path_limit_applies_to_build_output_path(config_dir: Path) -> None:
    root = config_dir.parent
    limit = len(os.path.abspath(root / "outputs" / "hpo")) + 20
    _edit_paths(config_dir, "max_path_length: 4096", f"max_path_length: {limit}")
    ctx = create_naming_context(
        "hpo", model="distilbert", study_key_hash="ab" * 4, environment="local"
    )
    before = _listing(root)
    with pytest.raises(PathError, match="max_path_length"):
        build_output_path(root, ctx)
    assert _listing(root) == before


# --------------------------------------------------------------------------------------------
# Unknown categories and placeholders


def test_unknown_category_is_refused(example_project: Path) -> None:
    root = example_project
    before = _listing(root)
    with pytest.raises(PathError) as info:
        resolve_output_path(root, root / "config", "models", backbone="b")
    message = str(info.value)
    assert "unknown output category 'models'" in message
    assert "benchmarking, best_model_selection, cache, conversion, final_training, hpo" in message
    assert info.value.value == "models"
    assert _listing(root) == before


def test_unknown_cache_subcategory_is_refused(example_project: Path) -> None:
    root = example_project
    before = _listing(root)
    with pytest.raises(PathError, match="unknown cache sub-category 'latest'") as info:
        resolve_output_path(root, root / "config", "cache", subcategory="latest")
    assert info.value.value == "latest"
    assert _listing(root) == before


def test_placeholders_for_a_category_without_pattern(example_project: Path) -> None:
    root = example_project
    before = _listing(root)
    with pytest.raises(PathError) as info:
        resolve_output_path(root, root / "config", "benchmarking", model="bert", run="1")
    message = str(info.value)
    assert "no pattern for category 'benchmarking'" in message
    assert "model, run" in message
    assert "patterns.benchmarking" in message
    assert info.value.placeholder == "model"
    assert _listing(root) == before


def test_none_placeholders_for_a_category_without_pattern_are_ignored(
    example_project: Path,
) -> None:
    root = example_project
    assert resolve_output_path(root, root / "config", "conversion", model=None) == (
        root / "outputs" / "conversion"
    )


def test_extra_placeholder_is_refused(example_project: Path) -> None:
    root = example_project
    before = _listing(root)
    with pytest.raises(PathError) as info:
        resolve_output_path(root, root / "config", "hpo", backbone="b", trial="7", run_id="r")
    message = str(info.value)
    assert "run_id, trial are not used by patterns.hpo" in message
    assert HPO_PATTERN in message
    assert "it uses: backbone, study_hash" in message
    assert info.value.placeholder == "run_id"
    assert info.value.pattern == HPO_PATTERN
    assert _listing(root) == before


def test_missing_required_placeholder_names_given_ones(example_project: Path) -> None:
    root = example_project
    before = _listing(root)
    with pytest.raises(PathError) as info:
        resolve_output_path(root, root / "config", "hpo", study_hash="abc123")
    message = str(info.value)
    assert "no value for placeholder(s) backbone" in message
    assert "given: study_hash" in message
    assert HPO_PATTERN in message
    assert info.value.pattern == HPO_PATTERN
    with pytest.raises(PathError, match="given: none"):
        resolve_output_path(root, root / "config", "hpo")
    assert _listing(root) == before


def test_render_pattern_refuses_non_path_tokens(config_dir: Path) -> None:
    paths = load_paths_config(config_dir)
    with pytest.raises(PathError, match="unknown placeholder") as info:
        render_pattern("{version}/x", {"version": "1"}, paths, pattern_key="custom")
    assert "patterns.custom" in str(info.value)
    assert info.value.key == "custom"


def test_render_pattern_returns_posix_parts(config_dir: Path) -> None:
    paths = load_paths_config(config_dir)
    rendered = render_pattern(
        "{storage_env}/{model}/study-{study8}[/trial-{trial8}]",
        {"storage_env": "local", "model": "a b", "study8": "01234567", "trial8": None},
        paths,
        pattern_key="hpo_v2",
    )
    assert rendered.parts == ("local", "a_b", "study-01234567")


# --------------------------------------------------------------------------------------------
# validate_output_path


@pytest.mark.parametrize(
    "path", ["outputs/hpo/x", "outputs/hpo/local/distilbert/study-350a79aa", "a", "a b/c-d_e"]
)
def test_validate_accepts_normal_folders(tmp_path: Path, path: str) -> None:
    result = validate_output_path(path)
    assert isinstance(result, Path)
    assert result == Path(path)
    absolute = validate_output_path(tmp_path / path, root=tmp_path)
    assert absolute == tmp_path / path


def test_validate_accepts_existing_folder_and_pathlike(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    assert validate_output_path(tmp_path / "out") == tmp_path / "out"
    assert validate_output_path(str(tmp_path / "out")) == tmp_path / "out"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("..", "'..'"),
        ("../outside", "'..'"),
        ("outputs/../../etc", "'..'"),
        ("outputs/CON/x", "reserved"),
        ("outputs/x./y", "ends with a dot"),
        ("outputs/a\x00b", "control"),
        ("outputs/" + "z" * 256, "256 bytes"),
    ],
)
def test_validate_refuses(tmp_path: Path, path: str, why: str) -> None:
    before = _listing(tmp_path)
    with pytest.raises(PathError, match="is refused") as info:
        validate_output_path(path)
    assert why in str(info.value)
    assert info.value.value == path
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("path", [".", "./"])
def test_validate_refuses_dot(path: str) -> None:
    with pytest.raises(PathError):
        validate_output_path(path)


def test_validate_refuses_inner_dot_part() -> None:
    with pytest.raises(PathError):
        validate_output_path("outputs/./x")


def test_validate_refuses_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "outputs" / "hpo"
    target.parent.mkdir()
    target.write_text("not a folder")
    with pytest.raises(PathError, match="a file already exists there"):
        validate_output_path(target)
    assert target.read_text() == "not a folder"


def test_validate_refuses_paths_outside_root(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    with pytest.raises(PathError, match="outside its root"):
        validate_output_path(tmp_path / "other" / "x", root=root)
    # a sibling sharing the root's name as a prefix is outside too
    with pytest.raises(PathError, match="outside its root"):
        validate_output_path(tmp_path / "proj-other" / "x", root=root)
    with pytest.raises(PathError, match="outside its root"):
        validate_output_path("/etc/x", root=root)
    assert validate_output_path(root / "outputs", root=root) == root / "outputs"


def test_validate_relative_path_against_relative_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert validate_output_path("outputs/x", root=".") == Path("outputs/x")
    with pytest.raises(PathError, match="outside its root"):
        validate_output_path(str(tmp_path.parent / "elsewhere"), root=".")


def test_validate_refuses_over_long_paths(tmp_path: Path) -> None:
    path = tmp_path / ("d" * 40)
    length = len(os.path.abspath(path))
    assert validate_output_path(path, max_path_length=length) == path
    with pytest.raises(PathError, match=f"{length} characters long.*limit of {length - 1}"):
        validate_output_path(path, max_path_length=length - 1)


def test_validate_component_byte_limit_parameter() -> None:
    assert validate_output_path("a/" + "x" * 10, max_component_bytes=10) == Path("a/xxxxxxxxxx")
    with pytest.raises(PathError, match="11 bytes long"):
        validate_output_path("a/" + "x" * 11, max_component_bytes=10)


# --------------------------------------------------------------------------------------------
# Property: no value leaves the category folder

_PATHS = load_paths_config(EXAMPLE_CONFIG)
_ROOT = Path("/nonexistent-mlinfra-root/project")


def _inside(result: Path, folder: Path) -> bool:
    absolute = Path(os.path.abspath(result))
    return absolute != folder and Path(os.path.abspath(folder)) in absolute.parents


@settings(deadline=None)
@given(
    backbone=st.text(),
    study_hash=st.none() | st.text(),
    env=st.sampled_from(PLATFORMS),
)
def test_no_value_leaves_the_category_folder(
    backbone: str, study_hash: str | None, env: str
) -> None:
    folder = category_dir(_ROOT, apply_env_overrides(_PATHS, env), "hpo")
    try:
        result = resolve_output_path(
            _ROOT, EXAMPLE_CONFIG, "hpo", paths=_PATHS, storage_env=env,
            backbone=backbone, study_hash=study_hash,
        )  # fmt: skip
    except PathError:
        return
    assert _inside(result, folder), (result, folder)
    relative = Path(os.path.abspath(result)).relative_to(os.path.abspath(folder))
    assert len(relative.parts) == (1 if study_hash is None else 2)
    for part in relative.parts:
        assert component_problem(part) is None
    assert os.path.normpath(result) == str(result)


@settings(deadline=None)
@given(
    model=st.text(min_size=1).filter(lambda s: s.strip() != ""),
    env=st.sampled_from(PLATFORMS),
    study=st.text(alphabet="0123456789abcdef", min_size=8, max_size=64),
)
def test_no_model_name_leaves_the_category_folder(model: str, env: str, study: str) -> None:
    ctx = create_naming_context("hpo", model=model, study_key_hash=study, environment=env)
    folder = category_dir(_ROOT, apply_env_overrides(_PATHS, env), "hpo")
    try:
        result = build_output_path(_ROOT, ctx, paths=_PATHS)
    except PathError:
        return
    assert _inside(result, folder), (result, folder)
    relative = Path(os.path.abspath(result)).relative_to(os.path.abspath(folder))
    assert relative.parts[0] == env
    assert relative.parts[2] == f"study-{study[:8]}"
    assert len(relative.parts) == 3
