"""detect_repo_root and resolve_project_paths_with_fallback: no cache, markers enforced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlinfra.errors import ConfigError
from mlinfra.paths import detect_repo_root, resolve_project_paths_with_fallback

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "resume_ner"


def _make_project(where: Path) -> Path:
    shutil.copytree(EXAMPLE / "config", where / "config")
    return where.resolve()


def _require_marker(root: Path, marker: str) -> None:
    path = root / "config" / "paths.yaml"
    text = path.read_text(encoding="utf-8")
    assert "  markers: []\n" in text
    path.write_text(text.replace("  markers: []\n", f"  markers: [{marker}]\n"), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return _make_project(tmp_path / "proj")


# --------------------------------------------------------------------------------------------
# Where discovery starts


@pytest.mark.parametrize("nested", [".", "a", "a/b/c", "notebooks/deep/er"])
def test_from_nested_folders(project: Path, nested: str) -> None:
    start = project / nested
    start.mkdir(parents=True, exist_ok=True)
    assert detect_repo_root(start_path=start, environ={}) == project


def test_from_a_file(project: Path) -> None:
    script = project / "src" / "train.py"
    script.parent.mkdir()
    script.write_text("print(1)\n")
    assert detect_repo_root(start_path=script, environ={}) == project


def test_from_the_working_directory(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = project / "x" / "y"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert detect_repo_root(environ={}) == project


@pytest.mark.parametrize("inside", ["config", "config/hpo", "config/experiment"])
def test_from_inside_config(project: Path, inside: str) -> None:
    assert detect_repo_root(start_path=project / inside, environ={}) == project


def test_with_config_dir(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert detect_repo_root(config_dir=project / "config", environ={}) == project
    # config_dir wins over a start path in another place
    other = _make_project(tmp_path / "other")
    assert detect_repo_root(start_path=other, config_dir=project / "config", environ={}) == (
        project
    )


def test_with_missing_config_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config folder not found"):
        detect_repo_root(config_dir=tmp_path / "nope", environ={})


def test_with_output_dir(project: Path, tmp_path: Path) -> None:
    out = project / "outputs" / "hpo" / "local" / "distilbert" / "study-350a79aa"
    # the folder need not exist yet
    assert detect_repo_root(output_dir=out, environ={}) == project
    assert not (project / "outputs").exists()
    other = _make_project(tmp_path / "other")
    # output_dir wins over start_path
    assert detect_repo_root(start_path=other, output_dir=out, environ={}) == project


def test_with_project_root_in_environ(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert detect_repo_root(environ={"MLINFRA_PROJECT_ROOT": str(project)}) == project
    # an empty value is ignored, and nothing is found from an unrelated folder
    with pytest.raises(ConfigError, match="no mlinfra project"):
        detect_repo_root(environ={"MLINFRA_PROJECT_ROOT": ""})


def test_environ_argument_replaces_os_environ(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _make_project(tmp_path / "other")
    monkeypatch.setenv("MLINFRA_PROJECT_ROOT", str(other))
    assert detect_repo_root(start_path=project, environ={}) == project
    assert detect_repo_root(start_path=project) == other


def test_project_root_env_that_is_not_a_project(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="MLINFRA_PROJECT_ROOT") as info:
        detect_repo_root(environ={"MLINFRA_PROJECT_ROOT": str(empty)})
    assert "config/" in str(info.value)


def test_no_project_says_what_was_looked_for(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    with pytest.raises(ConfigError) as info:
        detect_repo_root(start_path=lonely, environ={})
    message = str(info.value)
    assert "config/" in message and "paths.yaml" in message
    assert "MLINFRA_PROJECT_ROOT" in message


def test_config_folder_without_paths_yaml_or_experiment_is_not_a_project(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    (fake / "config").mkdir(parents=True)
    (fake / "config" / "train.yaml").write_text("x: 1\n")
    with pytest.raises(ConfigError):
        detect_repo_root(start_path=fake, environ={})


def test_nearest_project_wins(project: Path) -> None:
    inner = _make_project(project / "vendor" / "inner")
    deep = inner / "a" / "b"
    deep.mkdir(parents=True)
    assert detect_repo_root(start_path=deep, environ={}) == inner
    assert detect_repo_root(start_path=project / "vendor", environ={}) == project


# --------------------------------------------------------------------------------------------
# No argument-blind cache


def test_two_projects_never_share_a_root(tmp_path: Path) -> None:
    a = _make_project(tmp_path / "A")
    b = _make_project(tmp_path / "B")
    assert detect_repo_root(config_dir=a / "config", environ={}) == a
    assert detect_repo_root(config_dir=b / "config", environ={}) == b
    assert detect_repo_root(config_dir=a / "config", environ={}) == a
    assert detect_repo_root(start_path=b / "x", environ={}) == b
    assert detect_repo_root(start_path=a, environ={}) == a
    assert detect_repo_root(output_dir=b / "outputs" / "hpo", environ={}) == b
    assert detect_repo_root(environ={"MLINFRA_PROJECT_ROOT": str(a)}) == a
    assert detect_repo_root(environ={"MLINFRA_PROJECT_ROOT": str(b)}) == b


def test_working_directory_change_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _make_project(tmp_path / "A")
    b = _make_project(tmp_path / "B")
    monkeypatch.chdir(a)
    assert detect_repo_root(environ={}) == a
    monkeypatch.chdir(b)
    assert detect_repo_root(environ={}) == b
    monkeypatch.chdir(a / "config")
    assert detect_repo_root(environ={}) == a


def test_a_deleted_project_is_not_remembered(tmp_path: Path) -> None:
    a = _make_project(tmp_path / "A")
    assert detect_repo_root(start_path=a, environ={}) == a
    shutil.rmtree(a / "config")
    with pytest.raises(ConfigError):
        detect_repo_root(start_path=a, environ={})


# --------------------------------------------------------------------------------------------
# Markers from paths.yaml


def test_required_marker_is_enforced(tmp_path: Path) -> None:
    root = _make_project(tmp_path / "proj")
    _require_marker(root, "pyproject.toml")
    with pytest.raises(ConfigError, match="no mlinfra project"):
        detect_repo_root(start_path=root / "config", environ={})
    with pytest.raises(
        ConfigError, match=r"lacks the markers paths\.yaml requires: pyproject\.toml"
    ):
        detect_repo_root(environ={"MLINFRA_PROJECT_ROOT": str(root)})
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert detect_repo_root(start_path=root / "config", environ={}) == root
    assert detect_repo_root(environ={"MLINFRA_PROJECT_ROOT": str(root)}) == root


def test_folder_marker(tmp_path: Path) -> None:
    root = _make_project(tmp_path / "proj")
    _require_marker(root, ".git")
    nested = root / "notebooks"
    nested.mkdir()
    with pytest.raises(ConfigError):
        detect_repo_root(start_path=nested, environ={})
    (root / ".git").mkdir()
    assert detect_repo_root(start_path=nested, environ={}) == root


def test_marker_skips_an_inner_config_to_the_outer_project(tmp_path: Path) -> None:
    outer = _make_project(tmp_path / "outer")
    _require_marker(outer, "pyproject.toml")
    (outer / "pyproject.toml").write_text("")
    inner = _make_project(outer / "pkg")
    _require_marker(inner, "pyproject.toml")
    # inner lacks its marker, so it is not a root: the search goes on to outer
    assert detect_repo_root(start_path=inner / "x", environ={}) == outer
    (inner / "pyproject.toml").write_text("")
    assert detect_repo_root(start_path=inner / "x", environ={}) == inner


# --------------------------------------------------------------------------------------------
# resolve_project_paths_with_fallback


def test_fallback_pair_is_consistent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _make_project(tmp_path / "A")
    b = _make_project(tmp_path / "B")
    monkeypatch.chdir(tmp_path)
    assert resolve_project_paths_with_fallback(start_path=a, environ={}) == (a, a / "config")
    assert resolve_project_paths_with_fallback(config_dir=b / "config", environ={}) == (
        b,
        b / "config",
    )
    assert resolve_project_paths_with_fallback(output_dir=a / "outputs" / "x", environ={}) == (
        a,
        a / "config",
    )
    # config_dir from B with an output folder in A: both come from B, never a mix
    root, cfg = resolve_project_paths_with_fallback(
        output_dir=a / "outputs", config_dir=b / "config", environ={}
    )
    assert (root, cfg) == (b, b / "config")
    monkeypatch.chdir(b / "config")
    assert resolve_project_paths_with_fallback(environ={}) == (b, b / "config")
    assert resolve_project_paths_with_fallback(environ={"MLINFRA_PROJECT_ROOT": str(a)}) == (
        a,
        a / "config",
    )


def test_fallback_with_custom_config_folder_name(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copytree(EXAMPLE / "config", root / "settings")
    found_root, cfg = resolve_project_paths_with_fallback(config_dir=root / "settings", environ={})
    assert found_root == root.resolve()
    assert cfg == (root / "settings").resolve()
    assert (cfg / "paths.yaml").is_file()
    assert detect_repo_root(config_dir=root / "settings", environ={}) == found_root


def test_fallback_raises_when_nothing_is_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no mlinfra project"):
        resolve_project_paths_with_fallback(start_path=tmp_path, environ={})
