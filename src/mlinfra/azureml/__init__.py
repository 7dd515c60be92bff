"""AzureML: run mlinfra stages as command jobs, follow them reliably, set up the workspace.

* :func:`submit_and_wait_for_job` / :func:`wait_for_job`: submit and follow a job (log stream
  with a status-polling fallback, retries, a clear failure, Ctrl-C that offers to cancel);
* :func:`plan_stage_jobs` / :func:`build_stage_jobs`: the command job(s) of a stage, from the
  experiment configuration, built offline; :func:`job_to_yaml` shows one;
* :func:`load_infrastructure_config`, :func:`get_ml_client`, :func:`ensure_workspace_resources`:
  idempotent setup of the workspace, compute, environments and data assets.

The Azure SDK (the ``azure`` extra: ``pip install 'mlinfra[azure]'``) is imported on first use:
importing this package does not need it, and every function that does says so when it is missing.
"""

from __future__ import annotations

from mlinfra.azureml.environment import (
    DEFAULT_IMAGE,
    EnvironmentSpec,
    build_environment,
    compute_environment_hash,
)
from mlinfra.azureml.jobs import (
    DataInput,
    StageJobPlan,
    build_command_job,
    build_stage_jobs,
    job_to_yaml,
    plan_stage_jobs,
)
from mlinfra.azureml.runtime import (
    TERMINAL_STATUSES,
    AzureMLRequestError,
    JobWaitTimeoutError,
    submit_and_wait_for_job,
    wait_for_job,
)
from mlinfra.azureml.setup import (
    InfrastructureSpec,
    SetupAction,
    ensure_workspace_resources,
    get_ml_client,
    load_env_file,
    load_infrastructure_config,
    ml_client_from_spec,
)
from mlinfra.errors import JobFailedError

__all__ = [
    "DEFAULT_IMAGE",
    "TERMINAL_STATUSES",
    "AzureMLRequestError",
    "DataInput",
    "EnvironmentSpec",
    "InfrastructureSpec",
    "JobFailedError",
    "JobWaitTimeoutError",
    "SetupAction",
    "StageJobPlan",
    "build_command_job",
    "build_environment",
    "build_stage_jobs",
    "compute_environment_hash",
    "ensure_workspace_resources",
    "get_ml_client",
    "job_to_yaml",
    "load_env_file",
    "load_infrastructure_config",
    "ml_client_from_spec",
    "plan_stage_jobs",
    "submit_and_wait_for_job",
    "wait_for_job",
]
