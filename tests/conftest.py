"""Shared fixtures: a private copy of the example project for every test that changes files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "resume_ner"


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A fresh copy of examples/resume_ner; returns its root (holding ``config/``)."""
    target = tmp_path / "resume_ner"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("outputs", "mlruns"))
    return target


@pytest.fixture
def config_dir(example_project: Path) -> Path:
    """The config folder of a fresh copy of the example project."""
    return example_project / "config"
