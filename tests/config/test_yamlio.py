"""Tests for mlinfra.config.yamlio: safe YAML with provenance and hard limits."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import yaml

from mlinfra.config import yamlio
from mlinfra.config.tree import Source
from mlinfra.config.yamlio import YamlLimits, load_yaml_file, load_yaml_text
from mlinfra.errors import ConfigError

F = "cfg.yaml"


def _error(text: str, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_yaml_text(text, file=F, **kwargs)  # type: ignore[arg-type]
    return info.value


def _lines(text: str) -> dict[tuple[str | int, ...], int | None]:
    return {k: s.line for k, s in load_yaml_text(text, file=F).sources.items()}


# --------------------------------------------------------------------------- positive cases


def test_plain_data_types() -> None:
    text = "s: text\ni: 3\nf: 1.5\nb: true\nn: null\nl: [1, two]\nm: {k: v}\nq: '3'\n"
    assert load_yaml_text(text).data == {
        "s": "text",
        "i": 3,
        "f": 1.5,
        "b": True,
        "n": None,
        "l": [1, "two"],
        "m": {"k": "v"},
        "q": "3",
    }


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_document_is_empty_mapping(text: str) -> None:
    tree = load_yaml_text(text, file=F)
    assert tree.data == {}
    assert tree.sources == {}


def test_explicit_null_document_is_not_turned_into_a_mapping() -> None:
    assert load_yaml_text("null\n").data is None
    assert load_yaml_text("~\n").data is None


@pytest.mark.parametrize("text", ["---\n", "---\n# to be filled in\n", "--- # header\n"])
def test_empty_document_with_start_marker_is_empty_mapping(text: str) -> None:
    assert load_yaml_text(text, file=F).data == {}


def test_provenance_lines_for_keys_and_list_items() -> None:
    text = (
        "# header\n"  # 1
        "model:\n"  # 2
        "  backbone: bert\n"  # 3
        "  layers:\n"  # 4
        "    - 4\n"  # 5
        "    - name: x\n"  # 6
        "      size: 2\n"  # 7
        "top: 1\n"  # 8
    )
    tree = load_yaml_text(text, file=F)
    assert tree.data == {
        "model": {"backbone": "bert", "layers": [4, {"name": "x", "size": 2}]},
        "top": 1,
    }
    assert tree.sources[("model",)] == Source(F, 2)
    assert tree.sources[("model", "backbone")] == Source(F, 3)
    assert tree.sources[("model", "layers")] == Source(F, 4)
    assert tree.sources[("model", "layers", 0)] == Source(F, 5)
    assert tree.sources[("model", "layers", 1)] == Source(F, 6)
    assert tree.sources[("model", "layers", 1, "name")] == Source(F, 6)
    assert tree.sources[("model", "layers", 1, "size")] == Source(F, 7)
    assert tree.sources[("top",)] == Source(F, 8)
    assert tree.sources[()].file == F
    assert all(s.origin == "file" for s in tree.sources.values())


def test_every_key_and_item_has_a_source() -> None:
    tree = load_yaml_text("a:\n  b: [1, {c: 2}]\n  d: {}\ne: []\n", file=F)
    assert set(tree.sources) == {
        (),
        ("a",),
        ("a", "b"),
        ("a", "b", 0),
        ("a", "b", 1),
        ("a", "b", 1, "c"),
        ("a", "d"),
        ("e",),
    }


def test_crlf_line_endings_and_bom() -> None:
    assert _lines("\ufeffa: 1\r\nb: 2\r\n") == {(): 1, ("a",): 1, ("b",): 2}


def test_merge_keys_expand_and_explicit_keys_win() -> None:
    text = (
        "base: &base\n"  # 1
        "  lr: 0.1\n"  # 2
        "  epochs: 3\n"  # 3
        "child:\n"  # 4
        "  <<: *base\n"  # 5
        "  epochs: 10\n"  # 6
    )
    tree = load_yaml_text(text, file=F)
    assert tree.data["child"] == {"lr": 0.1, "epochs": 10}
    assert "<<" not in tree.data["child"]
    assert tree.sources[("child", "lr")].line == 2
    assert tree.sources[("child", "epochs")].line == 6


def test_explicit_key_before_merge_key_still_wins() -> None:
    text = "base: &b {x: 1, y: 2}\nchild:\n  y: 9\n  <<: *b\n"
    assert load_yaml_text(text).data["child"] == {"x": 1, "y": 9}


def test_merge_key_list_earlier_mapping_wins() -> None:
    text = "a: &a {k: 1, j: 2}\nb: &b {k: 3, m: 4}\nc:\n  <<: [*a, *b]\n"
    assert load_yaml_text(text).data["c"] == {"k": 1, "j": 2, "m": 4}


def test_merge_key_with_scalar_is_refused() -> None:
    err = _error("a: 1\n<<: 5\n")
    assert err.file == F
    assert err.line == 2
    assert "'<<' merge key needs a mapping" in err.reason


def test_aliases_copy_values_and_keep_anchor_lines() -> None:
    tree = load_yaml_text("base: &x\n  k: 1\nother: *x\n", file=F)
    assert tree.data == {"base": {"k": 1}, "other": {"k": 1}}
    assert tree.data["base"] is not tree.data["other"]
    assert tree.sources[("other",)].line == 3
    assert tree.sources[("other", "k")].line == 2


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("d: 2024-01-02\n", "2024-01-02"),
        ("d: 2024-01-02T03:04:05Z\n", "2024-01-02T03:04:05Z"),
        ("d: 2024-01-02 03:04:05.5 +01:00\n", "2024-01-02 03:04:05.5 +01:00"),
        ("d: !!timestamp 2024-01-02\n", "2024-01-02"),
        ("d: '2024-01-02'\n", "2024-01-02"),
    ],
)
def test_dates_are_kept_as_written_text(text: str, value: str) -> None:
    data = load_yaml_text(text).data
    assert data == {"d": value}
    assert type(data["d"]) is str


def test_scalar_keys_become_strings() -> None:
    assert load_yaml_text("1: a\n1.5: b\n'x': c\n").data == {"1": "a", "1.5": "b", "x": "c"}


def test_quoted_true_and_null_keys_are_fine() -> None:
    assert load_yaml_text("'true': 1\n'null': 2\n").data == {"true": 1, "null": 2}


def test_top_level_list() -> None:
    tree = load_yaml_text("- a\n- b\n", file=F)
    assert tree.data == ["a", "b"]
    assert tree.sources[(1,)] == Source(F, 2)


def test_file_argument_none_gives_sources_without_file() -> None:
    tree = load_yaml_text("a: 1\n")
    assert tree.sources[("a",)] == Source(None, 1)


def test_load_yaml_file_reads_and_uses_display_name(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text("a:\n  b: 1\n", encoding="utf-8")
    tree = load_yaml_file(path, display="configs/model.yaml")
    assert tree.data == {"a": {"b": 1}}
    assert tree.sources[("a", "b")] == Source("configs/model.yaml", 2)
    default = load_yaml_file(str(path))
    assert default.sources[("a", "b")].file == str(path)


# --------------------------------------------------------------------------- malformed YAML


def test_malformed_yaml_names_file_and_line() -> None:
    err = _error("a: 1\nb: [1, 2\nc: 3\n")
    assert err.file == F
    assert err.line in (2, 3)
    assert err.key is None
    assert err.reason.startswith("malformed YAML:")
    assert "flow sequence" in err.reason


def test_malformed_yaml_bad_indentation() -> None:
    err = _error("a:\n  b: 1\n c: 2\n")
    assert err.file == F
    assert err.line == 3
    assert "malformed YAML" in str(err)


def test_tab_indentation_is_malformed() -> None:
    err = _error("a:\n\tb: 1\n")
    assert (err.file, err.line) == (F, 2)
    assert "cannot start any token" in err.reason


def test_several_documents_are_refused() -> None:
    err = _error("a: 1\n---\nb: 2\n")
    assert (err.file, err.line) == (F, 2)
    assert "single document" in err.reason


def test_malformed_yaml_file_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("x: 1\ny: {a: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_yaml_file(path, display="bad.yaml")
    assert info.value.file == "bad.yaml"
    assert info.value.line is not None
    assert info.value.line >= 2
    assert "malformed YAML" in info.value.reason


# --------------------------------------------------------------------------- forbidden tags


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "executed"


@pytest.mark.parametrize(
    ("tag_text", "shown"),
    [
        ("!!python/object:os.system {}", "!!python/object:os.system"),
        ("!!python/object/apply:os.system ['touch {marker}']", "!!python/object/apply:os.system"),
        ("!!python/object/new:os.system ['touch {marker}']", "!!python/object/new:os.system"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        (
            '!!python/object/apply:builtins.exec [\'open("{marker}", "w")\']',
            "!!python/object/apply",
        ),
    ],
)
def test_python_tags_are_refused_and_nothing_runs(marker: Path, tag_text: str, shown: str) -> None:
    text = "ok: 1\nsection:\n  cmd: " + tag_text.replace("{marker}", str(marker)) + "\n"
    err = _error(text)
    assert err.file == F
    assert err.line == 3
    assert err.key == "section.cmd"
    assert f"YAML tag '{shown}" in err.reason
    assert "not allowed" in err.reason
    assert not marker.exists()


def test_python_tag_inside_list_item(marker: Path) -> None:
    err = _error(f"l:\n  - 1\n  - !!python/object/apply:os.system ['touch {marker}']\n")
    assert (err.file, err.line, err.key) == (F, 3, "l[1]")
    assert not marker.exists()


def test_binary_tag_is_refused() -> None:
    err = _error("a:\n  blob: !!binary aGVsbG8=\n")
    assert (err.file, err.line, err.key) == (F, 2, "a.blob")
    assert "YAML tag '!!binary' is not allowed" in err.reason


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a: !!set {x, y}\n", "!!set"),
        ("a: !!omap [b: 1]\n", "!!omap"),
        ("a: !custom 1\n", "!custom"),
        ("a: !custom [1]\n", "!custom"),
        ("a: !custom {b: 1}\n", "!custom"),
    ],
)
def test_other_tags_are_refused(text: str, shown: str) -> None:
    err = _error(text)
    assert (err.file, err.line, err.key) == (F, 1, "a")
    assert f"YAML tag '{shown}' is not allowed" in err.reason


def test_explicit_standard_tags_are_fine() -> None:
    assert load_yaml_text("a: !!str 3\nb: !!int '4'\nc: !!float 1\n").data == {
        "a": "3",
        "b": 4,
        "c": 1.0,
    }


# --------------------------------------------------------------------------- keys


def test_duplicate_key_names_both_lines() -> None:
    text = "a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n"
    err = _error(text)
    assert err.file == F
    assert err.line == 5
    assert err.key == "b.c"
    assert "duplicate key 'c'" in err.reason
    assert "first set on line 3" in err.reason
    assert str(err).startswith("cfg.yaml:5, key 'b.c': duplicate key")


def test_duplicate_top_level_key() -> None:
    err = _error("x: 1\ny: 2\nx: 3\n")
    assert (err.line, err.key) == (3, "x")
    assert "line 1" in err.reason


def test_int_and_string_spelling_of_a_key_are_duplicates() -> None:
    err = _error("1: a\n'1': b\n")
    assert (err.line, err.key) == (2, "1")
    assert "duplicate key '1'" in err.reason


def test_same_key_in_different_mappings_is_fine() -> None:
    assert load_yaml_text("a: {x: 1}\nb: {x: 2}\n").data == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.parametrize(
    ("text", "line", "key", "shown"),
    [
        ("~: 1\n", 1, None, "'~' is read as None"),
        ("a: 1\nnull: 2\n", 2, None, "'null' is read as None"),
        ("a:\n  true: 1\n", 2, "a", "'true' is read as True"),
        ("a:\n  x: 1\n  no: 2\n", 3, "a", "'no' is read as False"),
        ("on: push\n", 1, None, "'on' is read as True"),
    ],
)
def test_null_and_boolean_keys_are_refused(
    text: str, line: int, key: str | None, shown: str
) -> None:
    err = _error(text)
    assert (err.file, err.line, err.key) == (F, line, key)
    assert shown in err.reason
    assert "quote it" in err.reason


def test_complex_key_is_refused() -> None:
    err = _error("a: 1\n? [1, 2]\n: 3\n")
    assert (err.file, err.line) == (F, 2)
    assert "mapping keys must be plain scalars" in err.reason


# --------------------------------------------------------------------------- limits


def _billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = ['l0: &l0 "lol"']
    for n in range(1, levels + 1):
        refs = ", ".join([f"*l{n - 1}"] * width)
        lines.append(f"l{n}: &l{n} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_by_node_budget() -> None:
    text = _billion_laughs()
    assert len(text) < 1000
    err = _error(text)
    assert err.file == F
    assert err.line is not None
    assert 1 <= err.line <= 10
    assert "more than 200000 nodes" in err.reason
    assert "alias bomb" in err.reason


def test_node_budget_is_configurable() -> None:
    text = "l: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
    assert load_yaml_text(text, limits=YamlLimits(max_nodes=100)).data["l"][-1] == 10
    err = _error(text, limits=YamlLimits(max_nodes=5))
    assert "more than 5 nodes" in err.reason
    assert err.key is not None
    assert err.key.startswith("l[")


def test_alias_budget_counts_every_expansion() -> None:
    """Five small aliases of a 3-item list cost 5 * 4 nodes, not 4."""
    text = "a: &a [1, 2, 3]\nb: [*a, *a, *a, *a, *a]\n"
    assert load_yaml_text(text, limits=YamlLimits(max_nodes=40)).data["b"] == [[1, 2, 3]] * 5
    err = _error(text, limits=YamlLimits(max_nodes=20))
    assert "more than 20 nodes" in err.reason


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_very_deep_flow_nesting_is_a_config_error(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * 10_000 + "1" + closer * 10_000 + "\n"
    err = _error(text)
    assert err.file == F
    assert "nest" in err.reason.lower()


def test_very_deep_nesting_with_pure_python_loader_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without libyaml the composer recurses in Python: RecursionError must become ConfigError."""
    monkeypatch.setattr(yamlio, "_Loader", yaml.SafeLoader)
    err = _error("[" * 10_000 + "]" * 10_000 + "\n")
    assert err.file == F
    assert "nested too deeply" in err.reason


def test_very_deep_block_nesting_is_a_config_error() -> None:
    err = _error("- " * 10_000 + "x\n")
    assert err.file == F
    assert err.line == 1
    assert "nest" in err.reason.lower()


def test_depth_limit() -> None:
    text = "[" * 64 + "1" + "]" * 64 + "\n"
    assert load_yaml_text(text).data is not None
    deeper = "[" * 66 + "1" + "]" * 66 + "\n"
    err = _error(deeper)
    assert (err.file, err.line) == (F, 1)
    assert "nesting deeper than 64 levels" in err.reason
    small = _error("a:\n  b:\n    c: 1\n", limits=YamlLimits(max_depth=2))
    assert (small.line, small.key) == (3, "a.b.c")
    assert "deeper than 2 levels" in small.reason


def test_oversized_text_is_refused() -> None:
    err = _error("a: " + "x" * 200 + "\n", limits=YamlLimits(max_bytes=100))
    assert err.file == F
    assert err.line is None
    assert "larger than the 100 byte limit" in err.reason


def test_oversized_file_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "huge.yaml"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB of zero bytes

    def never(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("the file must not be read")

    monkeypatch.setattr(Path, "read_bytes", never)
    monkeypatch.setattr(Path, "read_text", never)
    with pytest.raises(ConfigError) as info:
        load_yaml_file(big, display="huge.yaml")
    err = info.value
    assert err.file == "huge.yaml"
    assert err.line is None
    assert f"file is {50 * 1024 * 1024} bytes" in err.reason
    assert "over the 5242880 byte limit" in err.reason
    assert "not read" in err.reason


def test_file_at_exactly_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"a: 1\n")
    assert load_yaml_file(path, limits=YamlLimits(max_bytes=5)).data == {"a": 1}
    with pytest.raises(ConfigError, match="over the 4 byte limit"):
        load_yaml_file(path, limits=YamlLimits(max_bytes=4))


# --------------------------------------------------------------------------- file errors


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_yaml_file(path, display="latin.yaml")
    err = info.value
    assert err.file == "latin.yaml"
    assert err.line is None
    assert "not UTF-8 text (byte 9)" in err.reason
    assert "save it as UTF-8" in err.reason


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml_file(tmp_path / "nope.yaml", display="nope.yaml")
    assert info.value.file == "nope.yaml"
    assert info.value.reason == "file not found"


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml_file(tmp_path)
    assert info.value.file == str(tmp_path)
    assert info.value.reason == "not a file"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.yaml"
    path.write_text("a: 1\n", encoding="utf-8")

    def denied(self: Path) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ConfigError) as info:
        load_yaml_file(path, display="locked.yaml")
    assert info.value.file == "locked.yaml"
    assert info.value.reason == "cannot read file: Permission denied"


def test_errors_in_files_name_the_display_file(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("a: 1\na: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_yaml_file(path, display="configs/dup.yaml")
    assert str(info.value).startswith("configs/dup.yaml:2, key 'a': duplicate key 'a'")


# --------------------------------------------------------------------------- known bug


def _merge_key_bomb(keys: int, levels: int) -> str:
    lines = ["l0: &l0 {" + ", ".join(f"k{i}: {i}" for i in range(keys)) + "}"]
    for n in range(1, levels):
        refs = ", ".join([f"*l{n - 1}"] * 9)
        lines.append(f"l{n}: &l{n} {{<<: [{refs}]}}")
    return "\n".join(lines) + "\n"


def test_merge_key_alias_bomb_is_refused_by_node_budget() -> None:
    # l4 expands 9**3 = 729 copies of a 50-key mapping: ~36 000 entries visited, while the
    # budget allows 2 000 nodes. The loader accepts it (and with more keys or levels it runs for
    # minutes on a 1 KB file).
    text = _merge_key_bomb(keys=50, levels=5)
    with pytest.raises(ConfigError, match="nodes"):
        load_yaml_text(text, file=F, limits=YamlLimits(max_nodes=2_000))
