from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlinfra.cli.main import cli


def _run(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLINFRA_PROJECT_ROOT", raising=False)
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


def test_show_prints_the_composed_tree(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _run(["config", "show", "--format", "json"], example_project, monkeypatch)
    assert code == 0
    data = json.loads(out)
    assert data["model"]["backbone"] == "distilbert-base-uncased"
    assert data["hpo"]["sampling"]["max_trials"] == 20


def test_show_yaml_with_stage_and_overrides(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _run(
        [
            "config",
            "show",
            "-e",
            "resume_ner_baseline",
            "-s",
            "smoke",
            "model=deberta",
            "hpo.sampling.max_trials=3",
        ],
        example_project,
        monkeypatch,
    )
    assert code == 0
    assert "backbone: microsoft/deberta-v3-base" in out
    assert "max_trials: 3" in out
    assert "epochs: 1" in out


def test_explain_lists_every_leaf_with_its_source(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _run(
        [
            "config",
            "show",
            "--experiment",
            "resume_ner_baseline",
            "--explain",
            "hpo.sampling.max_trials=5",
        ],
        example_project,
        monkeypatch,
    )
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) > 60
    for line in lines:
        key, _, rest = line.partition(" = ")
        assert key.strip() and "  # " in rest, line
        assert rest.rsplit("  # ", 1)[1].strip() not in ("", "<unknown>"), line
    by_key = {ln.split(" = ")[0].strip(): ln for ln in lines}
    assert by_key["hpo.sampling.max_trials"].endswith("# override 'hpo.sampling.max_trials=5'")
    assert by_key["model.backbone"].endswith("# config/model/distilbert.yaml:1")


def test_explain_json(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _run(
        ["config", "show", "--explain", "--format", "json"], example_project, monkeypatch
    )
    assert code == 0
    rows = json.loads(out)
    assert {"key": "data.seed", "value": 0, "source": "config/data/resume_tiny.yaml:5"} in rows


def test_show_error_exits_1_with_location(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _run(
        ["config", "show", "hpo.sampling.max_trials=many"], example_project, monkeypatch
    )
    assert code == 1
    assert out == ""
    assert "error:" in err and "key 'hpo.sampling.max_trials'" in err and "'many'" in err


def test_unknown_override_exits_1(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = _run(["config", "show", "hpo.nope=1"], example_project, monkeypatch)
    assert code == 1
    assert "+hpo.nope=" in err


def test_validate_ok(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _run(["config", "validate"], example_project, monkeypatch)
    assert code == 0
    assert "OK: 19 files and 1 experiment(s)" in out


def test_validate_lists_every_problem(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = example_project / "config"
    (cfg / "data" / "bad.yaml").write_text("x: !!python/object:os.system {}\n")
    (cfg / "train.yaml").write_text("training:\n  epochs: 1\n  epochs: 2\n")
    code, _, err = _run(["config", "validate"], example_project, monkeypatch)
    assert code == 1
    assert "2 problem(s)" in err
    assert "config/data/bad.yaml:1" in err and "not allowed" in err
    assert "config/train.yaml:3" in err and "duplicate key 'epochs'" in err


def test_project_and_config_dir_options(
    example_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, _, _ = _run(
        ["config", "validate", "--project", str(example_project)], elsewhere, monkeypatch
    )
    assert code == 0
    code, _, _ = _run(
        ["config", "validate", "--config-dir", str(example_project / "config")],
        elsewhere,
        monkeypatch,
    )
    assert code == 0
    code, _, err = _run(["config", "validate"], elsewhere, monkeypatch)
    assert code == 1
    assert "no mlinfra project" in err


def test_several_experiments_need_a_choice(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = example_project / "config" / "experiment" / "resume_ner_baseline.yaml"
    (src.parent / "second.yaml").write_text(src.read_text())
    code, _, err = _run(["config", "show"], example_project, monkeypatch)
    assert code == 1
    assert "resume_ner_baseline, second" in err


def test_usage_error_exits_2(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, _ = _run(["config", "show", "--format", "toml"], example_project, monkeypatch)
    assert code == 2


def test_console_script_exit_status(example_project: Path) -> None:
    exe = Path(sys.executable).parent / "mlinfra"
    ok = subprocess.run(
        [str(exe), "config", "validate"],
        cwd=example_project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [str(exe), "config", "show", "~hpo.missing"],
        cwd=example_project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "cannot delete 'hpo.missing'" in bad.stderr
