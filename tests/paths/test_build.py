"""build_output_path: the hash-based folder of every process type, from a NamingContext."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlinfra.errors import ConfigError, NamingError, PathError
from mlinfra.naming import NamingContext, create_naming_context
from mlinfra.paths import PROCESS_LAYOUTS, build_output_path, context_values, load_paths_config

#: The specification writes the project root as Path(".").
HERE = Path(".")  # noqa: PTH201

STUDY = "350a79aa" + "0" * 56
TRIAL = "747428f2" + "1" * 56
BENCH = "abcdef12" + "2" * 56
SPEC = "abc123de" + "3" * 56
EXEC = "fedcba98" + "4" * 56
CONV = "c0ffee00" + "5" * 56

ENV_OUTPUTS = {
    "local": None,
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


def _add_cache_section(config_dir: Path) -> None:
    """The example's cache section, reduced to the one sub-folder these tests need."""
    _edit_paths(
        config_dir,
        "  final_training: final_training\n  best_model_selection: best_model_selection\nfiles:\n",
        "files:\n",
    )


def _ctx(process_type: str, **fields: object) -> NamingContext:
    fields.setdefault("model", "distilbert")
    fields.setdefault("environment", "local")
    return create_naming_context(process_type, **fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Every process type


def test_hpo_study_folder_without_trial(example_project: Path) -> None:
    path = build_output_path(example_project, _ctx("hpo", study_key_hash=STUDY))
    assert path == example_project / "outputs/hpo/local/distilbert/study-350a79aa"


def test_hpo_trial_folder(example_project: Path) -> None:
    path = build_output_path(
        example_project, _ctx("hpo", study_key_hash=STUDY, trial_key_hash=TRIAL, trial_number=3)
    )
    assert path == example_project / "outputs/hpo/local/distilbert/study-350a79aa/trial-747428f2"


def test_hpo_refit_is_below_the_trial(example_project: Path) -> None:
    path = build_output_path(
        example_project, _ctx("hpo_refit", study_key_hash=STUDY, trial_key_hash=TRIAL)
    )
    assert path == (
        example_project / "outputs/hpo/local/distilbert/study-350a79aa/trial-747428f2/refit"
    )


def test_benchmarking_with_bench_hash(example_project: Path) -> None:
    path = build_output_path(
        example_project,
        _ctx(
            "benchmarking",
            study_key_hash=STUDY,
            trial_key_hash=TRIAL,
            benchmark_config_hash=BENCH,
        ),
    )
    assert path == example_project / (
        "outputs/benchmarking/local/distilbert/study-350a79aa/trial-747428f2/bench-abcdef12"
    )


def test_benchmarking_without_bench_hash_has_no_dangling_segment(example_project: Path) -> None:
    path = build_output_path(
        example_project, _ctx("benchmarking", study_key_hash=STUDY, trial_key_hash=TRIAL)
    )
    assert path == example_project / (
        "outputs/benchmarking/local/distilbert/study-350a79aa/trial-747428f2"
    )
    assert not any(part.startswith("bench-") for part in path.parts)
    assert not str(path).endswith("-")


def test_final_training(example_project: Path) -> None:
    path = build_output_path(
        example_project, _ctx("final_training", spec_fp=SPEC, exec_fp=EXEC, variant=2)
    )
    assert path == example_project / (
        "outputs/final_training/local/distilbert/spec-abc123de_exec-fedcba98/v2"
    )


def test_final_training_default_variant_is_one(example_project: Path) -> None:
    path = build_output_path(example_project, _ctx("final_training", spec_fp=SPEC, exec_fp=EXEC))
    assert path.name == "v1"


def test_conversion(example_project: Path) -> None:
    path = build_output_path(
        example_project, _ctx("conversion", spec_fp=SPEC, exec_fp=EXEC, conv_fp=CONV)
    )
    assert path == example_project / (
        "outputs/conversion/local/distilbert/spec-abc123de_exec-fedcba98/v1/conv-c0ffee00"
    )


def test_best_configurations_with_the_example_config(example_project: Path) -> None:
    path = build_output_path(example_project, _ctx("best_configurations", spec_fp=SPEC))
    assert path == example_project / "outputs/cache/best_configurations/distilbert/spec-abc123de"


def test_best_configurations_under_cache(config_dir: Path) -> None:
    _add_cache_section(config_dir)
    root = config_dir.parent
    path = build_output_path(root, _ctx("best_configurations", spec_fp=SPEC))
    assert path == root / "outputs/cache/best_configurations/distilbert/spec-abc123de"
    colab = build_output_path(root, _ctx("best_configurations", spec_fp=SPEC, environment="colab"))
    assert colab == Path("/content/outputs/cache/best_configurations/distilbert/spec-abc123de")


def test_every_process_type_has_a_layout() -> None:
    from mlinfra.naming import PROCESS_TYPES

    assert set(PROCESS_LAYOUTS) == set(PROCESS_TYPES)


def test_relative_root_gives_relative_path(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(example_project)
    path = build_output_path(HERE, _ctx("hpo", study_key_hash=STUDY, trial_key_hash=TRIAL))
    assert path == Path("outputs/hpo/local/distilbert/study-350a79aa/trial-747428f2")


# --------------------------------------------------------------------------------------------
# Hashes and model names


@pytest.mark.parametrize("length", [8, 16, 40, 64])
def test_hashes_are_shortened_to_eight(example_project: Path, length: int) -> None:
    study = ("0123456789abcdef" * 4)[:length]
    trial = ("fedcba9876543210" * 4)[:length]
    path = build_output_path(
        example_project, _ctx("hpo", study_key_hash=study, trial_key_hash=trial)
    )
    assert path.parts[-2:] == ("study-01234567", "trial-fedcba98")


def test_upper_case_hashes_are_lowered(example_project: Path) -> None:
    path = build_output_path(example_project, _ctx("hpo", study_key_hash=STUDY.upper()))
    assert path.name == "study-350a79aa"


def test_context_values_short_forms() -> None:
    ctx = _ctx("conversion", spec_fp=SPEC, exec_fp=EXEC, conv_fp=CONV, storage_env="kaggle")
    values = context_values(ctx)
    assert values["spec8"] == "abc123de"
    assert values["exec8"] == "fedcba98"
    assert values["conv8"] == "c0ffee00"
    assert values["spec_fp"] == SPEC
    assert values["storage_env"] == "kaggle"
    assert values["model"] == values["backbone"] == "distilbert"
    assert values["study8"] is None and values["trial8"] is None


def test_model_id_with_slash_becomes_one_folder(example_project: Path) -> None:
    path = build_output_path(
        example_project,
        _ctx("hpo", model="microsoft/deberta-v3-base", study_key_hash=STUDY),
    )
    assert path == example_project / "outputs/hpo/local/microsoft_deberta-v3-base/study-350a79aa"
    assert "microsoft" not in path.parts


# --------------------------------------------------------------------------------------------
# Storage environments


@pytest.mark.parametrize("env", ["colab", "kaggle", "azureml"])
def test_storage_env_from_context(example_project: Path, env: str) -> None:
    base = ENV_OUTPUTS[env]
    assert base is not None
    by_env = build_output_path(
        example_project, _ctx("hpo", environment=env, study_key_hash=STUDY, trial_key_hash=TRIAL)
    )
    assert by_env == base / f"hpo/{env}/distilbert/study-350a79aa/trial-747428f2"
    # storage_env separate from the execution platform
    stored = build_output_path(
        example_project,
        _ctx("final_training", environment="local", storage_env=env, spec_fp=SPEC, exec_fp=EXEC),
    )
    assert stored == base / f"final_training/{env}/distilbert/spec-abc123de_exec-fedcba98/v1"


def test_local_execution_with_local_storage_stays_in_project(example_project: Path) -> None:
    path = build_output_path(
        example_project,
        _ctx("conversion", environment="colab", storage_env="local", parent_training_id="p",
             spec_fp=SPEC, exec_fp=EXEC, conv_fp=CONV),
    )  # fmt: skip
    assert path.is_relative_to(example_project / "outputs" / "conversion" / "local")


def test_azure_is_refused_by_the_context() -> None:
    with pytest.raises(NamingError, match="did you mean 'azureml'"):
        _ctx("hpo", environment="azure", study_key_hash=STUDY)
    with pytest.raises(NamingError, match="did you mean 'azureml'"):
        _ctx("hpo", storage_env="azure", study_key_hash=STUDY)


def test_given_paths_config_and_config_dir(example_project: Path, tmp_path: Path) -> None:
    paths = load_paths_config(example_project / "config")
    elsewhere = tmp_path / "elsewhere"
    ctx = _ctx("hpo", study_key_hash=STUDY, environment="kaggle")
    assert build_output_path(elsewhere, ctx, paths=paths) == Path(
        "/kaggle/working/outputs/hpo/kaggle/distilbert/study-350a79aa"
    )
    local = _ctx("hpo", study_key_hash=STUDY)
    assert build_output_path(elsewhere, local, config_dir=example_project / "config") == (
        elsewhere / "outputs/hpo/local/distilbert/study-350a79aa"
    )
    # without config_dir, <root>/config is read and it does not exist there
    with pytest.raises(ConfigError, match=r"paths\.yaml not found"):
        build_output_path(elsewhere, local)


# --------------------------------------------------------------------------------------------
# Missing values and patterns


def test_missing_required_value_names_pattern_key_and_placeholder(example_project: Path) -> None:
    before = _listing(example_project)
    with pytest.raises(PathError) as info:
        build_output_path(example_project, _ctx("hpo"))
    err = info.value
    assert "patterns.hpo_v2" in str(err)
    assert "study8" in str(err)
    assert err.placeholder == "study8"
    assert err.pattern == "{storage_env}/{model}/study-{study8}[/trial-{trial8}]"
    assert _listing(example_project) == before


def test_conversion_with_parent_id_but_no_fingerprints(example_project: Path) -> None:
    ctx = _ctx("conversion", conv_fp=CONV, parent_training_id="run-1")
    with pytest.raises(PathError) as info:
        build_output_path(example_project, ctx)
    assert "patterns.conversion_v2" in str(info.value)
    assert "spec8" in str(info.value) and "exec8" in str(info.value)
    assert info.value.placeholder == "spec8"


def test_benchmarking_without_trial_is_refused_by_the_context() -> None:
    with pytest.raises(NamingError, match="trial_key_hash") as info:
        _ctx("benchmarking", study_key_hash=STUDY)
    assert info.value.key == "trial_key_hash"


def test_benchmarking_without_trial_hash_in_pattern_is_a_path_error(config_dir: Path) -> None:
    """A context built with trial_number only, against a pattern that needs trial8."""
    ctx = _ctx("hpo_refit", study_key_hash=STUDY, trial_number=2)
    _edit_paths(
        config_dir,
        'hpo_v2: "{storage_env}/{model}/study-{study8}[/trial-{trial8}]"',
        'hpo_v2: "{storage_env}/{model}/study-{study8}/trial-{trial8}"',
    )
    with pytest.raises(PathError) as info:
        build_output_path(config_dir.parent, ctx)
    assert info.value.placeholder == "trial8"
    assert "patterns.hpo_v2" in str(info.value)


@pytest.mark.parametrize(
    ("key", "process_type", "fields"),
    [
        ("hpo_v2", "hpo", {"study_key_hash": STUDY}),
        ("benchmarking_v2", "benchmarking", {"study_key_hash": STUDY, "trial_key_hash": TRIAL}),
        ("final_training_v2", "final_training", {"spec_fp": SPEC, "exec_fp": EXEC}),
        ("conversion_v2", "conversion", {"spec_fp": SPEC, "exec_fp": EXEC, "conv_fp": CONV}),
    ],
)
def test_missing_v2_pattern_is_a_path_error(
    config_dir: Path, key: str, process_type: str, fields: dict[str, object]
) -> None:
    text = (config_dir / "paths.yaml").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.strip().startswith(f"{key}:")]
    assert len(lines) == len(text.splitlines()) - 1
    (config_dir / "paths.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    root = config_dir.parent
    before = _listing(root)
    with pytest.raises(PathError) as info:
        build_output_path(root, _ctx(process_type, **fields))
    assert f"patterns.{key}" in str(info.value)
    assert info.value.key == key
    assert isinstance(info.value, ConfigError)
    assert _listing(root) == before


def test_unsafe_model_name_is_refused(example_project: Path) -> None:
    before = _listing(example_project)
    with pytest.raises(PathError) as info:
        build_output_path(example_project, _ctx("hpo", model="../../etc", study_key_hash=STUDY))
    assert info.value.placeholder == "model"
    assert info.value.value == "../../etc"
    assert "hpo_v2" in str(info.value) or "{storage_env}/{model}" in str(info.value)
    assert _listing(example_project) == before


def test_trial_folders_need_the_trial_key_hash(example_project: Path) -> None:
    ctx = create_naming_context(
        process_type="hpo",
        model="distilbert",
        environment="local",
        study_key_hash="350a79aa" * 8,
        trial_number=3,
    )
    with pytest.raises(PathError, match="every trial of study 350a79aa would share"):
        build_output_path(example_project, ctx)
    with pytest.raises(PathError, match="trial_key_hash"):
        build_output_path(example_project, ctx.with_(process_type="hpo_refit"))
    assert not (example_project / "outputs").exists()


def test_conversion_folder_from_parent_id_alone(example_project: Path) -> None:
    ctx = create_naming_context(
        process_type="conversion",
        model="distilbert",
        environment="local",
        parent_training_id="spec_abc123de_exec_fedcba98/v2",
        conv_fp="c0ffee12",
    )
    assert build_output_path(example_project, ctx) == (
        example_project
        / "outputs/conversion/local/distilbert/spec-abc123de_exec-fedcba98/v2/conv-c0ffee12"
    )
