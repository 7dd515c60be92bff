"""setup_mlflow and find_or_create_run against a real ``mlflow server`` (HTTP tracking URI).

Each backend's server (SQLite file, PostgreSQL database; the ``mlflow_server`` fixture in
``conftest.py``) starts once for the session; what MLflow stored is read back through the
server's REST API with urllib, not through mlinfra's or MLflow's Python client.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import mlflow
import pytest

from mlinfra.errors import TrackingError
from mlinfra.naming import NamingContext, create_naming_context
from mlinfra.naming.display_policy import load_naming_policy
from mlinfra.naming.keys import build_mlflow_run_key_hash
from mlinfra.naming.tags import load_tags_registry
from mlinfra.registry import RunIndexEntry, SqlRegistry
from mlinfra.tracking.mlflow.runs import find_or_create_run
from mlinfra.tracking.mlflow.setup import setup_mlflow

pytestmark = pytest.mark.slow

STUDY = "350a79aa" * 8
TRIAL = "747428f2" * 8


class Server(Protocol):
    """What the ``mlflow_server`` fixture yields (``conftest.MlflowServer``)."""

    url: str
    backend: str


def _rest(server: Server, endpoint: str, body: dict[str, Any] | None = None) -> Any:
    """POST ``body`` (or GET) to ``/api/2.0/mlflow/<endpoint>`` and decode the answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{server.url}/api/2.0/mlflow/{endpoint}",
        data=data,
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _search_runs(server: Server, experiment_id: str, filter_string: str = "") -> list[Any]:
    answer = _rest(
        server,
        "runs/search",
        {"experiment_ids": [experiment_id], "filter": filter_string, "max_results": 100},
    )
    return list(answer.get("runs", []))


def _tags(run: Any) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


@pytest.fixture(autouse=True)
def _restore_mlflow_globals(monkeypatch: pytest.MonkeyPatch) -> None:
    """setup_mlflow sets MLflow's process-wide tracking URI and experiment (and their environment
    variables): put them back, so no later test talks to a server that has stopped."""
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(utils, "_tracking_uri", utils._tracking_uri)
    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)


@dataclass
class Tracking:
    server: Server
    registry: SqlRegistry
    experiment_id: str
    kwargs: dict[str, Any]


@pytest.fixture
def tracking(mlflow_server: Server, example_project: Path) -> Iterator[Tracking]:
    """setup_mlflow on the server with a new experiment, and a fresh SQLite registry."""
    cfg = example_project / "config"
    setup = setup_mlflow(
        tracking_uri=mlflow_server.url,
        experiment_name=f"server-{uuid.uuid4().hex[:12]}",
        root_dir=example_project,
        environ={},
    )
    assert (setup.tracking_uri, setup.uri_source) == (mlflow_server.url, "argument")
    assert mlflow.get_tracking_uri() == mlflow_server.url
    registry = SqlRegistry(f"sqlite:///{example_project / 'registry.db'}")
    kwargs = {
        "registry": registry,
        "tracking_uri": setup.tracking_uri,
        "experiment_id": setup.experiment_id,
        "policy": load_naming_policy(cfg, environ={}),
        "tags": load_tags_registry(cfg, environ={}),
        "project_name": "resume-ner",
    }
    try:
        yield Tracking(mlflow_server, registry, setup.experiment_id, kwargs)
    finally:
        registry.close()


def _sweep() -> NamingContext:
    return create_naming_context(
        process_type="hpo", model="distilbert", environment="local", study_key_hash=STUDY
    )


def test_the_same_stage_twice_is_one_run_on_the_server(tracking: Tracking) -> None:
    first = find_or_create_run(_sweep(), params={"lr": 0.1}, **tracking.kwargs)
    again = find_or_create_run(_sweep(), params={"lr": 0.1}, **tracking.kwargs)
    assert first.how == "created"
    assert (again.how, again.run_id) == ("registry", first.run_id)

    runs = _search_runs(tracking.server, tracking.experiment_id)
    assert [r["info"]["run_id"] for r in runs] == [first.run_id]
    (run,) = runs
    assert run["info"]["run_name"] == "local_distilbert_hpo_study-350a79aa_1"
    assert run["info"]["experiment_id"] == tracking.experiment_id
    tags = _tags(run)
    assert tags["code.run_key_hash"] == first.run_key_hash
    assert tags["code.stage"] == "hpo"
    assert tags["code.study_key_hash"] == STUDY
    assert tags["mlflow.runName"] == "local_distilbert_hpo_study-350a79aa_1"
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"lr": "0.1"}
    # the server's own filter parser finds it by the backquoted tag too
    found = _search_runs(
        tracking.server,
        tracking.experiment_id,
        f"tags.`code.run_key_hash` = '{first.run_key_hash}'",
    )
    assert [r["info"]["run_id"] for r in found] == [first.run_id]


def test_a_trial_child_is_linked_to_its_parent_on_the_server(tracking: Tracking) -> None:
    parent = find_or_create_run(_sweep(), **tracking.kwargs)
    trial = _sweep().with_(trial_number=3, trial_key_hash=TRIAL)
    child = find_or_create_run(trial, parent_run_id=parent.run_id, **tracking.kwargs)
    assert child.run_id != parent.run_id

    children = _search_runs(
        tracking.server, tracking.experiment_id, f"tags.mlflow.parentRunId = '{parent.run_id}'"
    )
    assert [r["info"]["run_id"] for r in children] == [child.run_id]
    (run,) = children
    assert run["info"]["run_name"] == "local_distilbert_hpo_trial_study-350a79aa_t03_1"
    tags = _tags(run)
    assert tags["mlflow.parentRunId"] == parent.run_id
    assert tags["code.parent_run_id"] == parent.run_id
    assert tags["code.run_key_hash"] == child.run_key_hash != parent.run_key_hash
    assert tags["code.stage"] == "hpo"
    assert tags["code.trial_key_hash"] == TRIAL
    # found again through the registry, not duplicated
    again = find_or_create_run(trial, parent_run_id=parent.run_id, **tracking.kwargs)
    assert (again.how, again.run_id) == ("registry", child.run_id)
    assert len(_search_runs(tracking.server, tracking.experiment_id)) == 2


def test_a_lost_registry_entry_is_found_by_tag_search_on_the_server(tracking: Tracking) -> None:
    first = find_or_create_run(_sweep(), **tracking.kwargs)
    assert tracking.registry.remove_run(first.run_key_hash, tracking.server.url)
    again = find_or_create_run(_sweep(), **tracking.kwargs)
    assert (again.how, again.run_id) == ("tag_search", first.run_id)
    entry = tracking.registry.find_run(first.run_key_hash, tracking.server.url)
    assert entry is not None and entry.run_id == first.run_id
    assert len(_search_runs(tracking.server, tracking.experiment_id)) == 1


# Each worker: imports, says "ready", waits for "go", then sets up each experiment in turn.
_WORKER = """
import json, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
from mlinfra.tracking.mlflow.setup import setup_mlflow
print("ready", flush=True)
sys.stdin.readline()
ids = [
    setup_mlflow(tracking_uri=sys.argv[1], experiment_name=name, root_dir=sys.argv[2],
                 environ={}).experiment_id
    for name in sys.argv[3:]
]
print(json.dumps(ids))
"""
ROUNDS = 3  # new experiment names, each raced by all eight processes


def test_eight_processes_start_the_same_new_experiment_on_the_server(
    mlflow_server: Server, example_project: Path
) -> None:
    names = [f"race-{uuid.uuid4().hex[:12]}" for _ in range(ROUNDS)]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, mlflow_server.url, str(example_project), *names],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(8)
    ]
    try:
        for proc in procs:  # wait until every process has done its imports
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n", proc.communicate(timeout=90)[1]
        for proc in procs:  # then release them together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=90) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    answers = {tuple(json.loads(out.strip().splitlines()[-1])) for out, _ in results}
    assert len(answers) == 1, answers  # every process got the same id for each name
    (ids,) = answers

    for name, experiment_id in zip(names, ids, strict=True):
        answer = _rest(
            mlflow_server,
            "experiments/search",
            {"filter": f"name = '{name}'", "max_results": 100, "view_type": "ALL"},
        )
        experiments = answer.get("experiments", [])
        assert [(e["name"], e["experiment_id"]) for e in experiments] == [(name, experiment_id)]


# ---- a server that does not answer ----------------------------------------------------------


@pytest.fixture
def dead_server_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """``http://127.0.0.1:<port>`` with nothing listening; MLflow told not to retry (its default
    schedule retries a refused connection for minutes)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"http://127.0.0.1:{port}"


def test_an_unreachable_server_is_a_tracking_error(dead_server_url: str, tmp_path: Path) -> None:
    with pytest.raises(TrackingError):
        setup_mlflow(
            tracking_uri=dead_server_url, experiment_name="e", root_dir=tmp_path, environ={}
        )


def test_an_unreachable_server_does_not_drop_the_registry_entry(
    dead_server_url: str, tmp_path: Path, example_project: Path
) -> None:
    context = _sweep()
    key_hash = build_mlflow_run_key_hash(context)
    cfg = example_project / "config"
    registry = SqlRegistry(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        registry.upsert_run(
            RunIndexEntry(key_hash, "a" * 32, "1", dead_server_url, "local_x_1", "hpo")
        )
        with pytest.raises(Exception, match=re.escape(dead_server_url)):  # down: an error
            find_or_create_run(
                context,
                registry=registry,
                tracking_uri=dead_server_url,
                experiment_id="1",
                policy=load_naming_policy(cfg, environ={}),
                tags=load_tags_registry(cfg, environ={}),
                project_name="resume-ner",
            )
        # ... but the run was not shown to be gone: its entry must survive the outage
        entry = registry.find_run(key_hash, dead_server_url)
        assert entry is not None and entry.run_id == "a" * 32
    finally:
        registry.close()


@pytest.mark.parametrize("preset", [None, "false"])
def test_runs_ending_on_the_server_print_no_links_unless_asked(
    mlflow_server: Server,
    example_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    preset: str | None,
) -> None:
    from mlinfra.config import Project
    from mlinfra.tracking.mlflow.trackers import SUPPRESS_URL_PRINTING, project_target, track_run

    if preset is None:
        monkeypatch.delenv(SUPPRESS_URL_PRINTING, raising=False)
    else:
        monkeypatch.setenv(SUPPRESS_URL_PRINTING, preset)
    environ = {"MLFLOW_TRACKING_URI": mlflow_server.url}
    project = Project.discover(project=example_project, environ=environ)
    registry = SqlRegistry(f"sqlite:///{example_project / 'registry.db'}")
    try:
        target = project_target(
            project, f"links-{uuid.uuid4().hex[:8]}", platform="local", registry=registry
        )
        capfd.readouterr()
        with track_run(target, _sweep()):
            pass
    finally:
        registry.close()
    printed = capfd.readouterr().out
    assert os.environ[SUPPRESS_URL_PRINTING] == (preset or "true")
    assert ("View run" in printed) == (preset == "false"), printed
