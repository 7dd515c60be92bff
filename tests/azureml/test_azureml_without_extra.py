"""Without the ``azure`` extra, every AzureML entry point names it, and nothing else breaks.

A subprocess installs a meta-path finder that makes every ``azure`` import fail, as it would in an
environment without azure-ai-ml, then calls each entry point.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HINT = "pip install 'mlinfra[azure]'"

_BLOCK = """
import sys

class _NoAzure:
    def find_spec(self, name, path=None, target=None):
        if name == "azure" or name.startswith("azure."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoAzure())
"""

_ENTRY_POINTS = """
import json
import mlinfra
import mlinfra.azureml as aml
from mlinfra.config import Project
from mlinfra.errors import MissingDependencyError

project = Project.discover()
results = {}

def check(label, call):
    try:
        call()
    except MissingDependencyError as exc:
        results[label] = str(exc)
    else:
        results[label] = "no error"

check("submit_and_wait_for_job", lambda: aml.submit_and_wait_for_job(object(), object()))
check("wait_for_job", lambda: aml.wait_for_job(object(), "job-1"))
check("build_stage_jobs", lambda: aml.build_stage_jobs(project, "resume_ner_baseline", "hpo"))
plans = aml.plan_stage_jobs(project, "resume_ner_baseline", "hpo", data_input=False)
check("build_command_job", lambda: aml.build_command_job(plans[0]))
spec = aml.load_infrastructure_config(project.config_dir, environ={})
check("ensure_workspace_resources", lambda: aml.ensure_workspace_resources(object(), spec))
check("get_ml_client", lambda: aml.get_ml_client("sub", "rg", "ws"))
results["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] == "azure")
print(json.dumps(results))
"""


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCK + code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    code = f"from mlinfra.cli.main import main\nmain({args!r})\n"
    return _python(code, cwd)


def test_every_entry_point_names_the_extra(aml_project: Path) -> None:
    done = _python(_ENTRY_POINTS, aml_project)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results.pop("loaded") == []
    assert len(results) == 6
    for label, message in results.items():
        assert HINT in message, (label, message)


def test_cli_names_the_extra_and_the_rest_works(aml_project: Path) -> None:
    for args in (
        ["azureml", "submit", "--stage", "hpo", "--dry-run"],
        ["azureml", "setup", "--dry-run"],
        ["azureml", "wait", "job-1"],
    ):
        done = _cli(args, aml_project)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert HINT in done.stderr, (args, done.stderr)

    helped = _cli(["--help"], aml_project)
    assert helped.returncode == 0 and "azureml" in helped.stdout
    valid = _cli(["config", "validate"], aml_project)
    assert valid.returncode == 0, valid.stderr
    assert "are valid" in valid.stdout
