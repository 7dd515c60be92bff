"""setup_mlflow against real MLflow stores (SQLite files and the file store)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlinfra.errors import ConfigError, FileStoreWarning, TrackingError, UnsafeStorageError
from mlinfra.tracking.mlflow.setup import setup_mlflow


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLINFRA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "")  # restored after each test


def test_default_database_is_under_the_project_root_not_the_cwd(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebooks = example_project / "notebooks"
    notebooks.mkdir()
    monkeypatch.chdir(notebooks)
    result = setup_mlflow(experiment_name="demo", environ={})
    db = example_project.resolve() / "mlruns" / "mlflow.db"
    assert result.tracking_uri == f"sqlite:///{db}"
    assert result.uri_source == "default"
    assert result.platform == "local"
    assert result.artifact_location == (db.parent / "artifacts").as_uri()
    assert db.is_file()
    assert not (notebooks / "mlruns").exists()
    again = setup_mlflow(experiment_name="demo", environ={})
    assert again.experiment_id == result.experiment_id


def test_precedence_argument_environment_yaml_default(example_project: Path) -> None:
    root = example_project
    yaml_db = root / "from_yaml.db"
    mlflow_yaml = root / "config" / "mlflow.yaml"
    mlflow_yaml.write_text(
        mlflow_yaml.read_text().replace("tracking_uri: null", f"tracking_uri: sqlite:///{yaml_db}")
    )
    env_db = root / "from_env.db"
    arg_db = root / "from_arg.db"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{env_db}"}
    by_arg = setup_mlflow(
        tracking_uri=f"sqlite:///{arg_db}", experiment_name="e", root_dir=root, environ=env
    )
    assert (by_arg.uri_source, by_arg.tracking_uri) == ("argument", f"sqlite:///{arg_db}")
    by_env = setup_mlflow(experiment_name="e", root_dir=root, environ=env)
    assert (by_env.uri_source, by_env.tracking_uri) == ("environment", f"sqlite:///{env_db}")
    by_yaml = setup_mlflow(experiment_name="e", root_dir=root, environ={})
    assert (by_yaml.uri_source, by_yaml.tracking_uri) == ("mlflow.yaml", f"sqlite:///{yaml_db}")
    # the experiment name falls back to mlflow.yaml too
    assert setup_mlflow(root_dir=root, environ={}).experiment_name == "resume-ner"


def test_spec_config_form_and_relative_sqlite_anchored_at_the_root(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (example_project / "sub").mkdir()
    monkeypatch.chdir(example_project / "sub")
    result = setup_mlflow(
        config={"tracking_uri": "sqlite:///runs/db.sqlite", "experiment_name": "x"}, environ={}
    )
    assert result.tracking_uri == f"sqlite:///{example_project.resolve() / 'runs' / 'db.sqlite'}"


def test_file_store_works_with_a_warning(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(example_project)
    with pytest.warns(FileStoreWarning, match="migrate-filestore"):
        result = setup_mlflow(
            config={"tracking_uri": "file:./mlruns", "experiment_name": "my_experiment"},
            environ={},
        )
    assert result.tracking_uri == f"file://{example_project.resolve() / 'mlruns'}"
    assert (example_project / "mlruns").is_dir()


def test_a_database_on_google_drive_is_refused(example_project: Path) -> None:
    uri = "sqlite:////content/drive/MyDrive/project/mlflow.db"
    with pytest.raises(UnsafeStorageError, match="Google Drive"):
        setup_mlflow(tracking_uri=uri, experiment_name="e", root_dir=example_project, environ={})
    assert not Path("/content/drive/MyDrive/project").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": {"tracking_url": "x", "experiment_name": "e"}}, "unknown setup_mlflow config"),
        ({"platform": "azure", "experiment_name": "e"}, "did you mean 'azureml'"),
        ({"platform": "azureml", "experiment_name": "e"}, "on AzureML the tracking URI"),
    ],
)
def test_bad_input_is_a_config_error(
    example_project: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        setup_mlflow(root_dir=example_project, environ={}, **kwargs)  # type: ignore[arg-type]


def test_no_experiment_name_anywhere(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no MLflow experiment name"):
        setup_mlflow(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}", root_dir=tmp_path, environ={})


def test_a_deleted_experiment_is_reported(tmp_path: Path) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    first = setup_mlflow(tracking_uri=uri, experiment_name="gone", root_dir=tmp_path, environ={})
    mlflow.MlflowClient(tracking_uri=uri).delete_experiment(first.experiment_id)
    with pytest.raises(TrackingError, match="restore"):
        setup_mlflow(tracking_uri=uri, experiment_name="gone", root_dir=tmp_path, environ={})


_WORKER = """
import json, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
from mlinfra.tracking.mlflow.setup import setup_mlflow
sys.stdin.readline()  # wait until every process is started
r = setup_mlflow(tracking_uri=sys.argv[1], experiment_name="race", root_dir=sys.argv[2], environ={})
print(json.dumps(r.experiment_id))
"""


@pytest.mark.slow
def test_eight_processes_starting_the_same_experiment(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, uri, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=90) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    ids = {json.loads(out.strip().splitlines()[-1]) for out, _ in results}
    assert len(ids) == 1
    import mlflow

    names = [e.name for e in mlflow.MlflowClient(tracking_uri=uri).search_experiments()]
    assert names.count("race") == 1
