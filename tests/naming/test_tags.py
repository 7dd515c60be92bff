"""Tag keys from tags.yaml, tag value sanitising, and the identity tags of a run."""

from __future__ import annotations

import getpass
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra.errors import ConfigError, NamingError
from mlinfra.naming import (
    NamingContext,
    TagKeyError,
    TagsRegistry,
    build_mlflow_run_key_hash,
    build_mlflow_tags,
    create_naming_context,
    load_tags_registry,
    sanitize_tag_value,
)

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "resume_ner" / "config"
REGISTRY = load_tags_registry(EXAMPLE_CONFIG, environ={})
STUDY = "350a79aa" + "0" * 56
TRIAL = "747428f2" + "1" * 56


def _ctx(process_type: str = "hpo", **fields: Any) -> NamingContext:
    fields.setdefault("model", "distilbert")
    fields.setdefault("environment", "local")
    return create_naming_context(process_type, **fields)


def test_registry_from_the_example() -> None:
    assert REGISTRY.key("grouping", "study_key_hash") == "code.study_key_hash"
    assert REGISTRY.key("process", "stage") == "code.stage"
    assert REGISTRY.has("paths", "output_dir")
    assert not REGISTRY.has("paths", "nope")
    assert not REGISTRY.has("nope", "nope")
    assert REGISTRY.schema_version == 1


def test_unknown_name_lists_the_section() -> None:
    with pytest.raises(TagKeyError) as info:
        REGISTRY.key("grouping", "study_hash")
    error = info.value
    assert isinstance(error, KeyError) and isinstance(error, NamingError)
    assert (error.section, error.name, error.key) == (
        "grouping",
        "study_hash",
        "grouping.study_hash",
    )
    assert str(error).startswith("key 'grouping.study_hash': tags.yaml section 'grouping'")
    assert "run_key_hash" in str(error) and "study_key_hash" in str(error)


def test_unknown_section_lists_the_sections() -> None:
    with pytest.raises(TagKeyError, match="no section 'grpuing'; sections: fingerprint, grouping"):
        REGISTRY.key("grpuing", "study_key_hash")


def test_tag_key_errors_pickle() -> None:
    with pytest.raises(TagKeyError) as info:
        REGISTRY.key("grouping", "nope")
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is TagKeyError
    assert (str(again), again.section, again.name) == (str(info.value), "grouping", "nope")


def test_registries_are_read_only_and_hashable() -> None:
    registry = TagsRegistry({"a": {"b": "c"}})
    assert hash(registry) == hash(TagsRegistry({"a": {"b": "c"}}))
    assert registry == TagsRegistry({"a": {"b": "c"}})
    with pytest.raises(NamingError, match="tags section 'a' must map names"):
        TagsRegistry({"a": "b"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        registry.sections["a"]["b"] = "d"  # type: ignore[index]
    with pytest.raises(AttributeError):
        registry.schema_version = 2  # type: ignore[misc]


def test_load_tags_registry_refuses_a_missing_or_invalid_file(config_dir: Path) -> None:
    path = config_dir / "tags.yaml"
    path.write_text("grouping:\n  study_key_hash: 'bad key!'\n")
    with pytest.raises(ConfigError, match=r"tags\.yaml"):
        load_tags_registry(config_dir)
    path.unlink()
    with pytest.raises(ConfigError, match=r"tags\.yaml not found"):
        load_tags_registry(config_dir)


def test_load_tags_registry_reads_the_file_every_time(config_dir: Path) -> None:
    assert load_tags_registry(config_dir).key("process", "stage") == "code.stage"
    path = config_dir / "tags.yaml"
    path.write_text(path.read_text().replace("stage: code.stage", "stage: my.stage"))
    assert load_tags_registry(config_dir).key("process", "stage") == "my.stage"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        ("  padded  ", "padded"),
        ("a\x00b\x1bc", "abc"),
        ("line\nnext\ttab", "line\nnext\ttab"),
        (Path("out/dir"), "out/dir"),
    ],
)
def test_sanitize_tag_value(value: object, expected: str) -> None:
    assert sanitize_tag_value(value) == expected


def test_sanitize_tag_value_truncates_with_an_ellipsis() -> None:
    assert sanitize_tag_value("x" * 10, max_length=8) == "xxxxx..."
    assert sanitize_tag_value("x" * 8, max_length=8) == "x" * 8
    assert sanitize_tag_value("abcdef", max_length=2) == "ab"
    with pytest.raises(NamingError, match="max_length must be at least 1"):
        sanitize_tag_value("x", max_length=0)


@settings(deadline=None)
@given(value=st.text(max_size=300), max_length=st.integers(min_value=1, max_value=120))
def test_sanitized_values_fit(value: str, max_length: int) -> None:
    text = sanitize_tag_value(value, max_length)
    assert len(text) <= max_length
    assert "\x00" not in text


def test_tags_of_an_hpo_trial() -> None:
    ctx = _ctx(study_key_hash=STUDY, trial_key_hash=TRIAL, trial_number=3, environment="colab")
    tags = build_mlflow_tags(
        ctx,
        registry=REGISTRY,
        project_name="resume-ner",
        output_dir=Path("outputs/hpo/x"),
        parent_run_id="parent123",
        created_by="alice",
    )
    assert tags == {
        "code.stage": "hpo",
        "code.model": "distilbert",
        "code.storage_env": "colab",
        "code.execution_platform": "colab",
        "code.project": "resume-ner",
        "code.created_by": "alice",
        "code.run_type": "trial",
        "code.run_key_hash": build_mlflow_run_key_hash(ctx),
        "code.study_key_hash": STUDY,
        "code.trial_key_hash": TRIAL,
        "code.hpo.trial_number": "3",
        "code.output_dir": "outputs/hpo/x",
        "code.parent_run_id": "parent123",
    }


def test_tags_of_a_final_training() -> None:
    ctx = _ctx("final_training", spec_fp="abcdef12", exec_fp="12345678", storage_env="local")
    tags = build_mlflow_tags(ctx, registry=REGISTRY, project_name="p", created_by="bob")
    assert tags["code.spec_fp"] == "abcdef12" and tags["code.exec_fp"] == "12345678"
    assert tags["code.stage"] == "final_training"
    assert "code.run_type" not in tags and "code.hpo.trial_number" not in tags


def test_a_refit_is_tagged_as_such() -> None:
    ctx = _ctx("hpo_refit", study_key_hash=STUDY, trial_number=2)
    tags = build_mlflow_tags(ctx, registry=REGISTRY, project_name="p", created_by="c")
    assert tags["code.stage"] == "hpo_refit" and tags["code.run_type"] == "refit"


def test_a_sweep_without_study_key_has_no_run_key_hash() -> None:
    tags = build_mlflow_tags(_ctx(), registry=REGISTRY, project_name="p", created_by="c")
    assert "code.run_key_hash" not in tags and "code.study_key_hash" not in tags
    given = build_mlflow_tags(
        _ctx(),
        registry=REGISTRY,
        project_name="p",
        created_by="c",
        study_key_hash=STUDY,
        run_key_hash="ab" * 32,
    )
    assert given["code.study_key_hash"] == STUDY and given["code.run_key_hash"] == "ab" * 32


def test_given_hashes_must_agree_with_the_context() -> None:
    ctx = _ctx(study_key_hash=STUDY)
    with pytest.raises(NamingError, match="disagrees") as info:
        build_mlflow_tags(
            ctx, registry=REGISTRY, project_name="p", created_by="c", study_key_hash="ab" * 32
        )
    assert info.value.key == "study_key_hash"
    same = build_mlflow_tags(
        ctx, registry=REGISTRY, project_name="p", created_by="c", study_key_hash=STUDY.upper()
    )
    assert same["code.study_key_hash"] == STUDY


def test_created_by_defaults_to_the_login_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "carol")
    tags = build_mlflow_tags(_ctx(), registry=REGISTRY, project_name="p")
    assert tags["code.created_by"] == "carol"

    def no_user() -> str:
        raise OSError("no user")

    monkeypatch.setattr(getpass, "getuser", no_user)
    with pytest.raises(NamingError, match="pass created_by="):
        build_mlflow_tags(_ctx(), registry=REGISTRY, project_name="p")


def test_a_needed_key_missing_from_tags_yaml_is_an_error() -> None:
    registry = TagsRegistry({"process": {"stage": "code.stage"}})
    with pytest.raises(TagKeyError, match="section 'process' has no 'model'"):
        build_mlflow_tags(_ctx(), registry=registry, project_name="p", created_by="c")


def test_values_are_sanitized_and_project_is_required() -> None:
    ctx = _ctx(model="m" * 50)
    tags = build_mlflow_tags(
        ctx, registry=REGISTRY, project_name="p", created_by="c\x00d", max_length=10
    )
    assert tags["code.model"] == "mmmmmmm..."
    assert tags["code.created_by"] == "cd"
    with pytest.raises(NamingError, match="project name"):
        build_mlflow_tags(ctx, registry=REGISTRY, project_name=" ", created_by="c")


def test_load_tags_registry_finds_the_project(
    example_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLINFRA_PROJECT_ROOT", raising=False)
    monkeypatch.chdir(example_project)
    assert load_tags_registry(config_dir=None).key("process", "model") == "code.model"
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ConfigError, match="no mlinfra project"):
        load_tags_registry()
