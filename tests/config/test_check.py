from __future__ import annotations

from pathlib import Path

from mlinfra.config import validate_config_dir


def test_example_is_valid(config_dir: Path) -> None:
    assert validate_config_dir(config_dir, environ={}) == []


def test_every_problem_is_listed(config_dir: Path) -> None:
    (config_dir / "data" / "broken.yaml").write_text("a: [1\n")
    (config_dir / "model" / "dup.yaml").write_text("backbone: x\nbackbone: y\n")
    hpo = config_dir / "hpo" / "smoke.yaml"
    hpo.write_text(hpo.read_text().replace("max_trials: 2", "max_trials: many"))
    mlflow = config_dir / "mlflow.yaml"
    mlflow.write_text(mlflow.read_text() + "surprise: 1\n")
    problems = validate_config_dir(config_dir, environ={})
    text = "\n".join(str(p) for p in problems)
    assert "config/data/broken.yaml" in text
    assert "config/model/dup.yaml:2" in text and "duplicate key 'backbone'" in text
    assert "config/hpo/smoke.yaml:12, key 'hpo.sampling.max_trials'" in text
    assert "config/mlflow.yaml" in text and "surprise" in text
    assert len(problems) == 4


def test_only_one_experiment(config_dir: Path) -> None:
    (config_dir / "experiment" / "broken.yaml").write_text("experiment_name: b\n")
    assert validate_config_dir(config_dir, experiment="resume_ner_baseline", environ={}) == []
    assert validate_config_dir(config_dir, environ={}) != []


def test_missing_folder(tmp_path: Path) -> None:
    problems = validate_config_dir(tmp_path / "nope", environ={})
    assert len(problems) == 1 and "not found" in str(problems[0])
