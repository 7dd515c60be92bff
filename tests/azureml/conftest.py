"""Fixtures of the AzureML tests; the doubles themselves are in ``aml_doubles``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aml_doubles import CONDA, STUDIO, FakeJob, FakeJobs


@pytest.fixture
def fake_jobs() -> Iterator[FakeJobs]:
    jobs = FakeJobs()
    jobs.created["job-1"] = FakeJob("job-1", "Running", STUDIO.format(name="job-1"))
    yield jobs
    jobs.release.set()  # a stream thread left blocked ends


@pytest.fixture
def aml_project(example_project: Path) -> Path:
    """The example project with the conda file its env config names."""
    folder = example_project / "config" / "environment"
    folder.mkdir(exist_ok=True)
    (folder / "conda.yaml").write_text(CONDA, encoding="utf-8")
    return example_project
