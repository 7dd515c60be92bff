"""Paths: output folders from ``paths.yaml`` patterns, checked, and parsed back.

The specification's functions: :func:`resolve_output_path`, :func:`build_output_path`,
:func:`validate_output_path`, :func:`parse_output_path`, :func:`detect_repo_root` and
:func:`resolve_project_paths_with_fallback`. None of them creates anything on disk.
"""

from __future__ import annotations

from mlinfra.paths.config import apply_env_overrides, load_paths_config, outputs_root
from mlinfra.paths.parse import ParsedOutputPath, parse_output_path
from mlinfra.paths.repo import detect_repo_root, resolve_project_paths_with_fallback
from mlinfra.paths.resolve import (
    PROCESS_LAYOUTS,
    build_output_path,
    category_dir,
    context_values,
    resolve_output_path,
)
from mlinfra.paths.validation import render_pattern, validate_output_path

__all__ = [
    "PROCESS_LAYOUTS",
    "ParsedOutputPath",
    "apply_env_overrides",
    "build_output_path",
    "category_dir",
    "context_values",
    "detect_repo_root",
    "load_paths_config",
    "outputs_root",
    "parse_output_path",
    "render_pattern",
    "resolve_output_path",
    "resolve_project_paths_with_fallback",
    "validate_output_path",
]
