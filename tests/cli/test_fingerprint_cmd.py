"""``mlinfra fingerprint`` through click's test runner: data paths, experiments, bad input, and
``--why`` on output folders and on real runs tracked into a real MLflow SQLite store."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from mlinfra.cli.main import cli
from mlinfra.fingerprints import Fingerprints, data_fingerprint, fingerprint_experiment
from mlinfra.fingerprints.data import RACY_WINDOW_NS

EXPERIMENT = "resume_ner_baseline"
ENV_VARS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLINFRA_REGISTRY_URL",
    "MLINFRA_PLATFORM",
    "MLINFRA_PROJECT_ROOT",
    "MLINFRA_DEVICE",
)


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(example_project)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return example_project


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["fingerprint", *args])


def _ok(*args: str) -> Result:
    result = _run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def _fails(*args: str) -> Result:
    result = _run(*args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    # MLflow may draw a download progress bar first; the message is a line of its own
    assert any(line.startswith("error: ") for line in result.stderr.splitlines()), result.stderr
    assert "Traceback" not in result.stderr
    return result


def _fps(project: Path, *overrides: str) -> Fingerprints:
    return fingerprint_experiment(
        project / "config", EXPERIMENT, stage="smoke", overrides=list(overrides)
    )


# ---- PATH -------------------------------------------------------------------------------------


def test_path_text(project: Path) -> None:
    expected = data_fingerprint(project / "dataset_tiny")
    out = _ok("dataset_tiny").stdout
    first, second = out.splitlines()
    assert first == f"data  {expected.hash}"
    assert f"folder of {expected.files} file(s), {expected.bytes} bytes" in second
    assert str(project / "dataset_tiny") in second


def test_path_json_and_a_single_file(project: Path) -> None:
    found = json.loads(_ok("dataset_tiny/resumes.json", "--format", "json").stdout)
    expected = data_fingerprint(project / "dataset_tiny" / "resumes.json")
    assert found == expected.summary()
    assert found["kind"] == "file"
    assert found["files"] == 1


def test_path_uses_the_project_stat_cache_unless_told_not_to(project: Path) -> None:
    old = time.time_ns() - 10 * RACY_WINDOW_NS
    for path in (project / "dataset_tiny").iterdir():
        os.utime(path, ns=(old, old))
    cache = project / "outputs" / "cache" / "fingerprints"
    _ok("dataset_tiny", "--no-cache")
    assert not cache.exists()
    assert "bytes (" in _ok("dataset_tiny").stdout
    assert list(cache.glob("*.json"))
    assert "(0 read," in _ok("dataset_tiny").stdout
    assert "(0 read," not in _ok("dataset_tiny", "--no-cache").stdout


def test_path_outside_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "loose"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"abc")
    monkeypatch.chdir(folder)
    found = json.loads(_ok(".", "--format", "json").stdout)
    assert found["hash"] == data_fingerprint(folder).hash
    assert not (folder / "outputs").exists()


# ---- --experiment -----------------------------------------------------------------------------


def test_experiment_text(project: Path) -> None:
    expected = _fps(project).hashes()
    out = _ok("-e", EXPERIMENT, "-s", "smoke").stdout
    lines = out.splitlines()
    assert lines[0] == f"{EXPERIMENT} / smoke"
    for name, value in expected.items():
        assert f"{name:<6} {value}" in lines, name
    assert "left out as volatile:" in out
    assert "env.device" in out
    assert "source files (no git)" in out


def test_experiment_json_with_overrides(project: Path) -> None:
    base = json.loads(
        _ok("--experiment", EXPERIMENT, "--stage", "smoke", "--format", "json").stdout
    )
    seven = json.loads(
        _ok(
            "-e", EXPERIMENT, "-s", "smoke", "-o", "train.training.epochs=7", "--format", "json"
        ).stdout
    )
    assert base["hashes"] == _fps(project).hashes()
    assert seven["hashes"] == _fps(project, "train.training.epochs=7").hashes()
    changed = {k for k in base["hashes"] if base["hashes"][k] != seven["hashes"][k]}
    assert changed == {"config", "spec"}
    assert seven["config"]["values"]["train.training.epochs"] == 7


def test_experiment_without_the_stat_cache(project: Path) -> None:
    cache = project / "outputs" / "cache" / "fingerprints"
    _ok("-e", EXPERIMENT, "-s", "smoke", "--no-cache")
    assert not cache.exists()
    _ok("-e", EXPERIMENT, "-s", "smoke")
    assert list(cache.glob("*.json"))


def test_the_only_experiment_is_picked(project: Path) -> None:
    picked = json.loads(_ok("--format", "json", "-s", "smoke").stdout)
    assert picked["hashes"] == _fps(project).hashes()


def test_experiment_with_project_options(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    out = _ok("--project", str(project), "-e", EXPERIMENT, "-s", "smoke", "--format", "json").stdout
    assert json.loads(out)["hashes"] == _fps(project).hashes()
    out = _ok(
        "--config-dir", str(project / "config"), "-e", EXPERIMENT, "-s", "smoke", "--format", "json"
    ).stdout
    assert json.loads(out)["hashes"] == _fps(project).hashes()


# ---- bad input --------------------------------------------------------------------------------


def test_a_missing_path(project: Path) -> None:
    result = _fails("no_such_folder")
    assert "no_such_folder" in result.stderr
    assert "no such file or folder" in result.stderr


def test_a_symlink_loop_path(project: Path) -> None:
    (project / "dataset_tiny" / "loop").symlink_to(project / "dataset_tiny")
    result = _fails("dataset_tiny")
    assert "symbolic link loop" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dataset_tiny", "-e", EXPERIMENT), "either a PATH or --experiment"),
        (("dataset_tiny", "-o", "train.training.epochs=2"), "either a PATH or --experiment"),
        (("dataset_tiny", "--exit-code"), "--exit-code goes with --why"),
        (("--exit-code", "-e", EXPERIMENT), "--exit-code goes with --why"),
        (("--why", "a", "b", "dataset_tiny"), "--why takes its two runs alone"),
        (("--why", "a", "b", "-e", EXPERIMENT), "--why takes its two runs alone"),
        (("-e", "no_such_experiment"), "no_such_experiment"),
        (("-e", EXPERIMENT, "-s", "no_such_stage"), "no_such_stage"),
        (("-e", EXPERIMENT, "-o", "train.training.epochs"), "train.training.epochs"),
    ],
)
def test_bad_input_exits_with_a_message(project: Path, args: tuple[str, ...], message: str) -> None:
    result = _fails(*args)
    assert message in result.stderr


def test_a_missing_data_path_of_an_experiment(project: Path) -> None:
    result = _fails("-e", EXPERIMENT, "-s", "smoke", "-o", "data.local_path=../nowhere")
    assert "data.local_path" in result.stderr
    assert "does not exist" in result.stderr


def test_why_needs_two_arguments(project: Path) -> None:
    result = _run("--why", "only_one")
    assert result.exit_code == 2
    assert "--why" in result.stderr


# ---- --why on output folders ------------------------------------------------------------------


def _output(project: Path, name: str, fps: Fingerprints, *, details: bool = True) -> Path:
    from mlinfra.metadata import update_metadata

    folder = project / "outputs" / "final_training" / name
    content: dict[str, Any] = {"process_type": "final_training", "fingerprints": fps.hashes()}
    if details:
        content["fingerprint_details"] = fps.record()
    update_metadata(folder, content)
    return folder


def test_why_on_two_output_folders(project: Path) -> None:
    one = _output(project, "one", _fps(project))
    seven = _output(project, "seven", _fps(project, "train.training.epochs=7"))
    out = _ok("--why", str(one), str(seven)).stdout
    assert f"A: output folder {one}" in out
    assert f"B: output folder {seven}" in out
    assert "~ train.training.epochs: 1 -> 7" in out
    assert "follows from: config" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "differs" in lines["config"] and "differs" in lines["spec"]
    for name in ("data", "code", "env", "exec"):
        assert " same " in lines[name], name
    assert out.rstrip().endswith("A and B differ in: config, spec.")

    assert _run("--why", str(one), str(seven), "--exit-code").exit_code == 1
    same = _run("--why", str(one), str(one), "--exit-code")
    assert same.exit_code == 0
    assert "A and B identical." in same.stdout


def test_why_json_on_relative_output_folders(project: Path) -> None:
    _output(project, "one", _fps(project))
    _output(project, "dev", _fps(project, "env.device=cuda"))
    found = json.loads(
        _ok(
            "--why", "outputs/final_training/one", "outputs/final_training/dev", "--format", "json"
        ).stdout
    )
    assert found["verdict"] == "identical"
    assert [f["name"] for f in found["fingerprints"]] == [
        "config",
        "data",
        "code",
        "env",
        "spec",
        "exec",
    ]
    assert all(f["status"] == "same" for f in found["fingerprints"])
    assert all(f["a"] == f["b"] and len(f["a"]) == 64 for f in found["fingerprints"])


def test_why_with_hashes_only(project: Path) -> None:
    one = _output(project, "one", _fps(project), details=False)
    seven = _output(project, "seven", _fps(project, "train.training.epochs=7"), details=False)
    out = _ok("--why", str(one), str(seven)).stdout
    assert "(hashes only)" in out
    assert "(no config values recorded on one side)" in out
    assert "A and B differ in: config, spec." in out


def test_why_on_folders_without_fingerprints(project: Path) -> None:
    from mlinfra.metadata import update_metadata

    good = _output(project, "one", _fps(project))
    bare = project / "outputs" / "final_training" / "bare"
    update_metadata(bare, {"process_type": "final_training"})
    result = _fails("--why", str(good), str(bare))
    assert "no fingerprints are recorded" in result.stderr
    assert "metadata.json" in result.stderr

    empty = project / "outputs" / "final_training" / "empty"
    empty.mkdir()
    result = _fails("--why", str(empty), str(good))
    assert "no metadata.json here" in result.stderr

    corrupt = project / "outputs" / "final_training" / "corrupt"
    corrupt.mkdir()
    (corrupt / "metadata.json").write_text('{"fingerprints": {"config": ')
    result = _fails("--why", str(good), str(corrupt))
    assert "not valid JSON" in result.stderr
    assert str(corrupt / "metadata.json") in result.stderr
    assert (corrupt / "metadata.json").read_text() == '{"fingerprints": {"config": '


def test_why_on_something_that_is_neither(project: Path) -> None:
    good = _output(project, "one", _fps(project))
    result = _fails("--why", str(good), "no_such_run_or_folder")
    assert "no_such_run_or_folder" in result.stderr
    assert "no MLflow store" in result.stderr


# ---- --why on real tracked runs ---------------------------------------------------------------


@dataclass
class Tracked:
    uri: str
    one: tuple[str, str]  # (run name, run id)
    seven: tuple[str, str]
    bare: tuple[str, str]
    twin: tuple[str, str]  # another run with the fingerprints of ``one``


@pytest.fixture
def tracked(project: Path) -> Iterator[Tracked]:
    from mlinfra.cli.runs_cmd import resolve_tracking
    from mlinfra.config import Project
    from mlinfra.naming import create_naming_context
    from mlinfra.naming.display_policy import load_naming_policy
    from mlinfra.naming.tags import load_tags_registry
    from mlinfra.registry import SqlRegistry
    from mlinfra.tracking.mlflow.setup import setup_mlflow
    from mlinfra.tracking.mlflow.trackers import (
        TrackingTarget,
        track_benchmark,
        track_final_training,
    )

    cfg = project / "config"
    setup = setup_mlflow(experiment_name="fingerprints", root_dir=project, environ={})
    # the command must read the store the runs were tracked into
    assert resolve_tracking(Project.discover(project=project)).uri == setup.tracking_uri
    assert setup.tracking_uri.startswith("sqlite:///")
    registry = SqlRegistry(f"sqlite:///{project / 'registry.db'}")
    target = TrackingTarget(
        registry,
        setup.tracking_uri,
        setup.experiment_id,
        load_naming_policy(cfg, environ={}),
        load_tags_registry(cfg, environ={}),
        "resume-ner",
    )
    runs: list[tuple[str, str]] = []
    try:
        for fps in (_fps(project), _fps(project, "train.training.epochs=7")):
            context = create_naming_context(
                process_type="final_training",
                model="distilbert",
                environment="local",
                spec_fp=fps.spec,
                exec_fp=fps.exec,
            )
            with track_final_training(target, context, fingerprints=fps) as run:
                run.log_metric("f1", 0.5)
            runs.append((run.run_name, run.run_id))
        bench = create_naming_context(
            process_type="benchmarking",
            model="distilbert",
            environment="local",
            study_key_hash="350a79aa" * 8,
            trial_key_hash="747428f2" * 8,
            benchmark_config_hash="abcdef12" * 8,
        )
        with track_benchmark(target, bench) as run:  # no fingerprints
            pass
        runs.append((run.run_name, run.run_id))
        with track_benchmark(
            target, bench.with_(benchmark_config_hash="fedcba98" * 8), fingerprints=_fps(project)
        ) as run:
            pass
        runs.append((run.run_name, run.run_id))
    finally:
        registry.close()
    assert len({run_id for _, run_id in runs}) == 4
    yield Tracked(setup.tracking_uri, runs[0], runs[1], runs[2], runs[3])


@pytest.mark.slow
def test_why_on_two_tracked_runs(project: Path, tracked: Tracked) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracked.uri)
    tags = client.get_run(tracked.one[1]).data.tags
    expected = _fps(project).hashes()
    assert tags["code.fingerprint.config"] == expected["config"]
    assert tags["code.fingerprint.data"] == expected["data"]
    assert tags["code.spec_fp"] == expected["spec"]

    name_a, id_b = tracked.one[0], tracked.seven[1]
    out = _ok("--why", name_a, id_b).stdout
    assert f"A: run {name_a} ({tracked.one[1]})" in out
    assert f"B: run {tracked.seven[0]} ({id_b})" in out
    assert "(hashes only)" not in out
    assert "~ train.training.epochs: 1 -> 7" in out
    assert "follows from: config" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "differs" in lines["config"] and "differs" in lines["spec"]
    for name in ("data", "code", "env", "exec"):
        assert " same " in lines[name], name
    assert "A and B differ in: config, spec." in out

    found = json.loads(_ok("--why", name_a, id_b, "--format", "json").stdout)
    assert found["verdict"] == "differ in: config, spec"
    status = {f["name"]: f["status"] for f in found["fingerprints"]}
    assert status == {
        "config": "differs",
        "data": "same",
        "code": "same",
        "env": "same",
        "spec": "differs",
        "exec": "same",
    }
    config = next(f for f in found["fingerprints"] if f["name"] == "config")
    assert config["details"] == ["~ train.training.epochs: 1 -> 7"]

    assert _run("--why", name_a, id_b, "--exit-code").exit_code == 1
    same = _run("--why", name_a, tracked.twin[1], "--exit-code")
    assert same.exit_code == 0, same.stdout + same.stderr
    assert f"B: run {tracked.twin[0]} ({tracked.twin[1]})" in same.stdout
    assert "A and B identical." in same.stdout
    assert " differs " not in same.stdout


@pytest.mark.slow
def test_why_on_runs_without_fingerprints_or_unknown(project: Path, tracked: Tracked) -> None:
    result = _fails("--why", tracked.bare[1], tracked.one[1])
    assert "no fingerprints recorded" in result.stderr
    assert tracked.bare[1] in result.stderr

    result = _fails("--why", tracked.one[0], "no_such_run_name")
    assert "no run named 'no_such_run_name'" in result.stderr

    # a run whose record artifact is gone still compares by its tags
    [artifact] = [
        p
        for p in (project / "mlruns").rglob("fingerprints.json")
        if tracked.seven[1] in p.as_posix()
    ]
    artifact.unlink()
    out = _ok("--why", tracked.one[1], tracked.seven[1]).stdout
    assert f"B: run {tracked.seven[0]} ({tracked.seven[1]}) (hashes only)" in out
    assert "(no config values recorded on one side)" in out
    assert "A and B differ in: config, spec." in out
