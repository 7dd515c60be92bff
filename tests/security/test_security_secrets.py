"""Secrets never reach MLflow, logs, metadata or the fingerprint artifact.

One real ``mlinfra hpo`` sweep (a subprocess, two trials of stage ``smoke``) on a project copy
whose data config holds ``db_password: hunter2`` and ``dsn: postgresql://u:hunter2@h/db``, and
whose search space has a credential-named parameter ``api_token`` (a choice of ``hunter2``).
Afterwards ``hunter2`` must appear nowhere: MLflow params and tags, the sweep's standard output
and error (logs), ``metadata.json`` files, the fingerprint artifact, any file under ``outputs/``
or ``mlruns/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlinfra.core.redact import REDACTED, is_secret_key, redact_mapping

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "resume_ner"
MLINFRA = Path(sys.executable).parent / "mlinfra"
SECRET = "hunter2"

OBJECTIVE = '''\
"""Objective of the secret-redaction test (written by tests/security/test_security_secrets.py)."""

import logging


def leaky(ctx):
    logging.getLogger("mlinfra").warning("trial params: %s", sorted(ctx.params))
    ctx.log_metrics({"objective_calls": 1.0})
    return ctx.params["learning_rate"] * 1e4
'''


@dataclass(frozen=True)
class Sweep:
    root: Path
    stdout: str
    stderr: str

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlruns' / 'mlflow.db'}"


def _hits(folder: Path) -> list[str]:
    """Files below ``folder`` whose bytes hold the secret (read one at a time)."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and SECRET.encode() in path.read_bytes():
            found.append(str(path.relative_to(folder.parent)))
    return found


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    root = tmp_path_factory.mktemp("secrets") / "proj"
    shutil.copytree(
        EXAMPLE,
        root,
        ignore=shutil.ignore_patterns("outputs", "mlruns", "__pycache__", ".mypy_cache", "dataset"),
    )
    (root / "sweep_objectives.py").write_text(OBJECTIVE, encoding="utf-8")
    data = root / "config" / "data" / "resume_tiny.yaml"
    data.write_text(
        data.read_text(encoding="utf-8")
        + f"db_password: {SECRET}\ndsn: postgresql://u:{SECRET}@h/db\n",
        encoding="utf-8",
    )
    smoke = root / "config" / "hpo" / "smoke.yaml"
    text = smoke.read_text(encoding="utf-8")
    assert "  batch_size:\n" in text
    smoke.write_text(
        text.replace(
            "  batch_size:\n",
            f"  api_token:\n    type: choice\n    values: [{SECRET}]\n  batch_size:\n",
            1,
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLINFRA_"))}
    proc = subprocess.run(
        [
            str(MLINFRA),
            "hpo",
            "--no-progress",
            "-e",
            "resume_ner_baseline",
            "-s",
            "smoke",
            "++hpo.objective.entrypoint=sweep_objectives:leaky",
            "hpo.sampling.max_trials=2",
        ],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "trial params" in proc.stderr, proc.stderr  # the objective's log line was captured
    yield Sweep(root, proc.stdout, proc.stderr)


def _runs(sweep: Sweep) -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=sweep.tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids, max_results=1000))


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_mlflow_params_and_tags_hold_no_secret(sweep: Sweep) -> None:
    runs = _runs(sweep)
    assert len(runs) >= 3, "expected the sweep run and two trial runs"
    leaks = [
        (run.info.run_name, kind, key, value)
        for run in runs
        for kind, values in (("param", run.data.params), ("tag", run.data.tags))
        for key, value in values.items()
        if SECRET in key or SECRET in value
    ]
    assert not leaks, leaks
    trial_params = [run.data.params for run in runs if "api_token" in run.data.params]
    assert trial_params and all(p["api_token"] == REDACTED for p in trial_params), trial_params


@pytest.mark.slow
@pytest.mark.timeout(20)
def test_mlflow_database_file_holds_no_secret(sweep: Sweep) -> None:
    db = sweep.root / "mlruns" / "mlflow.db"
    assert db.is_file()
    assert SECRET.encode() not in db.read_bytes()


@pytest.mark.slow
@pytest.mark.timeout(20)
def test_logs_on_stderr_hold_no_secret(sweep: Sweep) -> None:
    assert SECRET not in sweep.stderr, sweep.stderr


@pytest.mark.slow
@pytest.mark.timeout(20)
def test_sweep_summary_on_stdout_holds_no_secret(sweep: Sweep) -> None:
    assert SECRET not in sweep.stdout, sweep.stdout


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
    else:
        yield path, value


def _json_files(sweep: Sweep) -> list[Path]:
    files = sorted((sweep.root / "outputs").rglob("metadata.json"))
    files += sorted((sweep.root / "mlruns").rglob("fingerprints.json"))
    return files


@pytest.mark.slow
@pytest.mark.timeout(20)
def test_config_secrets_are_redacted_in_metadata_and_fingerprints(sweep: Sweep) -> None:
    """``data.db_password`` and the DSN's password, as recorded in every metadata.json and in
    the fingerprint artifact: ``***``."""
    files = _json_files(sweep)
    assert any(f.name == "metadata.json" for f in files), files
    assert any(f.name == "fingerprints.json" for f in files), files
    seen = 0
    for file in files:
        for key, value in _walk(json.loads(file.read_text(encoding="utf-8"))):
            if key.endswith(("db_password", "dsn")):
                seen += 1
                assert SECRET not in str(value), f"{file}: {key} = {value!r}"
    assert seen, "no db_password / dsn entry recorded: nothing was checked"


@pytest.mark.slow
@pytest.mark.timeout(20)
def test_metadata_and_fingerprint_files_hold_no_secret(sweep: Sweep) -> None:
    leaks = [str(f) for f in _json_files(sweep) if SECRET in f.read_text(encoding="utf-8")]
    assert not leaks, leaks


@pytest.mark.slow
@pytest.mark.timeout(20)
def test_no_file_under_outputs_or_mlruns_holds_the_secret(sweep: Sweep) -> None:
    # Optuna's own study storage keeps sampled values as they are (a documented limitation:
    # do not put credentials in a search space); everything mlinfra writes is redacted
    leaks = [
        hit
        for hit in _hits(sweep.root / "outputs") + _hits(sweep.root / "mlruns")
        if Path(str(hit)).name != "study.db"
    ]
    assert not leaks, leaks


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("password", SECRET),
        ("db_password", SECRET),
        ("DB-PASSWORD", SECRET),
        ("client_secret", SECRET),
        ("api_token", SECRET),
        ("apiKey", SECRET),
        ("aws.access_key", SECRET),
        ("key", SECRET),
        ("credentials", {"user": "u", "password": SECRET}),
        ("dsn", f"postgresql://u:{SECRET}@h/db"),
        ("tracking_uri", f"http://u:{SECRET}@mlflow.example/"),
        ("note", f"use mysql://root:{SECRET}@db:3306/x please"),
        ("urls", [f"redis://:{SECRET}@cache:6379/0"]),
    ],
)
def test_redact_mapping_hides_credential_values(key: str, value: Any) -> None:
    clean = redact_mapping({key: value})
    assert SECRET not in json.dumps(clean), clean


@pytest.mark.timeout(20)
@pytest.mark.parametrize("key", ["run_key", "study_key", "trial_key", "sort_key", "monkey"])
def test_identity_keys_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)
