"""get_platform_adapter and the adapters: detection per platform, outputs roots, AzureML
outputs, checkpoint resolution (with restore from a backup), metrics conversion, logging."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mlinfra.config import Project
from mlinfra.errors import CheckpointNotFoundError, ConfigError, TrackingError
from mlinfra.platform import (
    AzureMLAdapter,
    ColabAdapter,
    KaggleAdapter,
    LocalAdapter,
    get_platform_adapter,
    metric_value,
    resolve_checkpoint_dir,
)
from mlinfra.storage import DriveBackupStore


@pytest.fixture
def proj(example_project: Path) -> Project:
    return Project.discover(project=example_project, environ={})


@pytest.mark.parametrize(
    ("environ", "cls", "outputs"),
    [
        ({}, LocalAdapter, None),
        ({"COLAB_RELEASE_TAG": "release-colab_2026"}, ColabAdapter, "/content/outputs"),
        ({"COLAB_GPU": "1"}, ColabAdapter, "/content/outputs"),
        ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, KaggleAdapter, "/kaggle/working/outputs"),
        ({"AZUREML_RUN_ID": "job_1"}, AzureMLAdapter, "/mnt/outputs"),
        (
            {"MLINFRA_PLATFORM": "kaggle", "COLAB_GPU": "1"},
            KaggleAdapter,
            "/kaggle/working/outputs",
        ),
    ],
)
def test_each_platform_from_its_signals(
    proj: Project, environ: dict[str, str], cls: type, outputs: str | None
) -> None:
    adapter = get_platform_adapter(project=proj, environ=environ)
    assert type(adapter) is cls
    expected = Path(outputs) if outputs else proj.root / "outputs"
    assert adapter.outputs_root() == expected
    assert adapter.output_path("hpo") == expected / "hpo"
    described = adapter.describe()
    assert described["platform"] == cls.name
    assert described["outputs root"] == str(expected)
    if environ:
        assert next(iter(environ)) in described["detected from"]


def test_forced_platform_and_bad_names(proj: Project) -> None:
    adapter = get_platform_adapter(project=proj, platform="colab", environ={})
    assert isinstance(adapter, ColabAdapter)
    assert "asked for by the caller (detected: local)" in adapter.describe()["why"]
    with pytest.raises(ConfigError, match="did you mean 'azureml'"):
        get_platform_adapter(project=proj, platform="azure", environ={})
    with pytest.raises(ConfigError, match="MLINFRA_PLATFORM"):
        get_platform_adapter(project=proj, environ={"MLINFRA_PLATFORM": "gcp"})


def test_default_output_dir_needs_no_project(tmp_path: Path) -> None:
    adapter = get_platform_adapter(tmp_path / "out", environ={})
    assert adapter.outputs_root() == tmp_path / "out"
    assert adapter.ensure_output_directory("hpo").is_dir()
    with pytest.raises(ValueError, match="needs a project or a default_output_dir"):
        LocalAdapter()


def test_azureml_named_outputs_and_placeholder(proj: Project, tmp_path: Path) -> None:
    env = {
        "AZUREML_RUN_ID": "job_1",
        "AZURE_ML_OUTPUT_MODEL": str(tmp_path / "model-out"),
        "AZURE_ML_OUTPUT_DIR": str(tmp_path / "all"),
    }
    adapter = get_platform_adapter(project=proj, environ=env)
    assert adapter.is_platform_job()
    assert adapter.output_path("model") == tmp_path / "model-out"
    assert adapter.output_path("metrics") == tmp_path / "all" / "metrics"
    made = adapter.ensure_output_directory("model")
    assert (made / "output_placeholder.txt").is_file()
    assert not get_platform_adapter(project=proj, environ={}).is_platform_job()
    forced = get_platform_adapter(project=proj, environ={"MLINFRA_PLATFORM": "azureml"})
    assert not forced.is_platform_job()


def _checkpoint(folder: Path, weights: str = "model.safetensors") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    (folder / weights).write_bytes(b"\0" * 16)


def test_resolve_checkpoint_dir(tmp_path: Path) -> None:
    _checkpoint(tmp_path / "a")
    assert resolve_checkpoint_dir(tmp_path / "a") == tmp_path / "a"
    _checkpoint(tmp_path / "b" / "checkpoint", "pytorch_model.bin")
    assert resolve_checkpoint_dir(tmp_path / "b") == tmp_path / "b" / "checkpoint"
    (tmp_path / "c").mkdir()
    for i in range(45):
        (tmp_path / "c" / f"f{i:02d}.txt").write_text("x")
    with pytest.raises(CheckpointNotFoundError, match=r"found: f00\.txt.* and 5 more") as info:
        resolve_checkpoint_dir(tmp_path / "c")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(CheckpointNotFoundError, match="the folder does not exist"):
        resolve_checkpoint_dir(tmp_path / "nope")


def test_checkpoint_is_restored_from_the_backup_first(proj: Project, tmp_path: Path) -> None:
    run = proj.root / "outputs" / "final_training" / "run-1"
    _checkpoint(run / "checkpoint")
    store = DriveBackupStore(proj.root, tmp_path / "MyDrive" / "resume-ner")
    assert store.backup(run).ok
    (run / "checkpoint" / "model.safetensors").unlink()
    (run / "checkpoint" / "config.json").unlink()
    (run / "checkpoint").rmdir()
    run.rmdir()  # a new Colab session: the VM disk is empty
    adapter = get_platform_adapter(project=proj, environ={"COLAB_GPU": "1"}, backup_store=store)
    assert adapter.resolve_checkpoint(run) == run / "checkpoint"
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == b"\0" * 16


def test_metric_values() -> None:
    class Scalar:  # what numpy scalars look like to the converter
        def __float__(self) -> float:
            return 0.5

    assert metric_value("a", True) == 1.0
    assert metric_value("a", 3) == 3.0
    assert metric_value("a", "0.25") == 0.25
    assert metric_value("a", Scalar()) == 0.5
    with pytest.raises(TrackingError, match="metric 'label' is not a number"):
        metric_value("label", "cat")
    with pytest.raises(TrackingError, match="not a number"):
        metric_value("x", None)


def test_setup_logging_replaces_its_handler(
    proj: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = get_platform_adapter(project=proj, environ={}).setup_logging("INFO")
    colab = get_platform_adapter(project=proj, environ={"COLAB_GPU": "1"})
    try:
        assert colab.setup_logging("DEBUG") is logger
        marked = [h for h in logger.handlers if getattr(h, "_mlinfra_platform_handler", False)]
        assert len(marked) == 1
        logging.getLogger("mlinfra.test").info("hello")
        out = capsys.readouterr().out
        assert "Z INFO mlinfra.test: hello" in out
    finally:
        for handler in marked:
            logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
