"""Workspace setup: idempotent against a double of the workspace operations, dry run inert."""

from __future__ import annotations

from pathlib import Path

import pytest
from aml_doubles import FakeWorkspaceClient

from mlinfra.azureml import (
    ensure_workspace_resources,
    load_env_file,
    load_infrastructure_config,
    ml_client_from_spec,
)
from mlinfra.errors import ConfigError


def test_setup_creates_what_is_missing_then_nothing(aml_project: Path) -> None:
    spec = load_infrastructure_config(aml_project / "config", environ={})
    client = FakeWorkspaceClient()
    first = ensure_workspace_resources(client, spec)
    assert [(a.kind, a.action) for a in first] == [
        ("workspace", "exists"),
        ("compute", "created"),
        ("environment", "created"),
        ("data", "created"),
    ]
    cluster = client.compute.created[0]
    assert (cluster.name, cluster.size, cluster.max_instances) == (
        "cpu-cluster",
        "Standard_D2s_v3",
        2,
    )
    env = client.environments.created[0]
    assert env.name == "resume-ner-training" and env.version.startswith("v")
    data = client.data.created[0]
    assert (data.name, data.version) == ("resume_tiny", "1.0")
    assert Path(data.path) == (aml_project / "dataset_tiny").resolve()

    second = ensure_workspace_resources(client, spec)
    assert {a.action for a in second} == {"exists"}
    assert len(client.compute.created) == len(client.environments.created) == 1


def test_dry_run_creates_nothing(aml_project: Path) -> None:
    spec = load_infrastructure_config(aml_project / "config", environ={})
    client = FakeWorkspaceClient()
    report = ensure_workspace_resources(client, spec, dry_run=True)
    assert [a.action for a in report] == ["exists", *["would create"] * 3]
    assert not (client.compute.created or client.environments.created or client.data.created)


def test_a_missing_workspace_is_created_only_when_asked(aml_project: Path) -> None:
    spec = load_infrastructure_config(aml_project / "config", environ={})
    with pytest.raises(ConfigError, match=r"workspace.create: true"):
        ensure_workspace_resources(FakeWorkspaceClient("other-ws"), spec)
    creating = spec.model_copy(
        update={"workspace": spec.workspace.model_copy(update={"create": True})}
    )
    client = FakeWorkspaceClient("other-ws")
    report = ensure_workspace_resources(client, creating)
    assert report[0].action == "created"
    assert client.workspaces.created[0].name == "resume-ner-ws"


def test_values_come_from_environment_then_env_file(aml_project: Path) -> None:
    (aml_project / "config.env").write_text(
        "# credentials, git-ignored\n"
        "export AZURE_SUBSCRIPTION_ID='sub-from-file'\n"
        'AZURE_RESOURCE_GROUP="rg-from-file"\n'
        "AZURE_WORKSPACE_NAME=ws-from-file\n"
    )
    spec = load_infrastructure_config(
        aml_project / "config", environ={"AZURE_RESOURCE_GROUP": "rg-from-env"}
    )
    assert spec.azure.subscription_id == "sub-from-file"
    assert spec.azure.resource_group == "rg-from-env"
    assert spec.workspace.name == "ws-from-file"
    assert spec.azure.location == "southeastasia"


def test_env_file_errors_and_missing_credentials(aml_project: Path) -> None:
    bad = aml_project / "bad.env"
    bad.write_text("A=1\nnot a pair\n")
    with pytest.raises(ConfigError, match=r"bad\.env:2"):
        load_env_file(bad)
    spec = load_infrastructure_config(aml_project / "config", environ={})
    with pytest.raises(ConfigError, match="AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP"):
        ml_client_from_spec(spec, environ={})


def test_missing_infrastructure_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"infrastructure\.yaml not found"):
        load_infrastructure_config(tmp_path)
