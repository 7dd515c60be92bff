"""The files of a new project (``mlinfra init``), as text with ``<<name>>``-style fields.

Fields: ``<<name>>`` (the project name), ``<<package>>`` (its Python package) and
``<<experiment>>`` (the experiment name, the same as the package). They are replaced with
:func:`render`; nothing else in the text is special, so YAML ``{placeholders}`` stay as written.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["FILES", "render"]


def render(text: str, fields: Mapping[str, str]) -> str:
    """``text`` with every ``<<field>>`` replaced."""
    for key, value in fields.items():
        text = text.replace(f"<<{key}>>", value)
    return text


PATHS_YAML = """\
# The filesystem layout. Relative paths are relative to the project root (the folder that holds
# this config folder), never to the working directory.
schema_version: 2
project:
  name: <<name>>
base:
  outputs: outputs
  config: config
  mlruns: mlruns
env_overrides:
  colab:
    base:
      outputs: /content/outputs
  kaggle:
    base:
      outputs: /kaggle/working/outputs
  azureml:
    base:
      outputs: /mnt/outputs
outputs:
  hpo: hpo
  benchmarking: benchmarking
  final_training: final_training
  conversion: conversion
  cache: cache
cache:
  best_configurations: best_configurations
files:
  metrics: metrics.json
patterns:
  # [...] is an optional segment: kept only when its placeholders have values
  hpo_v2: "{storage_env}/{model}/study-{study8}[/trial-{trial8}]"
  benchmarking_v2: "{storage_env}/{model}/study-{study8}/trial-{trial8}[/bench-{bench8}]"
  final_training_v2: "{storage_env}/{model}/spec-{spec8}_exec-{exec8}/v{variant}"
  conversion_v2: "{storage_env}/{model}/spec-{spec8}_exec-{exec8}/v{variant}/conv-{conv8}"
  best_config_v2: "{model}/spec-{spec8}"
drive:
  mount_point: /content/drive
  backup_base_dir: <<name>>
"""

NAMING_YAML = """\
# How runs are named in MLflow. {version} is the unique suffix reserved from the registry.
# (A backslash at the end of a line inside "..." continues the string on the next line.)
schema_version: 1
run_names:
  hpo_sweep:
    pattern: "{env}_{model}_hpo_study-{study_hash}{semantic_suffix}{version}"
    components:
      study_hash: {source: study_key_hash, length: 8}
      semantic_suffix: {source: study_name, max_length: 30}
  hpo_trial:
    pattern: "{env}_{model}_hpo_trial_study-{study_hash}_t{trial_number}{version}"
    components:
      study_hash: {source: study_key_hash, length: 8}
      trial_number: {source: trial_number, zero_pad: 2}
  hpo_trial_fold:
    pattern: "{env}_{model}_hpo_trial_study-{study_hash}_t{trial_number}_fold{fold_idx}"
    components:
      study_hash: {source: study_key_hash, length: 8}
      trial_number: {source: trial_number, zero_pad: 2}
  hpo_refit:
    pattern: "{env}_{model}_hpo_refit_study-{study_hash}[_trial-{trial_hash}]\\
      [_t{trial_number}]{version}"
    components:
      study_hash: {source: study_key_hash, length: 8}
      trial_hash: {source: trial_key_hash, length: 8}
      trial_number: {source: trial_number, zero_pad: 2}
  final_training:
    pattern: "{env}_{model}_final_training_spec-{spec_hash}_exec-{exec_hash}_v{variant}{version}"
    components:
      spec_hash: {source: spec_fp, length: 8}
      exec_hash: {source: exec_fp, length: 8}
  benchmarking:
    pattern: "{env}_{model}_benchmark_study-{study_hash}_trial-{trial_hash}\\
      [_bench-{bench_hash}]{version}"
    components:
      study_hash: {source: study_key_hash, length: 8}
      trial_hash: {source: trial_key_hash, length: 8}
      bench_hash: {source: benchmark_config_hash, length: 8}
  conversion:
    pattern: "{env}_{model}_conversion_spec-{spec_hash}_exec-{exec_hash}_v{variant}\\
      _conv-{conv_hash}{version}"
    components:
      spec_hash: {source: spec_fp, length: 8}
      exec_hash: {source: exec_fp, length: 8}
      conv_hash: {source: conv_fp, length: 8}
  best_configurations:
    pattern: "{env}_{model}_best_config_spec-{spec_hash}{version}"
    components:
      spec_hash: {source: spec_fp, length: 8}
version:
  format: "{separator}{number}"
  separator: "_"
normalize:
  env: {replace: {"/": "_", "-": "_", " ": "_"}, lowercase: false}
  model: {replace: {"/": "_", "-": "_", " ": "_"}, lowercase: false}
validate:
  max_length: 250
  warn_length: 150
  forbidden_chars: ["/", "\\\\", ":", "*", "?", "\\"", "<", ">", "|"]
"""

TAGS_YAML = """\
# MLflow tag keys, grouped by section. Code refers to (section, name); the key is set here.
schema_version: 1
grouping:
  study_key_hash: code.study_key_hash
  trial_key_hash: code.trial_key_hash
  parent_run_id: code.parent_run_id
  study_family_hash: code.study_family_hash
  run_key_hash: code.run_key_hash
  group_id: code.group_id
  grouping_schema_version: code.grouping_schema_version
study:
  key_schema_version: code.study.key_schema_version
fingerprint:
  config: code.fingerprint.config
  data: code.fingerprint.data
  code: code.fingerprint.code
  env: code.fingerprint.env
objective:
  direction: code.objective.direction
process:
  stage: code.stage
  project: code.project
  backbone: code.backbone
  model: code.model
  run_type: code.run_type
  env: code.env
  storage_env: code.storage_env
  execution_platform: code.execution_platform
  created_by: code.created_by
hpo:
  trial_number: code.hpo.trial_number
  best_trial_run_id: code.hpo.best_trial_run_id
  best_trial_number: code.hpo.best_trial_number
  refit_planned: code.refit_planned
lineage:
  source: code.lineage.source
  hpo_study_key_hash: code.lineage.hpo_study_key_hash
  hpo_trial_key_hash: code.lineage.hpo_trial_key_hash
  hpo_trial_run_id: code.lineage.hpo_trial_run_id
  hpo_refit_run_id: code.lineage.hpo_refit_run_id
  hpo_sweep_run_id: code.lineage.hpo_sweep_run_id
  parent_training_run_id: code.lineage.parent_training_run_id
paths:
  spec_fp: code.spec_fp
  exec_fp: code.exec_fp
  conv_fp: code.conv_fp
  output_dir: code.output_dir
mlflow:
  run_type: mlflow.runType
  parent_run_id: mlflow.parentRunId
"""

MLFLOW_YAML = """\
# Tracking. The tracking URI is resolved as: explicit argument > MLFLOW_TRACKING_URI > this file >
# the platform default (a SQLite database under the project root).
schema_version: 1
tracking_uri: null
experiment_name: <<name>>
naming:
  project_name: <<name>>
# Registry database for run names and the run index; MLINFRA_REGISTRY_URL overrides it.
registry:
  url: null
"""

EXPERIMENT_YAML = """\
# The composition root of the experiment: which file each domain comes from (paths relative to
# this config folder), and the stages. `mlinfra config show --explain` shows where every value of
# the composed configuration was set.
experiment_name: <<experiment>>
description: The <<name>> experiment, made by `mlinfra init`.

data_config: data/sample.yaml
model_config: model/baseline.yaml
train_config: train.yaml
hpo_config: hpo/default.yaml
env_config: env/local.yaml

stages:
  # `mlinfra hpo -s smoke`: a quick sweep to check the pipeline end to end
  smoke:
    overrides:
      - hpo.sampling.max_trials=3
      - train.training.epochs=2
  hpo:
    hpo_config: hpo/default.yaml
"""

DATA_YAML = """\
# The dataset. local_path is relative to this config folder; its files are fingerprinted, so a
# change to the data starts a new study instead of mixing results.
name: sample
version: "1"
local_path: ../data
seed: 0
"""

MODEL_YAML = """\
# The model. Its file name (baseline) is the model name used in run names and output folders.
name: baseline
"""

TRAIN_YAML = """\
training:
  epochs: 5
  random_seed: 42
"""

HPO_YAML = """\
# The sweep. Every key mlinfra reads here is typed (mlinfra.config.HpoSpec).
search_space:
  x:
    type: uniform
    min: -5.0
    max: 5.0
  learning_rate:
    type: loguniform
    min: 1.0e-4
    max: 1.0e-1
  layers:
    type: int
    min: 1
    max: 4
  activation:
    type: choice
    values: [relu, tanh]
sampling:
  algorithm: tpe
  max_trials: 20
  timeout_minutes: 30
  seed: 0
early_termination:
  policy: median
  startup_trials: 5
objective:
  metric: loss
  direction: minimize
  entrypoint: <<package>>.objective:objective
k_fold:
  enabled: false
refit:
  enabled: false
"""

ENV_LOCAL_YAML = """\
device: cpu
logging:
  level: INFO
"""

OBJECTIVE_PY = '''\
"""The objective of the sweep: ``<<package>>.objective:objective`` (see config/hpo/default.yaml).

mlinfra calls :func:`objective` once per trial with a :class:`mlinfra.hpo.TrialContext`:
``ctx.params`` holds the sampled hyperparameters (names from ``search_space``), ``ctx.config`` the
resolved configuration, ``ctx.output_dir`` the trial's own folder. Return the metric the study
optimises (``objective.metric``, here ``loss``, minimised).

This stub needs no ML library: its "loss" is a quadratic of the parameters, lowest at
``x = 1``, ``learning_rate = 1e-2``, ``layers = 2``. Replace it with your training code.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlinfra.hpo import TrialContext

__all__ = ["objective"]


def objective(ctx: TrialContext) -> float:
    """Train (here: pretend to) with ``ctx.params`` and return the loss."""
    x = float(ctx.params["x"])
    lr = float(ctx.params["learning_rate"])
    layers = int(ctx.params["layers"])
    penalty = 0.0 if ctx.params["activation"] == "relu" else 0.25
    epochs = int(ctx.config["train"]["training"]["epochs"])
    rows = len((ctx.data_path() / "sample.csv").read_text(encoding="utf-8").splitlines()) - 1

    loss = (x - 1.0) ** 2 + (math.log10(lr) + 2.0) ** 2 + 0.5 * (layers - 2) ** 2 + penalty
    for epoch in range(epochs):
        # the loss "converges" as training goes on; a pruner may stop a hopeless trial here
        ctx.report(epoch, loss + 1.0 / (epoch + 1))

    ctx.log_metrics({"rows": float(rows)})
    (ctx.output_dir / "metrics.json").write_text(
        json.dumps({"loss": loss, "rows": rows, "params": ctx.params}, indent=2) + "\\n",
        encoding="utf-8",
    )
    return loss
'''

INIT_PY = '''\
"""The <<name>> project's code: the objective of its sweep lives in :mod:`<<package>>.objective`."""
'''

SAMPLE_CSV = """\
x,y
0.0,1.0
1.0,0.0
2.0,1.0
3.0,4.0
"""

GITIGNORE = """\
# mlinfra outputs, MLflow runs and databases (study.db, mlflow.db, registry)
outputs/
mlruns/
*.db
*.db-journal
*.db-wal
*.db-shm
__pycache__/
"""

README_MD = """\
# <<name>>

A project made by `mlinfra init`: a layered configuration in `config/`, a stub objective in
`<<package>>/objective.py` and a tiny dataset in `data/`.

## Next commands

```text
mlinfra config validate          # check every config file and the experiment
mlinfra hpo -s smoke             # a 3-trial sweep of the stub objective
mlinfra report -s smoke          # an HTML report of that sweep (prints its path)
mlinfra hpo                      # the full sweep (hpo.sampling.max_trials trials)
mlinfra report                   # its report
```

Running `mlinfra hpo` again resumes the same study: finished trials are never run twice.

## What is where

- `config/experiment/<<experiment>>.yaml`: which file each domain comes from, and the stages
  (`smoke` overrides the number of trials and epochs).
- `config/hpo/default.yaml`: the search space, the sampler, the pruner and the objective
  (`objective.entrypoint: <<package>>.objective:objective`).
- `config/data/sample.yaml`, `config/model/baseline.yaml`, `config/train.yaml`,
  `config/env/local.yaml`: the domains your objective reads from `ctx.config`.
- `config/paths.yaml`, `config/naming.yaml`, `config/tags.yaml`, `config/mlflow.yaml`: where
  outputs go, how runs are named and tagged, where MLflow tracks them.
- `outputs/`: study folders (`study.db`, `report.html`) and trial folders; `mlruns/`: the
  MLflow runs (see them with `mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db`).
"""

#: Every file of a new project: path relative to the project root → template.
FILES: dict[str, str] = {
    "config/paths.yaml": PATHS_YAML,
    "config/naming.yaml": NAMING_YAML,
    "config/tags.yaml": TAGS_YAML,
    "config/mlflow.yaml": MLFLOW_YAML,
    "config/experiment/<<experiment>>.yaml": EXPERIMENT_YAML,
    "config/data/sample.yaml": DATA_YAML,
    "config/model/baseline.yaml": MODEL_YAML,
    "config/train.yaml": TRAIN_YAML,
    "config/hpo/default.yaml": HPO_YAML,
    "config/env/local.yaml": ENV_LOCAL_YAML,
    "<<package>>/__init__.py": INIT_PY,
    "<<package>>/objective.py": OBJECTIVE_PY,
    "data/sample.csv": SAMPLE_CSV,
    ".gitignore": GITIGNORE,
    "README.md": README_MD,
}
