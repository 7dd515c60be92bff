from __future__ import annotations

from pathlib import Path

import pytest

from mlinfra.config import (
    ResolvedConfig,
    compose_experiment,
    list_experiments,
    load_all_configs,
    load_experiment_config,
)
from mlinfra.errors import ConfigError, ConfigErrorGroup

EXP = "resume_ner_baseline"


def _compose(config_dir: Path, **kwargs: object) -> ResolvedConfig:
    kwargs.setdefault("environ", {})
    return compose_experiment(config_dir, EXP, **kwargs)  # type: ignore[arg-type]


def test_experiment_config_resolves_domain_files(config_dir: Path) -> None:
    exp = load_experiment_config(config_root=config_dir, experiment_name=EXP)
    assert exp.name == EXP
    assert exp.hpo_config == (config_dir / "hpo" / "prod.yaml").resolve()
    assert exp.model_config == (config_dir / "model" / "distilbert.yaml").resolve()
    assert exp.benchmark_config == (config_dir / "benchmark.yaml").resolve()
    assert set(exp.domain_files()) == {"data", "model", "train", "hpo", "env", "benchmark"}
    assert exp.stage is None
    assert set(exp.stages) == {"smoke", "hpo", "training", "demo"}


def test_stage_replaces_file_references(config_dir: Path) -> None:
    exp = load_experiment_config(config_dir, EXP, stage="smoke")
    assert exp.hpo_config.name == "smoke.yaml"
    assert exp.aml_experiment == "resume-ner-smoke"
    assert exp.stage_overrides == ("train.training.epochs=1",)
    assert exp.ref_sources["hpo_config"].origin == "stage"


def test_unknown_stage_lists_the_stages(config_dir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_experiment_config(config_dir, EXP, stage="nope")
    assert "smoke, hpo, training" in str(info.value)
    assert info.value.file == "config/experiment/resume_ner_baseline.yaml"


def test_missing_experiment_lists_available(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="available: resume_ner_baseline"):
        load_experiment_config(config_dir, "other")


def test_composed_tree_is_keyed_by_domain_and_keeps_domain_keys(config_dir: Path) -> None:
    cfg = _compose(config_dir)
    assert list(cfg.data) == ["experiment", "data", "model", "train", "hpo", "env", "benchmark"]
    assert cfg.get("model.backbone") == "distilbert-base-uncased"
    assert cfg.get("train.training.epochs") == 3
    assert cfg.get("hpo.sampling.max_trials") == 20
    assert cfg.get("hpo.checkpoint.study_name") == "hpo_distilbert-base-uncased_prod"
    assert cfg.get("benchmark.benchmarking.max_length") == 128
    assert cfg.get("missing.key", None) is None
    with pytest.raises(KeyError):
        cfg.get("missing.key")


def test_resolved_config_is_read_only_and_copies_out(config_dir: Path) -> None:
    cfg = _compose(config_dir)
    with pytest.raises(TypeError):
        cfg.data["model"]["backbone"] = "x"  # type: ignore[index]
    copy = cfg.to_dict()
    copy["model"]["backbone"] = "changed"
    assert cfg.get("model.backbone") == "distilbert-base-uncased"


def test_provenance_of_every_leaf(config_dir: Path) -> None:
    cfg = _compose(config_dir, stage="smoke", overrides=["hpo.sampling.max_trials=7"])
    rows = {key: src for key, _, src in cfg.explain()}
    assert all(src is not None for src in rows.values())
    assert str(rows["model.backbone"]) == "config/model/distilbert.yaml:1"
    assert str(rows["hpo.sampling.max_trials"]) == "override 'hpo.sampling.max_trials=7'"
    epochs = rows["train.training.epochs"]
    assert epochs.origin == "stage"
    assert epochs.line == 19
    assert "train.training.epochs=1" in str(epochs)
    assert cfg.get("train.training.epochs") == 1
    study = rows["hpo.checkpoint.study_name"]
    assert study.file == "config/hpo/smoke.yaml"
    assert "via ${model.backbone}" in str(study)


def test_override_selects_domain_file(config_dir: Path) -> None:
    cfg = _compose(config_dir, overrides=["model=deberta"])
    assert cfg.get("model.backbone") == "microsoft/deberta-v3-base"
    assert cfg.experiment.model_config.name == "deberta.yaml"
    assert cfg.experiment.ref_sources["model_config"].origin == "override"


def test_override_selecting_a_missing_file_lists_choices(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"available: deberta, distilbert"):
        _compose(config_dir, overrides=["model=gpt"])


def test_environment_values_interpolate(config_dir: Path) -> None:
    cfg = _compose(config_dir, environ={"HPO_MAX_TRIALS": "50", "MLINFRA_DEVICE": "cuda"})
    assert cfg.get("hpo.sampling.max_trials") == 50
    assert cfg.get("env.device") == "cuda"
    assert "environment variable HPO_MAX_TRIALS" in str(cfg.source("hpo.sampling.max_trials"))


def test_load_all_configs_returns_plain_dicts(config_dir: Path) -> None:
    exp = load_experiment_config(config_dir, EXP, stage="smoke")
    data = load_all_configs(exp, environ={})
    assert data["hpo"]["sampling"]["max_trials"] == 2
    assert isinstance(data["data"]["schema"]["entity_types"], list)


def test_list_experiments(config_dir: Path) -> None:
    (config_dir / "experiment" / "second.yml").write_text("x: 1\n")
    assert list_experiments(config_dir) == [EXP, "second"]


# ---- bad input ------------------------------------------------------------------------------


def test_missing_domain_file_names_the_reference(config_dir: Path) -> None:
    (config_dir / "hpo" / "prod.yaml").unlink()
    with pytest.raises(ConfigError) as info:
        load_experiment_config(config_dir, EXP)
    err = info.value
    assert err.file == "config/experiment/resume_ner_baseline.yaml"
    assert err.line == 10
    assert err.key == "hpo_config"
    assert "hpo/prod.yaml" in err.reason
    assert "available: hpo/demo.yaml, hpo/smoke.yaml" in err.reason


def test_missing_domain_file_in_a_stage_names_the_stage(config_dir: Path) -> None:
    (config_dir / "hpo" / "smoke.yaml").unlink()
    with pytest.raises(ConfigError) as info:
        load_experiment_config(config_dir, EXP, stage="smoke")
    assert info.value.key == "stages.smoke.hpo_config"
    assert info.value.line == 17


def test_wrong_type_names_file_line_and_key(config_dir: Path) -> None:
    path = config_dir / "hpo" / "prod.yaml"
    path.write_text(path.read_text().replace("max_trials: ${HPO_MAX_TRIALS:-20}", "n_trials: many"))
    with pytest.raises(ConfigError) as info:
        _compose(config_dir)
    err = info.value
    assert err.file == "config/hpo/prod.yaml"
    assert err.line == 23
    assert err.key == "hpo.sampling.n_trials"
    assert "'many'" in err.reason


def test_wrong_type_from_an_override_names_the_override(config_dir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _compose(config_dir, overrides=["hpo.sampling.max_trials=many"])
    assert "override 'hpo.sampling.max_trials=many'" in str(info.value)
    assert info.value.key == "hpo.sampling.max_trials"


def test_unknown_override_key_without_plus_is_refused(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"\+hpo\.sampling\.max_trails=") as info:
        _compose(config_dir, overrides=["hpo.sampling.max_trails=3"])
    assert "did you mean hpo.sampling.max_trials" in str(info.value)
    cfg = _compose(config_dir, overrides=["+hpo.sampling.seed=3"])
    assert cfg.get("hpo.sampling.seed") == 3


def test_bad_stage_override_names_the_experiment_line(config_dir: Path) -> None:
    path = config_dir / "experiment" / "resume_ner_baseline.yaml"
    path.write_text(path.read_text().replace("train.training.epochs=1", "train.training.epoch=1"))
    with pytest.raises(ConfigError) as info:
        _compose(config_dir, stage="smoke")
    assert info.value.file == "config/experiment/resume_ner_baseline.yaml"
    assert info.value.line == 19


def test_interpolation_cycle_is_reported(config_dir: Path) -> None:
    (config_dir / "env" / "local.yaml").write_text("a: ${env.b}\nb: ${env.a}\n")
    with pytest.raises(ConfigError, match=r"interpolation cycle: env\.a -> env\.b -> env\.a"):
        _compose(config_dir)


def test_unset_environment_variable_without_default(config_dir: Path) -> None:
    (config_dir / "env" / "local.yaml").write_text("device: cpu\ntoken: ${HF_TOKEN}\n")
    with pytest.raises(ConfigError) as info:
        _compose(config_dir)
    assert info.value.file == "config/env/local.yaml"
    assert info.value.line == 2
    assert "HF_TOKEN is not set" in info.value.reason


def test_unknown_experiment_key_lists_allowed_keys(config_dir: Path) -> None:
    path = config_dir / "experiment" / "resume_ner_baseline.yaml"
    path.write_text(path.read_text().replace("train_config:", "training_config:"))
    with pytest.raises(ConfigErrorGroup) as info:
        load_experiment_config(config_dir, EXP)
    reasons = [str(e) for e in info.value.errors]
    assert any("unknown key 'training_config'" in r and "train_config" in r for r in reasons)
    assert any("key 'train_config': required key is missing" in r for r in reasons)


def test_experiment_reference_cannot_leave_the_config_dir(config_dir: Path) -> None:
    path = config_dir / "experiment" / "resume_ner_baseline.yaml"
    path.write_text(path.read_text().replace("data/resume_tiny.yaml", "../../etc/passwd.yaml"))
    with pytest.raises(ConfigError, match=r"leaves the config folder") as info:
        load_experiment_config(config_dir, EXP)
    assert info.value.line == 7


def test_malformed_domain_file(config_dir: Path) -> None:
    (config_dir / "train.yaml").write_text("training:\n  epochs: [1, 2\n")
    with pytest.raises(ConfigError, match="malformed YAML") as info:
        _compose(config_dir)
    assert info.value.file == "config/train.yaml"


def test_python_object_tag_is_refused(config_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (config_dir / "train.yaml").write_text(
        f"x: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    with pytest.raises(ConfigError, match="not allowed"):
        _compose(config_dir)
    assert not marker.exists()


def test_domain_schema_from_import_path(config_dir: Path) -> None:
    (config_dir / "train.yaml").write_text(
        "_schema: mlinfra.config.models:KFoldSpec\nenabled: true\nn_splits: 1\n"
    )
    with pytest.raises(ConfigError) as info:
        _compose(config_dir)
    assert info.value.key == "train.n_splits"
    assert info.value.line == 3
    (config_dir / "train.yaml").write_text(
        "_schema: mlinfra.config.models:KFoldSpec\nn_splits: 3\n"
    )
    cfg = _compose(config_dir)
    assert "_schema" not in cfg.data["train"]


def test_domain_schema_that_cannot_be_imported(config_dir: Path) -> None:
    (config_dir / "train.yaml").write_text("_schema: nowhere.module:Thing\n")
    with pytest.raises(ConfigError, match="cannot be imported"):
        _compose(config_dir)


def test_stage_override_can_choose_a_domain_file(config_dir: Path) -> None:
    path = config_dir / "experiment" / "resume_ner_baseline.yaml"
    path.write_text(path.read_text().replace("train.training.epochs=1", "model=deberta"))
    cfg = _compose(config_dir, stage="smoke")
    assert cfg.get("model.backbone") == "microsoft/deberta-v3-base"
    assert cfg.experiment.ref_sources["model_config"].origin == "stage"
    # the caller's choice wins over the stage's
    cfg = _compose(config_dir, stage="smoke", overrides=["model=distilbert"])
    assert cfg.get("model.backbone") == "distilbert-base-uncased"


def test_stage_override_choosing_a_missing_file_names_the_stage_line(config_dir: Path) -> None:
    path = config_dir / "experiment" / "resume_ner_baseline.yaml"
    path.write_text(path.read_text().replace("train.training.epochs=1", "model=gpt"))
    with pytest.raises(ConfigError) as info:
        load_experiment_config(config_dir, EXP, stage="smoke")
    assert info.value.line == 19
    assert "available: deberta, distilbert" in info.value.reason


def test_load_all_configs_keeps_the_overrides(config_dir: Path) -> None:
    exp = load_experiment_config(config_dir, EXP, overrides=["model=deberta"])
    assert exp.overrides == ("model=deberta",)
    assert load_all_configs(exp, environ={})["model"]["backbone"] == "microsoft/deberta-v3-base"


def test_schema_errors_name_the_schema_line(config_dir: Path) -> None:
    (config_dir / "env" / "local.yaml").write_text("device: cpu\n_schema: nope:X\n")
    with pytest.raises(ConfigError, match="cannot be imported") as info:
        _compose(config_dir)
    assert (info.value.file, info.value.line, info.value.key) == (
        "config/env/local.yaml",
        2,
        "env._schema",
    )
    (config_dir / "env" / "local.yaml").write_text("_schema: [1]\n")
    with pytest.raises(ConfigError, match="must name a schema") as info:
        _compose(config_dir)
    assert info.value.line == 1


def test_hpo_file_is_checked_by_hpo_spec_even_with_its_own_schema(config_dir: Path) -> None:
    path = config_dir / "hpo" / "prod.yaml"
    text = path.read_text().replace("max_trials: ${HPO_MAX_TRIALS:-20}", "max_trials: 0")
    path.write_text("_schema: mlinfra.config.models:_Open\n" + text)
    with pytest.raises(ConfigError) as info:
        _compose(config_dir)
    assert info.value.key == "hpo.sampling.max_trials"
