"""parse_output_path: folders back to their components, for every layout and storage env."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlinfra.core.names import component_problem, normalize_value
from mlinfra.core.platforms import PLATFORMS
from mlinfra.naming import create_naming_context
from mlinfra.paths import (
    ParsedOutputPath,
    build_output_path,
    load_paths_config,
    parse_output_path,
    resolve_output_path,
)

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "resume_ner" / "config"
STUDY = "350a79aa" + "0" * 56
TRIAL = "747428f2" + "1" * 56
SPEC = "abc123de" + "3" * 56
EXEC = "fedcba98" + "4" * 56
CONV = "c0ffee00" + "5" * 56
BENCH = "abcdef12" + "2" * 56

_PATHS = load_paths_config(EXAMPLE_CONFIG)
_ROOT = Path("/nonexistent-mlinfra-root/project")


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# --------------------------------------------------------------------------------------------
# Examples


def test_parse_hpo_trial_folder() -> None:
    parsed = parse_output_path(
        _ROOT / "outputs/hpo/local/distilbert/study-350a79aa/trial-747428f2",
        _PATHS,
        root_dir=_ROOT,
    )
    assert parsed == ParsedOutputPath(
        "hpo",
        "hpo",
        {"storage_env": "local", "model": "distilbert", "study8": "350a79aa", "trial8": "747428f2"},
    )


def test_parse_hpo_study_folder_has_no_trial() -> None:
    parsed = parse_output_path(
        _ROOT / "outputs/hpo/local/distilbert/study-350a79aa", _PATHS, root_dir=_ROOT
    )
    assert parsed is not None
    assert parsed.kind == "hpo"
    assert "trial8" not in parsed.components


def test_parse_refit_folder() -> None:
    parsed = parse_output_path(
        _ROOT / "outputs/hpo/local/distilbert/study-350a79aa/trial-747428f2/refit",
        _PATHS,
        root_dir=_ROOT,
    )
    assert parsed is not None
    assert parsed.kind == "hpo_refit"
    assert parsed.category == "hpo"
    assert parsed.components["trial8"] == "747428f2"


def test_parse_benchmark_folders_with_and_without_bench() -> None:
    colab = Path("/content/outputs/benchmarking/colab/distilbert/study-350a79aa/trial-747428f2")
    without = parse_output_path(colab, _PATHS, root_dir=_ROOT)
    assert without is not None and without.kind == "benchmarking"
    assert "bench8" not in without.components
    with_bench = parse_output_path(colab / "bench-abcdef12", _PATHS, root_dir=_ROOT)
    assert with_bench is not None
    assert with_bench.components["bench8"] == "abcdef12"
    assert with_bench.components["storage_env"] == "colab"


def test_parse_relative_folder_against_working_directory(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(example_project)
    before = _listing(example_project)
    paths = load_paths_config("config")
    parsed = parse_output_path("outputs/hpo/distilbert/study_abc123", paths)
    assert parsed == ParsedOutputPath(
        "category", "hpo", {"backbone": "distilbert", "study_hash": "abc123"}
    )
    assert parse_output_path(Path("outputs/hpo/distilbert"), paths) == ParsedOutputPath(
        "category", "hpo", {"backbone": "distilbert"}
    )
    assert _listing(example_project) == before
    assert not (example_project / "outputs").exists()


@pytest.mark.parametrize(
    ("env", "base"),
    [
        ("colab", "/content/outputs"),
        ("kaggle", "/kaggle/working/outputs"),
        ("azureml", "/mnt/outputs"),
    ],
)
def test_parse_recognises_folders_of_every_env(env: str, base: str) -> None:
    v2 = parse_output_path(
        f"{base}/final_training/{env}/distilbert/spec-abc123de_exec-fedcba98/v3",
        _PATHS,
        root_dir=_ROOT,
    )
    assert v2 == ParsedOutputPath(
        "final_training",
        "final_training",
        {
            "storage_env": env,
            "model": "distilbert",
            "spec8": "abc123de",
            "exec8": "fedcba98",
            "variant": "3",
        },
    )
    category = parse_output_path(f"{base}/hpo/bert/study_x1", _PATHS, root_dir=_ROOT)
    assert category == ParsedOutputPath("category", "hpo", {"backbone": "bert", "study_hash": "x1"})


@pytest.mark.parametrize(
    "path",
    [
        "outputs/hpo/local/distilbert/study-350A79AA/trial-747428f2",  # upper-case hash
        "outputs/hpo/local/distilbert/study-350a79a/trial-747428f2",  # 7 characters
        "outputs/hpo/azure/distilbert/study-350a79aa",  # not a storage env
        "outputs/hpo/local/distilbert/study-350a79aa/trial-747428f2/extra",
        "outputs/benchmarking/local/distilbert/study-350a79aa/trial-747428f2/bench-",
        "outputs/final_training/local/distilbert/spec-abc123de_exec-fedcba98/vx",
        "outputs/unknown/x",
        "outputs",
        "elsewhere/hpo/distilbert",
        "outputs/hpo/distilbert/study_abc/more",
    ],
)
def test_parse_returns_none_for_foreign_folders(path: str) -> None:
    assert parse_output_path(_ROOT / path, _PATHS, root_dir=_ROOT) is None


def test_parse_windows_separators_are_not_recognised_as_folders() -> None:
    text = str(_ROOT) + "/outputs/hpo\\local\\distilbert\\study-350a79aa"
    parsed = parse_output_path(text, _PATHS, root_dir=_ROOT)
    # one folder named "local\distilbert\study-350a79aa" below hpo, never the v2 layout
    assert parsed is None or parsed.kind == "category"


# --------------------------------------------------------------------------------------------
# Properties: render, then parse, gives the components back

HEX8 = st.text(alphabet="0123456789abcdef", min_size=8, max_size=8)
HEX64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
HASH = HEX8 | HEX64
MODEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789-_./", min_size=1).filter(
    lambda s: s.strip(".") != "" and ".." not in s.split("/") and not s.startswith("/")
)


def _model_folder(model: str) -> str:
    rules = _PATHS.normalize_paths
    return normalize_value(model, replace=rules.replace, lowercase=rules.lowercase)


@settings(deadline=None)
@given(
    env=st.sampled_from(PLATFORMS),
    model=MODEL,
    study=HASH,
    trial=st.none() | HASH,
    refit=st.booleans(),
)
def test_hpo_build_then_parse(
    env: str, model: str, study: str, trial: str | None, refit: bool
) -> None:
    assume(component_problem(_model_folder(model)) is None)
    if refit:
        assume(trial is not None)
    ctx = create_naming_context(
        "hpo_refit" if refit else "hpo",
        model=model,
        environment=env,
        study_key_hash=study,
        trial_key_hash=trial,
    )
    folder = build_output_path(_ROOT, ctx, paths=_PATHS)
    parsed = parse_output_path(folder, _PATHS, root_dir=_ROOT)
    assert parsed is not None, folder
    assert parsed.kind == ("hpo_refit" if refit else "hpo")
    assert parsed.category == "hpo"
    expected = {"storage_env": env, "model": _model_folder(model), "study8": study[:8]}
    if trial is not None:
        expected["trial8"] = trial[:8]
    assert parsed.components == expected


@settings(deadline=None)
@given(
    kind=st.sampled_from(["benchmarking", "final_training", "conversion"]),
    env=st.sampled_from(PLATFORMS),
    storage=st.none() | st.sampled_from(PLATFORMS),
    model=MODEL,
    a=HASH,
    b=HASH,
    c=st.none() | HASH,
    variant=st.integers(min_value=1, max_value=10_000),
)
def test_other_layouts_build_then_parse(
    kind: str,
    env: str,
    storage: str | None,
    model: str,
    a: str,
    b: str,
    c: str | None,
    variant: int,
) -> None:
    assume(component_problem(_model_folder(model)) is None)
    where = storage or env
    expected: dict[str, str] = {"storage_env": where, "model": _model_folder(model)}
    if kind == "benchmarking":
        fields: dict[str, object] = {
            "study_key_hash": a,
            "trial_key_hash": b,
            "benchmark_config_hash": c,
        }
        expected |= {"study8": a[:8], "trial8": b[:8]}
        if c is not None:
            expected["bench8"] = c[:8]
    else:
        fields = {"spec_fp": a, "exec_fp": b, "variant": variant}
        expected |= {"spec8": a[:8], "exec8": b[:8], "variant": str(variant)}
        if kind == "conversion":
            fields["conv_fp"] = c or a
            expected["conv8"] = (c or a)[:8]
    ctx = create_naming_context(
        kind,
        model=model,
        environment=env,
        storage_env=storage,
        **fields,  # type: ignore[arg-type]
    )
    folder = build_output_path(_ROOT, ctx, paths=_PATHS)
    parsed = parse_output_path(folder, _PATHS, root_dir=_ROOT)
    assert parsed is not None, folder
    assert parsed.kind == kind
    assert parsed.category == kind
    assert parsed.components == expected


@settings(deadline=None)
@given(
    env=st.sampled_from(PLATFORMS),
    backbone=MODEL,
    study_hash=st.none() | HEX8 | HEX64 | st.text(alphabet="abcxyz0123456789_-", min_size=1),
)
def test_category_resolve_then_parse(env: str, backbone: str, study_hash: str | None) -> None:
    assume(component_problem(_model_folder(backbone)) is None)
    folder = resolve_output_path(
        _ROOT, EXAMPLE_CONFIG, "hpo", paths=_PATHS, storage_env=env,
        backbone=backbone, study_hash=study_hash,
    )  # fmt: skip
    parsed = parse_output_path(folder, _PATHS, root_dir=_ROOT)
    assert parsed is not None, folder
    assert parsed.kind == "category"
    assert parsed.category == "hpo"
    expected = {"backbone": _model_folder(backbone)}
    if study_hash is not None:
        expected["study_hash"] = study_hash
    assert parsed.components == expected


def test_a_storage_env_segment_must_match_its_outputs_root(example_project: Path) -> None:
    paths = load_paths_config(example_project / "config")
    foreign = example_project / "outputs/hpo/colab/distilbert/study-350a79aa"
    assert parse_output_path(foreign, paths, root_dir=example_project) is None
    local = example_project / "outputs/hpo/local/distilbert/study-350a79aa"
    found = parse_output_path(local, paths, root_dir=example_project)
    assert found is not None and found.components["storage_env"] == "local"
