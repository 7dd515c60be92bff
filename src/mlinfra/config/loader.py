"""Loading an experiment: its file, its stage, its domain files, overrides and interpolation.

``compose_experiment`` is the whole pipeline; ``load_experiment_config`` is its first step (which
files an experiment and stage use) for callers that need only the references.

Order of precedence, lowest first: domain files → the stage's ``overrides`` → the caller's
overrides. Then ``${...}`` expressions are resolved, then the HPO file (and any domain file that
declares ``_schema``) is validated.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from mlinfra.config.interpolation import resolve_interpolations
from mlinfra.config.models import (
    ExperimentFile,
    ExperimentFingerprint,
    ExperimentNaming,
    HpoSpec,
    StageSpec,
)
from mlinfra.config.overrides import apply_overrides, parse_override
from mlinfra.config.tree import (
    KeyPath,
    Source,
    Tree,
    format_key,
    freeze,
    get_path,
    parse_key,
    thaw,
)
from mlinfra.config.validation import validate_tree
from mlinfra.config.yamlio import load_yaml_file
from mlinfra.errors import ConfigError

__all__ = [
    "ExperimentConfig",
    "ResolvedConfig",
    "compose_experiment",
    "display_path",
    "domain_file_for_choice",
    "list_experiments",
    "load_all_configs",
    "load_experiment_config",
]

#: Domain name → experiment-file key that names its file.
DOMAIN_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "data": "data_config",
        "model": "model_config",
        "train": "train_config",
        "hpo": "hpo_config",
        "env": "env_config",
        "benchmark": "benchmark_config",
    }
)

#: Schemas a domain file can name with ``_schema: <name>``; ``hpo`` applies to the HPO domain.
BUILTIN_SCHEMAS: Mapping[str, type[BaseModel]] = MappingProxyType({"hpo": HpoSpec})
SCHEMA_KEY = "_schema"
_MISSING = object()


def display_path(path: Path, config_dir: Path) -> str:
    """How a file is named in errors and provenance: relative to the project root when inside it."""
    root = config_dir.resolve().parent
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def list_experiments(config_dir: str | Path) -> list[str]:
    """Names of the experiments under ``<config_dir>/experiment/``, sorted."""
    folder = Path(config_dir) / "experiment"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _yaml_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))


def domain_file_for_choice(config_dir: Path, domain: str, choice: str, text: str) -> Path:
    """The file a ``domain=choice`` override selects (``model=deberta`` → ``model/deberta.yaml``).

    Raises:
        ConfigError: no such file; the message lists the files available for that domain.
    """
    if "/" in choice or "\\" in choice or choice.startswith("."):
        raise ConfigError(f"override '{text}': give a file name from {domain}/, not a path")
    name = choice if choice.endswith((".yaml", ".yml")) else f"{choice}.yaml"
    path = config_dir / domain / name
    if not path.is_file():
        options = _yaml_in(config_dir / domain)
        listed = ", ".join(options) if options else f"none (no {domain}/ folder)"
        raise ConfigError(
            f"override '{text}': no file {domain}/{name}; available: {listed}", key=domain
        )
    return path


@dataclass(frozen=True)
class ExperimentConfig:
    """An experiment's composition root after its stage and file choices are applied.

    Every ``*_config`` attribute is an absolute path to that domain's file
    (``benchmark_config`` is ``None`` when the experiment has none).
    """

    name: str
    file: Path
    config_dir: Path
    data_config: Path
    model_config: Path
    train_config: Path
    hpo_config: Path
    env_config: Path
    benchmark_config: Path | None
    stages: Mapping[str, StageSpec]
    naming: ExperimentNaming
    fingerprint: ExperimentFingerprint = field(default_factory=ExperimentFingerprint)
    stage: str | None = None
    aml_experiment: str | None = None
    backbones: tuple[str, ...] = ()
    stage_overrides: tuple[str, ...] = ()
    stage_override_sources: tuple[Source, ...] = ()
    overrides: tuple[str, ...] = ()
    description: str | None = None
    ref_sources: Mapping[str, Source] = field(default_factory=dict)

    def domain_files(self) -> dict[str, Path | None]:
        """Domain name → file (``benchmark`` may be ``None``)."""
        return {domain: getattr(self, key) for domain, key in DOMAIN_KEYS.items()}


def load_experiment_config(
    config_root: str | Path,
    experiment_name: str,
    *,
    stage: str | None = None,
    overrides: Sequence[str] = (),
) -> ExperimentConfig:
    """Read ``<config_root>/experiment/<experiment_name>.yaml`` into an :class:`ExperimentConfig`.

    Args:
        config_root: The config folder.
        experiment_name: The experiment file's stem.
        stage: A key of the file's ``stages``; its file choices replace the top-level ones.
        overrides: Override strings; only domain file choices (``model=deberta``) are used here.
            They are kept on the result, so :func:`load_all_configs` composes the same files.

    Raises:
        ConfigError: the file is missing or invalid, the stage is unknown, or a referenced domain
            file does not exist.
    """
    config_dir = Path(config_root)
    if not config_dir.is_dir():
        raise ConfigError(f"config folder not found: {config_dir}")
    if not experiment_name or "/" in experiment_name or experiment_name.startswith("."):
        raise ConfigError(f"invalid experiment name {experiment_name!r}")
    path = config_dir / "experiment" / f"{experiment_name}.yaml"
    if not path.is_file():
        alt = path.with_suffix(".yml")
        if alt.is_file():
            path = alt
        else:
            known = list_experiments(config_dir)
            raise ConfigError(
                f"no experiment '{experiment_name}' in {config_dir / 'experiment'}; "
                f"available: {', '.join(known) if known else 'none'}"
            )
    shown = display_path(path, config_dir)
    tree = load_yaml_file(path, display=shown)
    if not isinstance(tree.data, dict):
        raise ConfigError("an experiment file must be a mapping of keys", file=shown, line=1)
    spec = validate_tree(ExperimentFile, tree, file=shown)

    refs: dict[str, str | None] = {
        key: getattr(spec, "model_config_ref" if key == "model_config" else key)
        for key in DOMAIN_KEYS.values()
    }
    ref_sources: dict[str, Source] = {
        key: tree.sources.get((key,), Source(shown, 1)) for key in DOMAIN_KEYS.values()
    }
    aml_experiment = None
    backbones: tuple[str, ...] = ()
    stage_overrides: tuple[str, ...] = ()
    stage_override_sources: list[Source] = []
    if stage is not None:
        if stage not in spec.stages:
            raise ConfigError(
                f"unknown stage '{stage}'; stages in this experiment: "
                f"{', '.join(spec.stages) or 'none'}",
                file=shown,
                line=tree.sources.get(("stages",), Source(shown, 1)).line,
                key="stages",
            )
        stage_spec = spec.stages[stage]
        for key in DOMAIN_KEYS.values():
            attr = "model_config_ref" if key == "model_config" else key
            value = getattr(stage_spec, attr)
            if value is not None:
                refs[key] = value
                line_src = tree.sources.get(("stages", stage, key), Source(shown, 1))
                ref_sources[key] = Source(shown, line_src.line, "stage", stage)
        aml_experiment = stage_spec.aml_experiment
        backbones = tuple(stage_spec.backbones or ())
        stage_overrides = tuple(stage_spec.overrides)
        for i, item in enumerate(stage_overrides):
            where = tree.source_of(("stages", stage, "overrides", i)) or Source(shown, 1)
            stage_override_sources.append(Source(shown, where.line, "stage", f"{stage}: {item}"))
            try:
                parse_override(item)
            except ConfigError as exc:
                raise ConfigError(
                    exc.reason, file=shown, line=where.line, key=f"stages.{stage}.overrides[{i}]"
                ) from exc

    choices = [(t, s) for t, s in zip(stage_overrides, stage_override_sources, strict=True)]
    choices += [(t, Source(origin="override", detail=t)) for t in overrides]
    for text, where in choices:
        ov = parse_override(text)
        if ov.op == "select":
            domain = str(ov.key[0])
            try:
                chosen = domain_file_for_choice(config_dir, domain, str(ov.value), text)
            except ConfigError as exc:
                raise ConfigError(
                    exc.reason, file=where.file, line=where.line, key=exc.key
                ) from exc
            refs[DOMAIN_KEYS[domain]] = chosen.relative_to(config_dir).as_posix()
            ref_sources[DOMAIN_KEYS[domain]] = where

    if refs["benchmark_config"] is None and (config_dir / "benchmark.yaml").is_file():
        refs["benchmark_config"] = "benchmark.yaml"

    resolved: dict[str, Path | None] = {}
    for key, ref in refs.items():
        if ref is None:
            resolved[key] = None
            continue
        file = config_dir / ref
        if not file.is_file():
            src = ref_sources[key]
            domain = next(d for d, k in DOMAIN_KEYS.items() if k == key)
            options = [f"{domain}/{n}.yaml" for n in _yaml_in(config_dir / domain)]
            raise ConfigError(
                f"{key} refers to '{ref}', which does not exist in {config_dir}"
                + (f"; available: {', '.join(options)}" if options else ""),
                file=src.file or shown,
                line=src.line,
                key=key if src.origin != "stage" else f"stages.{stage}.{key}",
            )
        resolved[key] = file.resolve()

    return ExperimentConfig(
        name=spec.experiment_name or path.stem,
        file=path.resolve(),
        config_dir=config_dir.resolve(),
        data_config=_req(resolved["data_config"]),
        model_config=_req(resolved["model_config"]),
        train_config=_req(resolved["train_config"]),
        hpo_config=_req(resolved["hpo_config"]),
        env_config=_req(resolved["env_config"]),
        benchmark_config=resolved["benchmark_config"],
        stages=MappingProxyType(dict(spec.stages)),
        naming=spec.naming,
        fingerprint=spec.fingerprint,
        stage=stage,
        aml_experiment=aml_experiment,
        backbones=backbones,
        stage_overrides=stage_overrides,
        stage_override_sources=tuple(stage_override_sources),
        overrides=tuple(overrides),
        description=spec.description,
        ref_sources=MappingProxyType(ref_sources),
    )


def _req(path: Path | None) -> Path:
    assert path is not None  # required references are checked by ExperimentFile
    return path


@dataclass(frozen=True)
class ResolvedConfig:
    """A composed, overridden, interpolated and validated experiment configuration.

    ``data`` is a read-only view keyed by domain (``experiment``, ``data``, ``model``, ``train``,
    ``hpo``, ``env``, ``benchmark``); :meth:`to_dict` returns a mutable copy.
    """

    experiment: ExperimentConfig
    data: Mapping[str, Any]
    sources: Mapping[KeyPath, Source]

    def to_dict(self) -> dict[str, Any]:
        """A deep, mutable copy of the configuration."""
        return dict(thaw(self.data))

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """The value at a dotted key (``hpo.sampling.max_trials``); ``default`` when absent.

        Raises:
            KeyError: the key is absent and no default was given.
        """
        try:
            return get_path(self.data, parse_key(key))
        except KeyError:
            if default is _MISSING:
                raise KeyError(key) from None
            return default

    def source(self, key: str) -> Source | None:
        """Where the value at ``key`` was set (file and line, or the override)."""
        path = parse_key(key)
        for end in range(len(path), -1, -1):
            found = self.sources.get(path[:end])
            if found is not None:
                return found
        return None

    def explain(self) -> Iterator[tuple[str, Any, Source | None]]:
        """Every leaf as ``(dotted key, value, source)``, in document order."""
        tree = Tree(self.data, dict(self.sources))
        for path, value in tree.leaves():
            yield format_key(path), thaw(value), tree.source_of(path)


def _load_domain(
    path: Path, config_dir: Path, domain: str
) -> tuple[Tree, tuple[str, Source] | None]:
    shown = display_path(path, config_dir)
    tree = load_yaml_file(path, display=shown)
    if not isinstance(tree.data, dict):
        raise ConfigError(
            f"a {domain} file must be a mapping of keys, not a {type(tree.data).__name__}",
            file=shown,
            line=1,
        )
    if SCHEMA_KEY not in tree.data:
        return tree, None
    schema = tree.data.pop(SCHEMA_KEY)
    where = tree.sources.get((SCHEMA_KEY,), Source(shown, 1))
    tree.drop_sources((SCHEMA_KEY,))
    if not isinstance(schema, str):
        raise ConfigError(
            "_schema must name a schema: a built-in name or 'package.module:Model'",
            file=where.file,
            line=where.line,
            key=f"{domain}.{SCHEMA_KEY}",
        )
    return tree, (schema, where)


def _schema_model(name: str, where: Source, key: str) -> type[BaseModel]:
    if name in BUILTIN_SCHEMAS:
        return BUILTIN_SCHEMAS[name]
    module_name, _, attr = name.partition(":")

    def fail(reason: str) -> ConfigError:
        return ConfigError(reason, file=where.file, line=where.line, key=key)

    if not module_name or not attr:
        raise fail(
            f"_schema {name!r}: use a built-in name ({', '.join(BUILTIN_SCHEMAS)}) or "
            "'package.module:Model'"
        )
    try:
        model = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise fail(f"_schema {name!r} cannot be imported: {exc}") from exc
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise fail(f"_schema {name!r} is not a pydantic model")
    return model


def compose_experiment(
    config_root: str | Path,
    experiment_name: str,
    *,
    stage: str | None = None,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> ResolvedConfig:
    """Compose an experiment into one validated tree with provenance for every leaf.

    Args:
        config_root: The config folder.
        experiment_name: The experiment file's stem.
        stage: Apply ``stages.<stage>`` of the experiment file.
        overrides: Override strings (see :mod:`mlinfra.config.overrides`).
        environ: Environment for ``${VAR}`` (default: ``os.environ``).

    Raises:
        ConfigError: any problem, naming file, line and key (or the override).
    """
    env = os.environ if environ is None else environ
    exp = load_experiment_config(config_root, experiment_name, stage=stage, overrides=overrides)
    config_dir = Path(config_root)
    shown = display_path(exp.file, config_dir)

    composed = Tree({}, {})
    composed.data["experiment"] = {"name": exp.name, "stage": exp.stage}
    composed.sources[("experiment",)] = Source(shown, 1)
    composed.sources[("experiment", "name")] = Source(shown, 1)
    composed.sources[("experiment", "stage")] = (
        Source(shown, None, "stage", exp.stage) if exp.stage else Source(shown, 1)
    )
    # the HPO file is always checked against HpoSpec; a declared _schema is checked as well
    schemas: list[tuple[str, type[BaseModel]]] = [("hpo", HpoSpec)]
    for domain, path in exp.domain_files().items():
        if path is None:
            continue
        domain_tree, declared = _load_domain(path, config_dir, domain)
        if declared is not None:
            name, where = declared
            model = _schema_model(name, where, f"{domain}.{SCHEMA_KEY}")
            if (domain, model) not in schemas:
                schemas.append((domain, model))
        composed.data[domain] = domain_tree.data
        composed.sources[(domain,)] = exp.ref_sources[DOMAIN_KEYS[domain]]
        composed.graft_sources((domain,), {p: s for p, s in domain_tree.sources.items() if p})

    for text, where in zip(exp.stage_overrides, exp.stage_override_sources, strict=True):
        ov = parse_override(text)
        if ov.op == "select":
            continue
        try:
            composed = apply_overrides(composed, [ov], source=where)
        except ConfigError as exc:
            raise ConfigError(exc.reason, file=where.file, line=where.line, key=exc.key) from exc
    cli = [ov for ov in (parse_override(t) for t in overrides) if ov.op != "select"]
    composed = apply_overrides(composed, cli)

    composed = resolve_interpolations(composed, env)

    for domain, model in schemas:
        if domain in composed.data:
            validate_tree(model, composed, prefix=(domain,))

    return ResolvedConfig(
        experiment=exp,
        data=freeze(composed.data),
        sources=MappingProxyType(dict(composed.sources)),
    )


def load_all_configs(
    experiment: ExperimentConfig, *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The composed configuration of ``experiment`` as a plain dict keyed by domain."""
    return compose_experiment(
        experiment.config_dir,
        experiment.file.stem,
        stage=experiment.stage,
        overrides=experiment.overrides,
        environ=environ,
    ).to_dict()
