"""Fingerprints: separate hashes that each answer one question about a run.

* :func:`config_fingerprint`: is the resolved configuration the same (volatile keys aside)?
* :func:`data_fingerprint`: is the data's content the same (xxh3-128 per file, stat cache)?
* :func:`code_fingerprint`: is the code the same (git commit and uncommitted changes)?
* :func:`environment_fingerprint`: is the environment the same (Python, platform, key packages,
  CUDA, precision)?
* ``spec_fp``/``exec_fp``/``conv_fp`` (:func:`compute_spec_fp`, :func:`compute_exec_fp`,
  :func:`compute_conv_fp`): what is trained, how it ran, what it was converted from.

:func:`fingerprint_experiment` computes all of them for an experiment stage, and
:func:`compare_records` says which differ between two runs, and for the config, which keys.
"""

from __future__ import annotations

from mlinfra.fingerprints.bundle import (
    FINGERPRINT_NAMES,
    RECORD_SCHEMA,
    Difference,
    Fingerprints,
    compare_records,
    describe,
    fingerprint_experiment,
)
from mlinfra.fingerprints.code import CodeFingerprint, code_fingerprint
from mlinfra.fingerprints.compute import (
    compute_bench_fp,
    compute_conv_fp,
    compute_exec_fp,
    compute_hardware_fp,
    compute_spec_fp,
)
from mlinfra.fingerprints.config import (
    DEFAULT_VOLATILE,
    ConfigFingerprint,
    compute_config_hash,
    config_fingerprint,
)
from mlinfra.fingerprints.data import DataFingerprint, data_fingerprint, hash_file
from mlinfra.fingerprints.environment import (
    EnvironmentFingerprint,
    environment_fingerprint,
    precision_from_config,
)

__all__ = [
    "DEFAULT_VOLATILE",
    "FINGERPRINT_NAMES",
    "RECORD_SCHEMA",
    "CodeFingerprint",
    "ConfigFingerprint",
    "DataFingerprint",
    "Difference",
    "EnvironmentFingerprint",
    "Fingerprints",
    "code_fingerprint",
    "compare_records",
    "compute_bench_fp",
    "compute_config_hash",
    "compute_conv_fp",
    "compute_exec_fp",
    "compute_hardware_fp",
    "compute_spec_fp",
    "config_fingerprint",
    "data_fingerprint",
    "describe",
    "environment_fingerprint",
    "fingerprint_experiment",
    "hash_file",
    "precision_from_config",
]
