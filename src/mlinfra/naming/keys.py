"""Run keys and identity hashes: what makes two runs, studies or trials "the same".

Run keys
    A run key is a readable string naming one logical run; its sha256 (64 hex characters, of the
    key's UTF-8 bytes) is the ``run_key_hash`` the run index and the version counter use. The
    model is the configured name with surrounding spaces removed, never otherwise normalised
    (``distilbert`` and ``distilbert-base-uncased`` are different models). The platform and the
    storage environment are never part of a run key: a run keeps its identity across platforms.

    ===================  ====================================================================
    context              run key
    ===================  ====================================================================
    HPO sweep            ``hpo:<model>:study_<study_key_hash>``
    HPO trial            ``hpo:<model>:study_<study_key_hash>:trial_<T>`` and, with a fold,
                         ``...:fold_<fold_idx>``
    HPO refit            ``hpo_refit:<model>:study_<study_key_hash>:trial_<T>``
    benchmarking         ``benchmark:<model>:study_<study_key_hash>:trial_<trial_key_hash>:``
                         ``bench_<benchmark_config_hash, or none>``
    final training       ``final_training:<model>:spec_<spec_fp>:exec_<exec_fp>:v<variant>``
    conversion           ``conversion:<model>:<P>:conv_<conv_fp>``
    best configurations  ``best_configurations:<model>:spec_<spec_fp>``
    ===================  ====================================================================

    ``<T>`` is the trial key hash, or ``n<trial_number>`` when the trial key hash is not known.
    ``<P>`` is the parent training id in its canonical form ``spec_<spec>_exec_<exec>/v<n>``
    (a parent id of another form is used as given), or that form built from the context's
    ``spec_fp``, ``exec_fp`` and ``variant``. Hashes appear in full, lower case. Every HPO key
    needs the study key hash: there is no ``study_unknown``.

Study key (``mlinfra.study_key/1``)
    The canonical JSON (see :mod:`mlinfra.core.canonical`) of::

        {"schema": "mlinfra.study_key/1",
         "model": <model, stripped>,
         "data": {"name", "version", "local_path", "seed", "splitting", "schema",
                  "fingerprint"},                # the data domain's keys; a missing one is null
         "hpo": {"search_space", "objective", "k_fold", "early_termination",
                 "sampling": {"algorithm"}},
         "training": <the whole ``training`` section of the train domain>}

    So the dataset (name, version, path, seed, split, label schema and, when given, a content
    fingerprint), the model, the search space, the objective and the training budget (epochs,
    batch size, ...) all change the study. The trial budget (``sampling.max_trials``,
    ``sampling.timeout_minutes``), the sampler seed, checkpoint and refit settings and the
    train domain's ``logging`` intervals do not: raising the budget resumes the same study.

Trial key (``mlinfra.trial_key/1``)
    The canonical JSON of ``{"schema": "mlinfra.trial_key/1", "study_key_hash": <full hash>,
    "hyperparameters": <the sampled values, exactly as given>}``. The study key hash scopes it:
    two studies never share a trial key. Values are not lower-cased or rounded; canonical JSON
    already writes every float in one form.

Hashes of the study and trial keys are full sha256 digests (64 hex characters); names and
folders show their first 8 characters.
"""

from __future__ import annotations

import hashlib
import re

from mlinfra.core.platforms import check_platform
from mlinfra.errors import NamingError
from mlinfra.naming.components import build_parent_training_id, parse_parent_training_id
from mlinfra.naming.context import NamingContext
from mlinfra.naming.hpo_keys import (
    STUDY_KEY_SCHEMA,
    TRIAL_KEY_SCHEMA,
    build_hpo_study_key,
    build_hpo_trial_key,
    compute_study_key_hash,
    compute_trial_key_hash,
    get_or_compute_study_key_hash,
    get_or_compute_trial_key_hash,
)

__all__ = [
    "STUDY_KEY_SCHEMA",
    "TRIAL_KEY_SCHEMA",
    "build_counter_key",
    "build_hpo_study_key",
    "build_hpo_trial_key",
    "build_mlflow_run_key",
    "build_mlflow_run_key_hash",
    "compute_study_key_hash",
    "compute_trial_key_hash",
    "get_or_compute_study_key_hash",
    "get_or_compute_trial_key_hash",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _need(context: NamingContext, field: str, what: str) -> str:
    value = getattr(context, field)
    if value is None:
        raise NamingError(
            f"the run key of {what} needs {field}; set it on the naming context", key=field
        )
    return str(value)


def _trial_part(context: NamingContext, what: str) -> str:
    if context.trial_key_hash is not None:
        return f"trial_{context.trial_key_hash}"
    if context.trial_number is not None:
        return f"trial_n{context.trial_number}"
    raise NamingError(
        f"the run key of {what} needs trial_key_hash or trial_number; set one on the context",
        key="trial_key_hash",
    )


def build_mlflow_run_key(context: NamingContext) -> str:
    """The run key of ``context`` (templates in the module docstring).

    Raises:
        NamingError: a field the key needs is not set; the message names it.
    """
    model = context.model.strip()
    kind = context.process_type
    if kind == "hpo":
        what = "an HPO trial" if context.is_trial else "an HPO sweep"
        key = f"hpo:{model}:study_{_need(context, 'study_key_hash', what)}"
        if context.is_trial:
            key += f":{_trial_part(context, what)}"
            if context.fold_idx is not None:
                key += f":fold_{context.fold_idx}"
        return key
    if kind == "hpo_refit":
        study = _need(context, "study_key_hash", "an HPO refit")
        return f"hpo_refit:{model}:study_{study}:{_trial_part(context, 'an HPO refit')}"
    if kind == "benchmarking":
        study = _need(context, "study_key_hash", "a benchmark")
        trial = _need(context, "trial_key_hash", "a benchmark")
        bench = context.benchmark_config_hash or "none"
        return f"benchmark:{model}:study_{study}:trial_{trial}:bench_{bench}"
    if kind == "final_training":
        spec = _need(context, "spec_fp", "a final training")
        exe = _need(context, "exec_fp", "a final training")
        return f"final_training:{model}:spec_{spec}:exec_{exe}:v{context.variant}"
    if kind == "conversion":
        conv = _need(context, "conv_fp", "a conversion")
        return f"conversion:{model}:{_parent_id(context)}:conv_{conv}"
    spec = _need(context, "spec_fp", "a best-configurations run")
    return f"best_configurations:{model}:spec_{spec}"


def _parent_id(context: NamingContext) -> str:
    if context.parent_training_id is not None:
        try:
            return build_parent_training_id(*parse_parent_training_id(context.parent_training_id))
        except NamingError:
            return context.parent_training_id.strip()
    spec = _need(context, "spec_fp", "a conversion")
    exe = _need(context, "exec_fp", "a conversion")
    return build_parent_training_id(spec, exe, context.variant)


def build_mlflow_run_key_hash(run_key_or_context: str | NamingContext) -> str:
    """sha256 hex digest (64 characters) of a run key's UTF-8 bytes.

    Args:
        run_key_or_context: A run key, or a context whose run key is built first.

    Raises:
        NamingError: an empty run key, or a context without the fields its key needs.
    """
    key = (
        build_mlflow_run_key(run_key_or_context)
        if isinstance(run_key_or_context, NamingContext)
        else run_key_or_context
    )
    if not isinstance(key, str) or not key.strip():
        raise NamingError(f"a run key must be a non-empty string, got {key!r}", key="run_key")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def build_counter_key(project: str, process: str, run_key_hash: str, storage_env: str) -> str:
    """The run-name version counter key ``"<project>:<process>:<run_key_hash>:<storage_env>"``.

    Raises:
        NamingError: an empty part or one holding ``:``, a run key hash that is not 64 hex
            characters, or an unknown storage environment.
    """
    for key, value in (("project", project), ("process", process)):
        if not isinstance(value, str) or not value.strip() or ":" in value:
            raise NamingError(f"{key} must be a non-empty name without ':', got {value!r}", key=key)
    if not isinstance(run_key_hash, str) or not _HEX64.fullmatch(run_key_hash):
        raise NamingError(
            f"run_key_hash must be 64 lower-case hex characters (build_mlflow_run_key_hash), "
            f"got {run_key_hash!r}",
            key="run_key_hash",
        )
    try:
        check_platform(storage_env, what="storage_env")
    except ValueError as exc:
        raise NamingError(str(exc), key="storage_env") from None
    return f"{project.strip()}:{process.strip()}:{run_key_hash}:{storage_env}"
