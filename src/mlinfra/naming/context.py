"""``NamingContext``: everything that identifies one stage run, validated once.

Paths, run names, run keys and tags are all built from a context, so they cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

from mlinfra.core.platforms import check_platform, detect_platform
from mlinfra.errors import NamingError

__all__ = [
    "PROCESS_TYPES",
    "STAGE_NAMES",
    "NamingContext",
    "ProcessType",
    "build_parent_training_id",
    "create_naming_context",
    "parse_parent_training_id",
    "process_type_for_stage",
]

ProcessType = Literal[
    "hpo", "hpo_refit", "benchmarking", "final_training", "conversion", "best_configurations"
]
PROCESS_TYPES: tuple[str, ...] = get_args(ProcessType)

_STAGE_TO_PROCESS: Mapping[str, str] = {
    "hpo": "hpo",
    "hpo_sweep": "hpo",
    "hpo_trial": "hpo",
    "smoke": "hpo",
    "hpo_refit": "hpo_refit",
    "refit": "hpo_refit",
    "benchmark": "benchmarking",
    "benchmarking": "benchmarking",
    "training": "final_training",
    "final_training": "final_training",
    "conversion": "conversion",
    "best_configurations": "best_configurations",
    "best_model_selection": "best_configurations",
}
#: Every stage name :func:`process_type_for_stage` knows.
STAGE_NAMES: tuple[str, ...] = tuple(sorted(_STAGE_TO_PROCESS))
_HEX = re.compile(r"^[0-9a-f]{6,64}$")
_PARENT = re.compile(
    r"spec[_-](?P<spec>[0-9a-f]{6,64})[_-]exec[_-](?P<exec>[0-9a-f]{6,64})(?:/v(?P<variant>[0-9]+))?",
    re.IGNORECASE,
)

_HASH_FIELDS = (
    "study_key_hash",
    "trial_key_hash",
    "benchmark_config_hash",
    "spec_fp",
    "exec_fp",
    "conv_fp",
)


@dataclass(frozen=True)
class NamingContext:
    """The identity of one stage run. Build it with :func:`create_naming_context`.

    Attributes:
        process_type: ``hpo``, ``hpo_refit``, ``benchmarking``, ``final_training``,
            ``conversion`` or ``best_configurations``.
        model: The model (backbone) name as configured, e.g. ``distilbert``.
        environment: Where the run executes (``local``, ``colab``, ``kaggle``, ``azureml``).
        storage_env: Whose storage layout its outputs use (default: ``environment``).
        stage: The experiment stage, when known (``hpo_sweep``/``hpo_trial`` select the run
            name of an HPO context).
        study_key_hash, trial_key_hash, benchmark_config_hash, spec_fp, exec_fp, conv_fp:
            Identity hashes, lower-case hex (6 to 64 characters).
        variant: Final-training variant, 1 or more.
        trial_number, fold_idx: Optuna trial number and cross-validation fold, 0 or more.
        trial_id, parent_training_id, study_name: Free identifiers.
    """

    process_type: str
    model: str
    environment: str = "local"
    storage_env: str | None = None
    stage: str | None = None
    study_name: str | None = None
    study_key_hash: str | None = None
    trial_key_hash: str | None = None
    benchmark_config_hash: str | None = None
    spec_fp: str | None = None
    exec_fp: str | None = None
    conv_fp: str | None = None
    variant: int = 1
    trial_id: str | None = None
    trial_number: int | None = None
    fold_idx: int | None = None
    parent_training_id: str | None = None

    def __post_init__(self) -> None:
        def fail(reason: str, key: str) -> NamingError:
            return NamingError(reason, key=key)

        if self.process_type not in PROCESS_TYPES:
            raise fail(
                f"unknown process type {self.process_type!r}; use one of: "
                + ", ".join(PROCESS_TYPES),
                "process_type",
            )
        if not isinstance(self.model, str) or not self.model.strip():
            raise fail("a naming context needs a model (backbone) name", "model")
        for key in ("environment", "storage_env"):
            value = getattr(self, key)
            if value is None:
                continue
            try:
                check_platform(value, what=key)
            except ValueError as exc:
                raise fail(str(exc), key) from None
        if self.storage_env is None:
            object.__setattr__(self, "storage_env", self.environment)
        for key in _HASH_FIELDS:
            value = getattr(self, key)
            if value is None:
                continue
            lowered = str(value).strip().lower()
            if not _HEX.match(lowered):
                raise fail(
                    f"{key} must be a hex digest (6 to 64 characters 0-9a-f), got {value!r}", key
                )
            object.__setattr__(self, key, lowered)
        for key, low in (("variant", 1), ("trial_number", 0), ("fold_idx", 0)):
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise fail(f"{key} must be an integer of at least {low}, got {value!r}", key)
        if self.process_type == "conversion" and self.parent_training_id is not None:
            self._align_parent()
        self._check_required()

    def _align_parent(self) -> None:
        """Fill spec_fp, exec_fp and variant from a structured parent training id, and refuse a
        parent id that disagrees with them (so run key, name and folder cannot diverge)."""
        assert self.parent_training_id is not None
        if not _PARENT.fullmatch(self.parent_training_id.strip()):
            return  # a free-form parent id: the fingerprints must be given separately
        spec, exec_, variant = parse_parent_training_id(self.parent_training_id)
        for key, derived in (("spec_fp", spec), ("exec_fp", exec_)):
            given = getattr(self, key)
            if given is None:
                object.__setattr__(self, key, derived)
            elif not (given.startswith(derived) or derived.startswith(given)):
                raise NamingError(
                    f"{key} {given!r} disagrees with parent_training_id "
                    f"{self.parent_training_id!r}; give one of them",
                    key=key,
                )
        if self.variant == 1 and variant != 1:
            object.__setattr__(self, "variant", variant)
        elif self.variant != variant:
            raise NamingError(
                f"variant {self.variant} disagrees with parent_training_id "
                f"{self.parent_training_id!r}",
                key="variant",
            )

    def _check_required(self) -> None:
        need: list[str] = []
        kind = self.process_type
        if kind == "hpo":
            if self.stage == "hpo_trial" and self.trial_number is None:
                need.append("trial_number")
            if self.fold_idx is not None and self.trial_number is None:
                need.append("trial_number")
        elif kind == "hpo_refit":
            need += [k for k in ("study_key_hash",) if getattr(self, k) is None]
            if self.trial_key_hash is None and self.trial_number is None:
                need.append("trial_key_hash or trial_number")
        elif kind == "benchmarking":
            need += [k for k in ("study_key_hash", "trial_key_hash") if getattr(self, k) is None]
        elif kind == "final_training":
            need += [k for k in ("spec_fp", "exec_fp") if getattr(self, k) is None]
        elif kind == "conversion":
            if self.conv_fp is None:
                need.append("conv_fp")
            if self.parent_training_id is None and (self.spec_fp is None or self.exec_fp is None):
                need.append("parent_training_id (or spec_fp and exec_fp)")
        elif kind == "best_configurations" and self.spec_fp is None:
            need.append("spec_fp")
        if need:
            article = "an" if kind[0] in "aeiou" else "a"
            raise NamingError(
                f"{article} {kind} context needs {', '.join(dict.fromkeys(need))}",
                key=need[0].split(" ")[0],
            )

    @property
    def is_trial(self) -> bool:
        """True for an HPO context that names one trial (it has a trial number or id)."""
        if self.process_type != "hpo" or self.stage == "hpo_sweep":
            return False  # the stage says which run of the study this is
        return (
            self.trial_number is not None or self.trial_id is not None or self.stage == "hpo_trial"
        )

    def with_(self, **changes: Any) -> NamingContext:
        """A copy with ``changes`` applied and validated again.

        A storage environment that only followed the old ``environment`` follows the new one.
        """
        if (
            "environment" in changes
            and "storage_env" not in changes
            and self.storage_env == self.environment
        ):
            changes["storage_env"] = None
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Every field, for logging and metadata."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def build_parent_training_id(spec_fp: str, exec_fp: str, variant: int = 1) -> str:
    """The id of a final-training run that conversions refer to: ``spec_<spec>_exec_<exec>/v<n>``.

    Raises:
        NamingError: a fingerprint is not hex (6 to 64 characters) or ``variant`` is below 1.
    """
    for key, value in (("spec_fp", spec_fp), ("exec_fp", exec_fp)):
        if not isinstance(value, str) or not _HEX.match(value.strip().lower()):
            raise NamingError(
                f"{key} must be a hex digest (6 to 64 characters 0-9a-f), got {value!r}", key=key
            )
    if isinstance(variant, bool) or not isinstance(variant, int) or variant < 1:
        raise NamingError(
            f"variant must be an integer of at least 1, got {variant!r}", key="variant"
        )
    return f"spec_{spec_fp.strip().lower()}_exec_{exec_fp.strip().lower()}/v{variant}"


def parse_parent_training_id(text: str) -> tuple[str, str, int]:
    """``(spec_fp, exec_fp, variant)`` from ``spec_<hex>_exec_<hex>/v<n>``.

    ``-`` may replace the ``_`` separators; without ``/v<n>`` the variant is 1. Hex digits are
    returned in lower case.

    Raises:
        NamingError: ``text`` has another form.
    """
    found = _PARENT.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise NamingError(
            f"parent_training_id {text!r} is not of the form spec_<hex>_exec_<hex>/v<n>; give "
            "spec_fp and exec_fp instead, or build it with build_parent_training_id()",
            key="parent_training_id",
        )
    variant = int(found["variant"]) if found["variant"] is not None else 1
    if variant < 1:
        raise NamingError(
            f"parent_training_id {text!r} has variant {variant}; variants start at 1",
            key="parent_training_id",
        )
    return found["spec"].lower(), found["exec"].lower(), variant


def process_type_for_stage(stage: str) -> str:
    """The process type a stage name implies (``hpo_trial`` → ``hpo``, ``training`` →
    ``final_training``).

    Raises:
        NamingError: the stage name implies none; the message lists the known stage names.
    """
    if stage in _STAGE_TO_PROCESS:
        return _STAGE_TO_PROCESS[stage]
    raise NamingError(
        f"cannot tell the process type from stage {stage!r}; pass process_type, or use a stage "
        f"among: {', '.join(sorted(_STAGE_TO_PROCESS))}",
        key="stage",
    )


def create_naming_context(
    process_type: str | None = None,
    model: str | None = None,
    spec_fp: str | None = None,
    exec_fp: str | None = None,
    environment: str | None = None,
    *,
    backbone: str | None = None,
    stage: str | None = None,
    storage_env: str | None = None,
    study_hash: str | None = None,
    study_key_hash: str | None = None,
    environ: Mapping[str, str] | None = None,
    **fields_: Any,
) -> NamingContext:
    """Build a validated :class:`NamingContext`.

    Accepts the specification's form ``create_naming_context(backbone=..., stage=...,
    study_hash=...)`` as well as the explicit one. ``backbone`` is another name for ``model``,
    ``study_hash`` for ``study_key_hash``; the process type follows from ``stage`` when not given.
    ``environment`` defaults to the detected platform (``$MLINFRA_PLATFORM`` or the runtime's own
    variables, see :func:`mlinfra.core.platforms.detect_platform`; ``environ`` replaces
    ``os.environ`` for that).

    Raises:
        NamingError: a missing or invalid field; the message names it and what is needed.

    Example:
        >>> ctx = create_naming_context(backbone="distilbert", stage="hpo", study_hash="abc123",
        ...                             environment="local")
        >>> (ctx.process_type, ctx.model, ctx.study_key_hash)
        ('hpo', 'distilbert', 'abc123')
    """
    if model is not None and backbone is not None and model != backbone:
        raise NamingError(
            f"model {model!r} and backbone {backbone!r} disagree; give one", key="model"
        )
    if study_hash is not None and study_key_hash is not None and study_hash != study_key_hash:
        raise NamingError("study_hash and study_key_hash disagree; give one", key="study_key_hash")
    name = model if model is not None else backbone
    if name is None:
        raise NamingError("a naming context needs a model (or backbone) name", key="model")
    kind = (
        process_type
        if process_type is not None
        else (process_type_for_stage(stage) if stage is not None else None)
    )
    if kind is None:
        raise NamingError("give process_type, or a stage it follows from", key="process_type")
    unknown = sorted(set(fields_) - {f.name for f in fields(NamingContext)})
    if unknown:
        raise NamingError(
            f"unknown naming field(s) {', '.join(unknown)}; known: "
            + ", ".join(f.name for f in fields(NamingContext)),
            key=unknown[0],
        )
    try:
        platform = environment if environment is not None else detect_platform(environ)
    except ValueError as exc:
        raise NamingError(str(exc), key="environment") from None
    return NamingContext(
        process_type=kind,
        model=name,
        environment=platform,
        storage_env=storage_env,
        stage=stage,
        spec_fp=spec_fp,
        exec_fp=exec_fp,
        study_key_hash=study_hash if study_hash is not None else study_key_hash,
        **fields_,
    )
