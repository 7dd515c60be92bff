"""Typed, frozen models of the files mlinfra owns, and of the experiment file.

``paths.yaml``, ``naming.yaml`` and ``mlflow.yaml`` are validated whole: an unknown key is an
error (a misspelt key that is silently ignored is worse than a refusal). ``tags.yaml`` has free
section names, but every entry must be a valid MLflow tag key. Domain files
(data, model, train, env, benchmark) stay free-form; the HPO file is checked against
:class:`HpoSpec`, which types the keys mlinfra reads and lets others through.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from mlinfra.core.placeholders import parse_placeholders
from mlinfra.core.platforms import PLATFORMS, Platform
from mlinfra.core.tokens import tokens_for

__all__ = [
    "PLATFORMS",
    "ExperimentFile",
    "ExperimentFingerprint",
    "HpoSpec",
    "MlflowConfig",
    "NamingConfig",
    "PathsConfig",
    "StageSpec",
    "TagsConfig",
]


NonEmpty = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


class _Open(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow", protected_namespaces=())


def _check_pattern(value: str, scope: str | None = None) -> str:
    try:
        names = parse_placeholders(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if scope is not None:
        allowed = tokens_for(scope)
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise ValueError(
                f"placeholder(s) {', '.join(unknown)} cannot be used in a {scope} pattern; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
    return value


Pattern = Annotated[NonEmpty, Field(description="a pattern with {placeholder} fields")]

# --------------------------------------------------------------------------------------------
# experiment/<name>.yaml


def _check_ref(value: str | None) -> str | None:
    if value is None:
        return value
    if not value.endswith((".yaml", ".yml")):
        raise ValueError(f"{value!r} is not a YAML file reference (expected a .yaml path)")
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"{value!r} is absolute; write it relative to the config folder")
    if ".." in re.split(r"[\\/]", value):
        raise ValueError(f"{value!r} leaves the config folder ('..' is not allowed)")
    return value


class StageSpec(_Strict):
    """``stages.<name>`` in an experiment file: what that stage changes."""

    aml_experiment: str | None = None
    data_config: str | None = None
    model_config_ref: str | None = Field(default=None, alias="model_config")
    train_config: str | None = None
    hpo_config: str | None = None
    env_config: str | None = None
    benchmark_config: str | None = None
    backbones: list[NonEmpty] | None = None
    overrides: list[str] = Field(default_factory=list)
    #: ``package.module:function`` that ``mlinfra run <stage>`` calls.
    entrypoint: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    #: What the stage is (default: implied by its name).
    process_type: Literal["final_training", "conversion", "benchmarking"] | None = None
    #: The specification's run modes.
    run_mode: Literal["reuse_if_exists", "force_new", "resume_if_incomplete"] = "reuse_if_exists"
    #: The stage whose study (benchmarking) a stage builds on.
    source_stage: str | None = None

    _refs = field_validator(
        "data_config",
        "model_config_ref",
        "train_config",
        "hpo_config",
        "env_config",
        "benchmark_config",
    )(_check_ref)


class ExperimentNaming(_Strict):
    """``naming`` in an experiment file."""

    include_backbone_in_experiment: bool = True


class ExperimentFingerprint(_Strict):
    """``fingerprint`` in an experiment file: what the fingerprints count."""

    #: Dotted key globs to leave out of the config fingerprint, on top of the defaults.
    volatile: list[NonEmpty] = Field(default_factory=list)
    #: The key packages of the environment fingerprint (default: numerical and ML libraries).
    packages: list[NonEmpty] | None = None
    #: Files or folders (relative to the config folder) whose content is the data; default:
    #: the data config's ``local_path``.
    data: list[NonEmpty] | None = None

    @field_validator("volatile", mode="before")
    @classmethod
    def _null_list(cls, value: Any) -> Any:
        return [] if value is None else value


class ExperimentFile(_Strict):
    """The composition root: which domain file each domain comes from, and the stages."""

    experiment_name: NonEmpty | None = None
    description: str | None = None
    data_config: NonEmpty
    model_config_ref: NonEmpty = Field(alias="model_config")
    train_config: NonEmpty
    hpo_config: NonEmpty
    env_config: NonEmpty
    benchmark_config: str | None = None
    stages: dict[NonEmpty, StageSpec] = Field(default_factory=dict)
    naming: ExperimentNaming = Field(default_factory=ExperimentNaming)
    fingerprint: ExperimentFingerprint = Field(default_factory=ExperimentFingerprint)

    _refs = field_validator(
        "data_config",
        "model_config_ref",
        "train_config",
        "hpo_config",
        "env_config",
        "benchmark_config",
    )(_check_ref)

    @field_validator("stages", mode="before")
    @classmethod
    def _null_stages(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("naming", "fingerprint", mode="before")
    @classmethod
    def _null_naming(cls, value: Any) -> Any:
        return {} if value is None else value


# --------------------------------------------------------------------------------------------
# paths.yaml


class ProjectSection(_Strict):
    name: NonEmpty


class BaseSection(_Strict):
    outputs: NonEmpty = "outputs"
    config: NonEmpty = "config"
    notebooks: str | None = None
    src: str | None = None
    tests: str | None = None
    mlruns: str | None = None


class EnvOverride(_Strict):
    base: dict[str, NonEmpty] = Field(default_factory=dict)
    outputs: dict[str, NonEmpty] = Field(default_factory=dict)


class NormalizeRules(_Strict):
    """How placeholder values are made safe for one path component or name."""

    replace: dict[str, str] = Field(default_factory=dict)
    lowercase: bool = False
    max_component_length: int = Field(default=255, ge=8, le=255)
    max_path_length: int = Field(default=4096, ge=32, le=32767)


class RepositoryRoot(_Strict):
    """What marks a project root, besides its config folder."""

    markers: list[NonEmpty] = Field(default_factory=list)


class DriveSection(_Strict):
    mount_point: NonEmpty = "/content/drive"
    backup_base_dir: NonEmpty


class PathsConfig(_Strict):
    """``paths.yaml``: the filesystem layout."""

    schema_version: Literal[2] = 2
    project: ProjectSection
    base: BaseSection = Field(default_factory=BaseSection)
    env_overrides: dict[Platform, EnvOverride] = Field(default_factory=dict)
    outputs: dict[NonEmpty, NonEmpty] = Field(default_factory=dict)
    cache: dict[NonEmpty, NonEmpty] = Field(default_factory=dict)
    files: dict[NonEmpty, NonEmpty] = Field(default_factory=dict)
    patterns: dict[NonEmpty, Pattern] = Field(default_factory=dict)
    repository_root: RepositoryRoot = Field(default_factory=RepositoryRoot)
    drive: DriveSection | None = None
    normalize_paths: NormalizeRules = Field(default_factory=NormalizeRules)

    @field_validator("patterns")
    @classmethod
    def _path_tokens(cls, value: dict[str, str]) -> dict[str, str]:
        for key, pattern in value.items():
            try:
                _check_pattern(pattern, "path")
            except ValueError as exc:
                raise ValueError(f"patterns.{key}: {exc}") from None
        return value


# --------------------------------------------------------------------------------------------
# naming.yaml


class ComponentSpec(_Strict):
    source: str | None = None
    length: int | None = Field(default=None, ge=1, le=64)
    default: str | None = None
    format: str | None = None
    zero_pad: int | None = Field(default=None, ge=1, le=12)
    enabled: bool = True
    max_length: int | None = Field(default=None, ge=1, le=250)


class RunNameSpec(_Strict):
    pattern: Pattern
    components: dict[str, ComponentSpec] = Field(default_factory=dict)

    @field_validator("pattern")
    @classmethod
    def _name_tokens(cls, value: str) -> str:
        return _check_pattern(value, "name")

    @model_validator(mode="after")
    def _components_used(self) -> RunNameSpec:
        used = set(parse_placeholders(self.pattern))
        extra = sorted(set(self.components) - used)
        if extra:
            raise ValueError(
                f"components {', '.join(extra)} are not placeholders of the pattern "
                f"{self.pattern!r}"
            )
        return self


class VersionSpec(_Strict):
    format: NonEmpty = "{separator}{number}"
    separator: str = "_"

    @field_validator("format")
    @classmethod
    def _has_number(cls, value: str) -> str:
        if "number" not in parse_placeholders(value):
            raise ValueError("the version format must contain {number}")
        return value


class NameNormalize(_Strict):
    replace: dict[str, str] = Field(default_factory=dict)
    lowercase: bool = False


class NameValidation(_Strict):
    max_length: int = Field(default=250, ge=16, le=250)
    warn_length: int = Field(default=150, ge=1)
    forbidden_chars: list[str] = Field(default_factory=list)


class NamingConfig(_Strict):
    """``naming.yaml``: run-name display policy."""

    schema_version: Literal[1] = 1
    run_names: dict[NonEmpty, RunNameSpec]
    version: VersionSpec = Field(default_factory=VersionSpec)
    normalize: dict[NonEmpty, NameNormalize] = Field(default_factory=dict)
    validation: NameValidation = Field(
        default_factory=NameValidation, validation_alias=AliasChoices("validate", "validation")
    )


# --------------------------------------------------------------------------------------------
# tags.yaml

TagKey = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_./ -]+$",
        min_length=1,
        max_length=250,
        description="an MLflow tag key: letters, digits, _ - . / and spaces, at most 250 long",
    ),
]


class TagsConfig(_Open):
    """``tags.yaml``: MLflow tag keys grouped by section (``section: {name: tag.key}``).

    Section names are free (code refers to ``(section, name)`` pairs); each section must map
    names to valid MLflow tag keys.
    """

    __pydantic_extra__: dict[str, dict[NonEmpty, TagKey]] = Field(init=False)

    schema_version: Literal[1] = 1

    def sections(self) -> dict[str, dict[str, str]]:
        """Every section with its ``name → tag key`` entries."""
        return {k: dict(v) for k, v in (self.model_extra or {}).items()}


# --------------------------------------------------------------------------------------------
# mlflow.yaml


class AzureMlSection(_Strict):
    enabled: bool = False
    workspace_name: str | None = None


class AutoIncrement(_Strict):
    enabled: bool = True
    processes: dict[NonEmpty, bool] = Field(default_factory=dict)


class RunNameSection(_Strict):
    max_length: int = Field(default=250, ge=16, le=250)
    auto_increment: AutoIncrement = Field(default_factory=AutoIncrement)


class TagLimits(_Strict):
    max_length: int = Field(default=5000, ge=1, le=8000)
    sanitize: bool = True


class MlflowNaming(_Strict):
    project_name: NonEmpty
    tags: TagLimits = Field(default_factory=TagLimits)
    run_name: RunNameSection = Field(default_factory=RunNameSection)


class RegistrySection(_Strict):
    url: str | None = None


class SharedSection(_Strict):
    """``shared:`` in ``mlflow.yaml``: the services several workers or machines share.

    ``database`` (a ``postgresql://`` URL) holds the Optuna studies and the registry unless
    ``hpo.storage.url`` or ``registry.url`` name another place; ``tracking_uri`` (an
    ``mlflow server`` URL) is used unless ``tracking_uri`` is set. The environment
    (``MLINFRA_DATABASE_URL``, ``MLFLOW_TRACKING_URI``) overrides both.
    """

    database: str | None = None
    tracking_uri: str | None = None


class MlflowConfig(_Strict):
    """``mlflow.yaml``: tracking destination, per-stage tracking switches and naming limits."""

    schema_version: Literal[1] = 1
    tracking_uri: str | None = None
    experiment_name: str | None = None
    azure_ml: AzureMlSection = Field(default_factory=AzureMlSection)
    tracking: dict[NonEmpty, dict[NonEmpty, bool]] = Field(default_factory=dict)
    naming: MlflowNaming
    registry: RegistrySection = Field(default_factory=RegistrySection)
    shared: SharedSection = Field(default_factory=SharedSection)


# --------------------------------------------------------------------------------------------
# hpo/<name>.yaml


class ParamSpec(_Strict):
    """One search-space parameter."""

    type: Literal["choice", "uniform", "loguniform", "int", "logint"]
    values: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None

    @model_validator(mode="after")
    def _shape(self) -> ParamSpec:
        if self.type == "choice":
            if not self.values:
                raise ValueError("a 'choice' parameter needs a non-empty 'values' list")
        else:
            if self.min is None or self.max is None:
                raise ValueError(f"a '{self.type}' parameter needs 'min' and 'max'")
            if self.min >= self.max:
                raise ValueError(f"'min' ({self.min}) must be below 'max' ({self.max})")
            if self.type in ("loguniform", "logint") and self.min <= 0:
                raise ValueError(f"a '{self.type}' parameter needs min > 0, got {self.min}")
        return self


class SamplingSpec(_Strict):
    algorithm: Literal["random", "tpe"] = "tpe"
    max_trials: int = Field(ge=1, validation_alias=AliasChoices("max_trials", "n_trials"))
    timeout_minutes: float | None = Field(default=None, gt=0)
    seed: int | None = None


class EarlyTermination(_Open):
    policy: Literal["none", "median", "hyperband", "bandit"] = "none"


class ObjectiveSpec(_Strict):
    metric: NonEmpty
    direction: Literal["maximize", "minimize"] = "maximize"
    #: The user's objective, ``package.module:function`` (importable from the project root).
    entrypoint: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class StudyStorageSpec(_Strict):
    """Where the Optuna study lives and how crashed workers are noticed."""

    #: An RDB URL shared by several workers or machines; default ``study.db`` in the study folder.
    url: str | None = None
    #: How often a running trial proves its worker is alive.
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    #: A running trial without a heartbeat for this long is failed and re-queued with its params.
    grace_seconds: float | None = Field(default=None, gt=0)


class RefitSpec(_Open):
    enabled: bool = False


class BackupSpec(_Strict):
    """Backups of the study folder as trials finish."""

    enabled: bool = False
    #: The backup root (a mounted folder); default: Drive on Colab, else required when enabled.
    root: str | None = None
    every_n_trials: int = Field(default=1, ge=1)


class KFoldSpec(_Strict):
    enabled: bool = False
    n_splits: int = Field(default=5, ge=2)
    random_seed: int = 42
    shuffle: bool = True
    stratified: bool = False


class HpoSpec(_Open):
    """An HPO domain file: the keys mlinfra reads are typed; any other key is kept as written."""

    search_space: dict[NonEmpty, ParamSpec]
    sampling: SamplingSpec
    objective: ObjectiveSpec
    early_termination: EarlyTermination = Field(default_factory=EarlyTermination)
    k_fold: KFoldSpec = Field(default_factory=KFoldSpec)
    storage: StudyStorageSpec = Field(default_factory=StudyStorageSpec)
    refit: RefitSpec = Field(default_factory=RefitSpec)
    backup: BackupSpec = Field(default_factory=BackupSpec)
    #: What a failing trial does to the sweep: ``continue`` with the next trial, or ``stop``.
    on_trial_error: Literal["continue", "stop"] = "continue"
    #: Stop the sweep after this many failed trials (``None``: never for that reason).
    max_failed_trials: int | None = Field(default=None, ge=1)
