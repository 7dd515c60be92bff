"""resolve_output_path and category_dir: category folders, optional segments, storage envs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlinfra.errors import ConfigError, PathError
from mlinfra.paths import (
    apply_env_overrides,
    category_dir,
    load_paths_config,
    outputs_root,
    resolve_output_path,
)

#: The specification writes the project root as Path(".").
HERE = Path(".")  # noqa: PTH201

ENV_OUTPUTS = {
    "colab": Path("/content/outputs"),
    "kaggle": Path("/kaggle/working/outputs"),
    "azureml": Path("/mnt/outputs"),
}


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def _edit_paths(config_dir: Path, old: str, new: str) -> None:
    path = config_dir / "paths.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


_EXAMPLE_CACHE = (
    "cache:\n  best_configurations: best_configurations\n  final_training: final_training\n"
    "  best_model_selection: best_model_selection\n"
)


def _add_cache_section(config_dir: Path) -> None:
    _edit_paths(
        config_dir,
        _EXAMPLE_CACHE,
        "cache:\n  best_configurations: best_configurations\n  runs: run_cache\n",
    )


# --------------------------------------------------------------------------------------------
# The specification's contract


def test_spec_contract_study_folder(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(example_project)
    before = _listing(example_project)
    path = resolve_output_path(
        root_dir=HERE,
        config_dir=Path("config/"),
        category="hpo",
        backbone="distilbert",
        study_hash="abc123",
    )
    assert path == Path("outputs/hpo/distilbert/study_abc123")
    assert isinstance(path, Path)
    assert _listing(example_project) == before


def test_spec_contract_optional_segment_dropped(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(example_project)
    path = resolve_output_path(
        root_dir=HERE,
        config_dir=Path("config/"),
        category="hpo",
        backbone="distilbert",
    )
    assert path == Path("outputs/hpo/distilbert")
    assert not (example_project / "outputs").exists()


def test_none_value_drops_optional_segment_like_absence(config_dir: Path) -> None:
    root = config_dir.parent
    with_none = resolve_output_path(root, config_dir, "hpo", backbone="bert", study_hash=None)
    assert with_none == root / "outputs" / "hpo" / "bert"


def test_absolute_root_gives_absolute_path(example_project: Path) -> None:
    path = resolve_output_path(
        example_project, example_project / "config", "hpo", backbone="bert", study_hash="ff00"
    )
    assert path == example_project / "outputs" / "hpo" / "bert" / "study_ff00"
    assert path.is_absolute()


def test_model_id_with_slash_becomes_one_folder(config_dir: Path) -> None:
    root = config_dir.parent
    path = resolve_output_path(root, config_dir, "hpo", backbone="microsoft/deberta-v3-base")
    assert path == root / "outputs" / "hpo" / "microsoft_deberta-v3-base"
    assert path.parent == root / "outputs" / "hpo"


def test_non_string_values_are_rendered_as_text(config_dir: Path) -> None:
    root = config_dir.parent
    assert resolve_output_path(root, config_dir, "hpo", backbone=7, study_hash=True) == (
        root / "outputs" / "hpo" / "7" / "study_true"
    )


def test_category_without_pattern_is_its_folder(config_dir: Path) -> None:
    root = config_dir.parent
    assert resolve_output_path(root, config_dir, "benchmarking") == root / "outputs/benchmarking"
    assert resolve_output_path(root, config_dir, "final_training", model=None) == (
        root / "outputs/final_training"
    )


def test_given_paths_config_is_used_instead_of_config_dir(config_dir: Path) -> None:
    root = config_dir.parent
    paths = load_paths_config(config_dir)
    path = resolve_output_path(
        root, root / "no-such-config", "hpo", paths=paths, backbone="bert", storage_env="kaggle"
    )
    assert path == Path("/kaggle/working/outputs/hpo/bert")


def test_environ_feeds_interpolation_in_paths_yaml(config_dir: Path) -> None:
    _edit_paths(config_dir, "  outputs: outputs\n", "  outputs: ${OUT_DIR:-outputs}\n")
    root = config_dir.parent
    assert resolve_output_path(
        root, config_dir, "hpo", backbone="b", environ={"OUT_DIR": "elsewhere"}
    ) == (root / "elsewhere" / "hpo" / "b")
    assert resolve_output_path(root, config_dir, "hpo", backbone="b", environ={}) == (
        root / "outputs" / "hpo" / "b"
    )


def test_renamed_category_folder_is_used(config_dir: Path) -> None:
    _edit_paths(config_dir, "  hpo: hpo\n", "  hpo: sweeps\n")
    root = config_dir.parent
    assert resolve_output_path(root, config_dir, "hpo", backbone="b") == (
        root / "outputs" / "sweeps" / "b"
    )


# --------------------------------------------------------------------------------------------
# Storage environments


@pytest.mark.parametrize("env", sorted(ENV_OUTPUTS))
def test_storage_env_override_applies(
    example_project: Path, monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.chdir(example_project)
    path = resolve_output_path(
        HERE,
        Path("config/"),
        "hpo",
        storage_env=env,
        backbone="distilbert",
        study_hash="abc123",
    )
    assert path == ENV_OUTPUTS[env] / "hpo" / "distilbert" / "study_abc123"
    assert not path.exists()


def test_local_storage_env_keeps_the_project_layout(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(example_project)
    assert resolve_output_path(
        HERE,
        Path("config"),
        "hpo",
        storage_env="local",
        backbone="distilbert",
    ) == Path("outputs/hpo/distilbert")


@pytest.mark.parametrize("env", sorted(ENV_OUTPUTS))
def test_category_dir_applies_overrides(config_dir: Path, env: str) -> None:
    paths = load_paths_config(config_dir)
    root = config_dir.parent
    assert category_dir(root, apply_env_overrides(paths, env), "conversion") == (
        ENV_OUTPUTS[env] / "conversion"
    )
    assert category_dir(root, load_paths_config(config_dir, env), "hpo") == (
        ENV_OUTPUTS[env] / "hpo"
    )
    assert outputs_root(root, load_paths_config(config_dir, env)) == ENV_OUTPUTS[env]
    # the unmodified config is unaffected (no shared mutable state)
    assert category_dir(root, paths, "hpo") == root / "outputs" / "hpo"


@pytest.mark.parametrize("env", sorted(ENV_OUTPUTS))
def test_cache_subcategory_follows_storage_env(config_dir: Path, env: str) -> None:
    _add_cache_section(config_dir)
    root = config_dir.parent
    assert resolve_output_path(root, config_dir, "cache", subcategory="runs") == (
        root / "outputs" / "cache" / "run_cache"
    )
    assert resolve_output_path(
        root, config_dir, "cache", subcategory="best_configurations", storage_env=env
    ) == (ENV_OUTPUTS[env] / "cache" / "best_configurations")


def test_outputs_override_of_an_env_is_merged(config_dir: Path) -> None:
    _edit_paths(
        config_dir,
        "  kaggle:\n    base:\n      outputs: /kaggle/working/outputs\n",
        "  kaggle:\n    base:\n      outputs: /kaggle/working/outputs\n"
        "    outputs:\n      hpo: kaggle_hpo\n",
    )
    root = config_dir.parent
    assert resolve_output_path(root, config_dir, "hpo", backbone="b", storage_env="kaggle") == (
        Path("/kaggle/working/outputs/kaggle_hpo/b")
    )
    # other categories and other envs keep their folder names
    assert resolve_output_path(root, config_dir, "conversion", storage_env="kaggle") == (
        Path("/kaggle/working/outputs/conversion")
    )
    assert resolve_output_path(root, config_dir, "hpo", backbone="b", storage_env="colab") == (
        Path("/content/outputs/hpo/b")
    )


@pytest.mark.parametrize("bad", ["azure", "aml", "google_colab"])
def test_alias_env_is_refused_with_the_right_spelling(config_dir: Path, bad: str) -> None:
    root = config_dir.parent
    before = _listing(root)
    with pytest.raises(PathError) as info:
        resolve_output_path(root, config_dir, "hpo", backbone="bert", storage_env=bad)
    message = str(info.value)
    assert f"{bad!r}" in message
    assert "did you mean" in message
    assert info.value.key == "storage_env"
    assert info.value.value == bad
    assert isinstance(info.value, ConfigError)
    assert _listing(root) == before


def test_azure_hint_names_azureml(config_dir: Path) -> None:
    with pytest.raises(PathError, match="did you mean 'azureml'"):
        resolve_output_path(config_dir.parent, config_dir, "hpo", backbone="b", storage_env="azure")
    with pytest.raises(PathError, match="did you mean 'azureml'"):
        load_paths_config(config_dir, "azure")
    with pytest.raises(PathError, match="did you mean 'azureml'"):
        apply_env_overrides(load_paths_config(config_dir), "azure")


def test_unknown_env_lists_the_known_ones(config_dir: Path) -> None:
    with pytest.raises(PathError) as info:
        resolve_output_path(config_dir.parent, config_dir, "hpo", backbone="b", storage_env="gcp")
    message = str(info.value)
    assert "did you mean" not in message
    for name in ("local", "colab", "kaggle", "azureml"):
        assert name in message


def test_env_without_override_section_keeps_base(config_dir: Path) -> None:
    _edit_paths(config_dir, "  azureml:\n    base:\n      outputs: /mnt/outputs\n", "")
    root = config_dir.parent
    assert resolve_output_path(root, config_dir, "hpo", backbone="b", storage_env="azureml") == (
        root / "outputs" / "hpo" / "b"
    )


# --------------------------------------------------------------------------------------------
# Unknown categories and placeholders (more refusals in test_validation.py)


def test_unknown_category_lists_known_ones(config_dir: Path) -> None:
    root = config_dir.parent
    with pytest.raises(PathError) as info:
        resolve_output_path(root, config_dir, "hpo_typo", backbone="b")
    message = str(info.value)
    assert "'hpo_typo'" in message
    for known in ("benchmarking", "cache", "conversion", "final_training", "hpo"):
        assert known in message


def test_unknown_category_in_category_dir(config_dir: Path) -> None:
    with pytest.raises(PathError, match="unknown output category 'nope'"):
        category_dir(config_dir.parent, load_paths_config(config_dir), "nope")


def test_subcategory_of_a_non_cache_category_is_refused(config_dir: Path) -> None:
    _add_cache_section(config_dir)
    with pytest.raises(PathError, match="only the 'cache' category has sub-categories"):
        category_dir(config_dir.parent, load_paths_config(config_dir), "hpo", "runs")


def test_unknown_cache_subcategory_lists_known_ones(config_dir: Path) -> None:
    _add_cache_section(config_dir)
    root = config_dir.parent
    before = _listing(root)
    with pytest.raises(PathError) as info:
        resolve_output_path(root, config_dir, "cache", subcategory="typo")
    message = str(info.value)
    assert "unknown cache sub-category 'typo'" in message
    assert "best_configurations" in message and "runs" in message
    assert _listing(root) == before


def test_unknown_cache_subcategory_without_cache_section(config_dir: Path) -> None:
    _edit_paths(config_dir, _EXAMPLE_CACHE, "")
    with pytest.raises(PathError, match=r"'cache' has: none"):
        resolve_output_path(config_dir.parent, config_dir, "cache", subcategory="anything")


def test_missing_paths_yaml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    with pytest.raises(ConfigError, match=r"paths\.yaml not found"):
        resolve_output_path(tmp_path, tmp_path / "config", "hpo", backbone="b")
