"""Run names from naming.yaml: the specification's example, the reference's verified names,
every component rule, the limits, and property tests for arbitrary model and study names."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra.config import NamingConfig
from mlinfra.errors import ConfigError, NamingError
from mlinfra.naming import (
    NamingContext,
    build_mlflow_run_name,
    build_parent_training_id,
    create_naming_context,
    naming_key_for,
    parse_parent_training_id,
    sanitize_semantic_suffix,
    validate_run_name,
)
from mlinfra.naming.display_policy import format_run_name, load_naming_policy

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "resume_ner" / "config"
POLICY = load_naming_policy(EXAMPLE_CONFIG, environ={})
STUDY = "350a79aa" + "0" * 56
TRIAL = "747428f2" + "1" * 56


def _ctx(process_type: str = "hpo", **fields: Any) -> NamingContext:
    fields.setdefault("model", "distilbert")
    fields.setdefault("environment", "local")
    return create_naming_context(process_type, **fields)


def _policy(run_names: dict[str, Any], **extra: Any) -> NamingConfig:
    return NamingConfig.model_validate({"run_names": run_names, **extra})


def test_the_specification_example(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(example_project)
    naming_context = create_naming_context(
        backbone="distilbert", stage="hpo", study_hash="abc123", environment="local"
    )
    policy = load_naming_policy(config_dir=Path("config/"))
    run_name = format_run_name(context=naming_context, policy=policy)
    assert run_name == "local_distilbert_hpo_study-abc123"


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (
            _ctx(study_key_hash=STUDY, trial_number=3),
            "local_distilbert_hpo_trial_study-350a79aa_t03",
        ),
        (
            _ctx(study_key_hash=STUDY, trial_number=3, fold_idx=1),
            "local_distilbert_hpo_trial_study-350a79aa_t03_fold1",
        ),
        (
            _ctx("hpo_refit", study_key_hash=STUDY, trial_key_hash=TRIAL, trial_number=3),
            "local_distilbert_hpo_refit_study-350a79aa_trial-747428f2_t03",
        ),
        (_ctx(study_key_hash=STUDY), "local_distilbert_hpo_study-350a79aa"),
        (
            _ctx(study_key_hash=STUDY, study_name="hpo_distilbert_smoke test/v3"),
            "local_distilbert_hpo_study-350a79aa_hpo_distilbert_smoketest-v3",
        ),
        (
            _ctx(
                "final_training",
                model="distilbert-base-uncased",
                spec_fp="abc123de" + "9" * 8,
                exec_fp="0123abcd" + "8" * 8,
                variant=2,
                environment="colab",
            ),
            "colab_distilbert_base_uncased_final_training_spec-abc123de_exec-0123abcd_v2",
        ),
        (
            _ctx(
                "benchmarking",
                study_key_hash=STUDY,
                trial_key_hash=TRIAL,
                benchmark_config_hash="abcdef12" + "3" * 8,
            ),
            "local_distilbert_benchmark_study-350a79aa_trial-747428f2_bench-abcdef12",
        ),
        (
            _ctx(
                "conversion",
                parent_training_id="spec_81710c33aaaa_exec_30fd8453bbbb/v1",
                conv_fp="c0ffee12" + "4" * 8,
            ),
            "local_distilbert_conversion_spec-81710c33_exec-30fd8453_v1_conv-c0ffee12",
        ),
    ],
    ids=["trial", "fold", "refit", "sweep", "sweep-suffix", "final", "benchmark", "conversion"],
)
def test_the_reference_examples(context: NamingContext, expected: str) -> None:
    assert format_run_name(context, POLICY) == expected


def test_env_is_the_storage_environment() -> None:
    ctx = _ctx(study_key_hash=STUDY, environment="colab", storage_env="local")
    assert format_run_name(ctx, POLICY).startswith("local_distilbert_")


def test_conversion_parent_ids_with_dashes_and_without_variant() -> None:
    dashed = _ctx(
        "conversion", parent_training_id="spec-81710c33-exec-30fd8453/v4", conv_fp="c0ffee12"
    )
    assert format_run_name(dashed, POLICY).endswith("spec-81710c33_exec-30fd8453_v4_conv-c0ffee12")
    bare = _ctx("conversion", parent_training_id="spec_81710c33_exec_30fd8453", conv_fp="c0ffee12")
    assert "_v1_conv-" in format_run_name(bare, POLICY)


def test_conversion_prefers_the_context_fingerprints() -> None:
    ctx = _ctx(
        "conversion",
        spec_fp="11111111",
        exec_fp="22222222",
        variant=5,
        parent_training_id="run-7",
        conv_fp="c0ffee12",
    )
    assert "spec-11111111_exec-22222222_v5_conv-c0ffee12" in format_run_name(ctx, POLICY)


def test_conversion_with_an_unparseable_parent_id_says_what_to_give() -> None:
    ctx = _ctx("conversion", parent_training_id="run-7", conv_fp="c0ffee12")
    with pytest.raises(NamingError, match=r"spec_<hex>_exec_<hex>/v<n>.*give spec_fp and exec_fp"):
        format_run_name(ctx, POLICY)


@pytest.mark.parametrize(
    ("context", "key"),
    [
        (_ctx(), "hpo_sweep"),
        (_ctx(stage="hpo_sweep"), "hpo_sweep"),
        (_ctx(trial_number=1), "hpo_trial"),
        (_ctx(trial_id="t1"), "hpo_trial"),
        (_ctx(trial_number=1, fold_idx=2), "hpo_trial_fold"),
        (_ctx("hpo_refit", study_key_hash=STUDY, trial_number=1), "hpo_refit"),
        (_ctx("best_configurations", spec_fp="abcdef12"), "best_configurations"),
    ],
)
def test_naming_key_for(context: NamingContext, key: str) -> None:
    assert naming_key_for(context) == key


def test_version_suffix() -> None:
    ctx = _ctx(study_key_hash=STUDY)
    assert build_mlflow_run_name(ctx, policy=POLICY, version=3) == (
        "local_distilbert_hpo_study-350a79aa_3"
    )
    assert build_mlflow_run_name(ctx, policy=POLICY) == "local_distilbert_hpo_study-350a79aa"
    dotted = POLICY.model_copy(
        update={"version": POLICY.version.model_copy(update={"separator": "."})}
    )
    assert format_run_name(ctx, dotted, version=12).endswith("study-350a79aa.12")


@pytest.mark.parametrize("version", [0, -1, True])
def test_bad_versions_are_refused(version: int) -> None:
    with pytest.raises(NamingError, match="version must be an integer of at least 1"):
        format_run_name(_ctx(study_key_hash=STUDY), POLICY, version=version)


def test_a_pattern_without_version_refuses_one() -> None:
    ctx = _ctx(study_key_hash=STUDY, trial_number=3, fold_idx=1)
    with pytest.raises(NamingError, match=r"hpo_trial_fold has no \{version\} placeholder"):
        format_run_name(ctx, POLICY, version=2)


def test_key_override_and_unknown_keys() -> None:
    ctx = _ctx(study_key_hash=STUDY, trial_number=3)
    assert format_run_name(ctx, POLICY, key="hpo_sweep") == "local_distilbert_hpo_study-350a79aa"
    with pytest.raises(NamingError, match=r"no run_names.nope pattern.*available: benchmarking"):
        format_run_name(ctx, POLICY, key="nope")
    best = _ctx("best_configurations", spec_fp="abcdef12")
    assert format_run_name(best, POLICY) == "local_distilbert_best_config_spec-abcdef12"
    without = POLICY.model_copy(
        update={
            "run_names": {k: v for k, v in POLICY.run_names.items() if k != "best_configurations"}
        }
    )
    with pytest.raises(NamingError, match=r"run_names.best_configurations") as info:
        format_run_name(best, without)
    assert "hpo_trial_fold" in str(info.value)


def test_a_missing_value_names_the_placeholder_pattern_and_field() -> None:
    with pytest.raises(NamingError) as info:
        format_run_name(_ctx(), POLICY)
    message = str(info.value)
    assert "{study_hash}" in message
    assert "'{env}_{model}_hpo_study-{study_hash}{semantic_suffix}{version}'" in message
    assert "'study_key_hash'" in message
    assert "unknown" not in message
    assert info.value.key == "study_key_hash"


def test_policy_from_config_dir_and_neither(config_dir: Path) -> None:
    ctx = _ctx(study_key_hash=STUDY)
    assert format_run_name(ctx, config_dir=config_dir) == "local_distilbert_hpo_study-350a79aa"
    with pytest.raises(NamingError, match="give the naming policy"):
        format_run_name(ctx)


def test_components_default_format_pad_length_and_disabled() -> None:
    policy = _policy(
        {
            "hpo_trial": {
                "pattern": (
                    "{model}-{stage}-{trial_number}-{study_hash}-{trial_hash}{semantic_suffix}"
                ),
                "components": {
                    "stage": {"default": "nostage"},
                    "trial_number": {"zero_pad": 4, "format": "n{number}"},
                    "study_hash": {"length": 4},
                    "trial_hash": {"source": "study_key_hash", "max_length": 2},
                    "semantic_suffix": {"enabled": False},
                },
            }
        }
    )
    ctx = _ctx(study_key_hash=STUDY, trial_number=7, study_name="ignored")
    assert format_run_name(ctx, policy) == "distilbert-nostage-n0007-350a-35"


def test_implicit_tokens_and_optional_segments() -> None:
    policy = _policy(
        {"hpo_trial": {"pattern": "{model}_t{trial_number}[_s{study8}][_f{fold_idx}]"}}
    )
    assert format_run_name(_ctx(trial_number=2), policy) == "distilbert_t2"
    assert format_run_name(_ctx(trial_number=2, study_key_hash=STUDY), policy) == (
        "distilbert_t2_s350a79aa"
    )


def test_an_unknown_source_lists_the_context_fields() -> None:
    policy = _policy(
        {
            "hpo_sweep": {
                "pattern": "{model}_{study_hash}",
                "components": {"study_hash": {"source": "nope"}},
            }
        }
    )
    with pytest.raises(NamingError, match=r"source 'nope'.*study_key_hash"):
        format_run_name(_ctx(study_key_hash=STUDY), policy)


def test_a_bad_component_format_is_named() -> None:
    policy = _policy(
        {
            "hpo_trial": {
                "pattern": "{trial_number}",
                "components": {"trial_number": {"format": "{n}"}},
            }
        }
    )
    with pytest.raises(NamingError, match=r"components.trial_number.format"):
        format_run_name(_ctx(trial_number=1), policy)


def test_normalisation_can_lower_case() -> None:
    policy = _policy(
        {"hpo_sweep": {"pattern": "{env}_{model}"}},
        normalize={"model": {"replace": {"/": "-"}, "lowercase": True}},
    )
    ctx = _ctx(model="Microsoft/DeBERTa-v3", environment="kaggle")
    assert format_run_name(ctx, policy) == "kaggle_microsoft-deberta-v3"


def test_validate_run_name_limits() -> None:
    assert validate_run_name("local_a", POLICY) == "local_a"
    with pytest.raises(NamingError, match="is 251 characters long, over the limit of 250"):
        validate_run_name("a" * 251, POLICY)
    with pytest.raises(NamingError, match="forbidden character ':'"):
        validate_run_name("a:b", POLICY)
    with pytest.raises(NamingError, match="control character"):
        validate_run_name("a\nb", POLICY)
    with pytest.raises(NamingError, match="empty"):
        validate_run_name("", POLICY)
    tight = POLICY.model_copy(
        update={"validation": POLICY.validation.model_copy(update={"max_length": 20})}
    )
    with pytest.raises(NamingError, match="over the limit of 20"):
        format_run_name(_ctx(study_key_hash=STUDY), tight)


def test_long_names_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mlinfra.naming.display_policy"):
        validate_run_name("a" * 200, POLICY)
    assert "200 characters long" in caplog.text


def test_a_forbidden_character_from_the_model_is_refused() -> None:
    with pytest.raises(NamingError, match="forbidden character '\\*'"):
        format_run_name(_ctx(model="bert*", study_key_hash=STUDY), POLICY)


@pytest.mark.parametrize(
    ("name", "max_length", "expected"),
    [
        ("hpo_distilbert_smoke test/v3", 30, "_hpo_distilbert_smoketest-v3"),
        ("abc", 2, "_ab"),
        ("", 30, ""),
        (None, 30, ""),
        ("!!!", 30, ""),
        ("é/ü", 30, "_-"),
    ],
)
def test_sanitize_semantic_suffix(name: str | None, max_length: int, expected: str) -> None:
    assert sanitize_semantic_suffix(name, max_length) == expected


def test_semantic_suffix_max_length_comes_from_the_component() -> None:
    ctx = _ctx(study_key_hash=STUDY, study_name="x" * 100)
    assert format_run_name(ctx, POLICY) == "local_distilbert_hpo_study-350a79aa_" + "x" * 30


def test_parent_training_ids_round_trip() -> None:
    text = build_parent_training_id("ABCDEF12", "12345678", 3)
    assert text == "spec_abcdef12_exec_12345678/v3"
    assert parse_parent_training_id(text) == ("abcdef12", "12345678", 3)
    assert parse_parent_training_id("spec-abcdef12-exec-12345678") == ("abcdef12", "12345678", 1)


@pytest.mark.parametrize(
    "text", ["run-7", "spec_abcdef12_exec_12345678/v0", "spec_xyz12345_exec_12345678/v1", ""]
)
def test_bad_parent_training_ids(text: str) -> None:
    with pytest.raises(NamingError) as info:
        parse_parent_training_id(text)
    assert info.value.key == "parent_training_id"


@pytest.mark.parametrize(
    ("args", "key"), [(("xyz", "12345678"), "spec_fp"), (("abcdef12", "12345678", 0), "variant")]
)
def test_build_parent_training_id_checks_its_parts(args: tuple[Any, ...], key: str) -> None:
    with pytest.raises(NamingError) as info:
        build_parent_training_id(*args)
    assert info.value.key == key


def test_load_naming_policy_refuses_a_missing_or_invalid_file(config_dir: Path) -> None:
    path = config_dir / "naming.yaml"
    text = path.read_text()
    path.write_text(text.replace("max_length: 250", "max_length: 900"))
    with pytest.raises(ConfigError, match=r"naming.yaml"):
        load_naming_policy(config_dir)
    path.unlink()
    with pytest.raises(ConfigError, match=r"naming.yaml not found"):
        load_naming_policy(config_dir)


def test_load_naming_policy_reads_the_file_every_time(config_dir: Path) -> None:
    assert load_naming_policy(config_dir).version.separator == "_"
    path = config_dir / "naming.yaml"
    path.write_text(path.read_text().replace('separator: "_"', 'separator: "."'))
    assert load_naming_policy(config_dir).version.separator == "."
    other = config_dir.parent / "other"
    other.mkdir()
    (other / "naming.yaml").write_text("run_names:\n  hpo_sweep: {pattern: '{model}'}\n")
    assert set(load_naming_policy(other).run_names) == {"hpo_sweep"}


# ---------------------------------------------------------------------------------------------
# properties


def _assert_fits(name: str) -> None:
    assert 0 < len(name) <= POLICY.validation.max_length <= 250
    for char in POLICY.validation.forbidden_chars:
        assert char not in name


@settings(deadline=None)
@given(model=st.text(min_size=1, max_size=300), study_name=st.none() | st.text(max_size=300))
def test_any_model_and_study_name_give_a_valid_name_or_an_error(
    model: str, study_name: str | None
) -> None:
    try:
        ctx = _ctx(model=model, study_key_hash=STUDY, study_name=study_name)
        name = format_run_name(ctx, POLICY, version=7)
    except NamingError:
        return
    _assert_fits(name)
    assert name.endswith("_7")


@settings(deadline=None)
@given(
    model=st.text(alphabet=st.characters(codec="ascii"), min_size=1, max_size=260),
    trial_number=st.integers(min_value=0, max_value=10**6),
    fold=st.none() | st.integers(min_value=0, max_value=99),
)
def test_trial_names_fit_or_fail(model: str, trial_number: int, fold: int | None) -> None:
    try:
        ctx = _ctx(model=model, study_key_hash=STUDY, trial_number=trial_number, fold_idx=fold)
        name = format_run_name(ctx, POLICY)
    except NamingError as exc:
        assert "run name" in str(exc) or "model" in str(exc)
        return
    _assert_fits(name)


@settings(deadline=None)
@given(name=st.none() | st.text(max_size=200), max_length=st.integers(min_value=1, max_value=60))
def test_semantic_suffixes_are_short_and_safe(name: str | None, max_length: int) -> None:
    suffix = sanitize_semantic_suffix(name, max_length)
    assert suffix == "" or (suffix[0] == "_" and len(suffix) <= max_length + 1)
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in suffix)


def test_load_naming_policy_finds_the_project(
    example_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLINFRA_PROJECT_ROOT", raising=False)
    monkeypatch.chdir(example_project / "config" / "hpo")
    assert "hpo_trial" in load_naming_policy().run_names
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ConfigError, match="no mlinfra project"):
        load_naming_policy()
    env = {"MLINFRA_PROJECT_ROOT": str(example_project)}
    assert "hpo_sweep" in load_naming_policy(environ=env).run_names
