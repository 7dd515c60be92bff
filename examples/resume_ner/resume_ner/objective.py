"""The HPO objective of the resume NER example: ``resume_ner.objective:objective``.

One call trains a :class:`~resume_ner.model.TokenTagger` (token features + ``SGDClassifier``)
and returns its **entity-level macro-F1** over the entity types of ``data.schema.entity_types``
(exact span and label match; see :mod:`resume_ner.model`).

Which documents it trains and scores on:

- The dataset (``data.local_path``, relative to the config folder) is split into *train* and
  *test* with ``data.splitting.train_test_ratio`` and ``data.splitting.random_seed``
  (:func:`resume_ner.dataset.split_dataset`). The sweep never looks at *test* except in a refit.
- **holdout** (no fold, no refit): *train* is split again, with the same ratio and seed, into a
  fitting part and a *dev* part; the score is on *dev*.
- **fold** (``ctx.fold`` set): k-fold over *train* (``KFold`` with the fold's ``n_splits``,
  ``shuffle`` and ``seed``); the score is on fold ``ctx.fold.index``. Documents carry many labels
  each, so ``stratified`` folds are not possible; the folds are plain ``KFold`` folds.
- **refit** (``ctx.refit``): all of *train* is fitted and the score is on *test*; the trained
  model is saved as ``model.joblib`` next to ``metrics.json``.

The hyperparameters come from ``ctx.params`` (see :data:`PARAMS`; any not sampled keeps its
default). The model is trained ``epochs`` passes with ``partial_fit`` and scored after each one
through ``ctx.report(epoch, macro_f1)`` (steps ``0`` to ``epochs - 1``) so a pruner can stop a
hopeless trial. ``metrics.json`` in ``ctx.output_dir`` holds the scores, the per-type scores, the
per-epoch history and the sizes; the flat numbers also go to ``ctx.log_metrics``.

Running it by hand, without a sweep::

    from mlinfra.config import compose_experiment
    from mlinfra.hpo import TrialContext

    config = compose_experiment("config", "resume_ner_baseline").to_dict()
    ctx = TrialContext(params={"alpha": 1e-4}, config=config, output_dir=Path("out"),
                       project_root=Path("."), config_dir=Path("config"))
    print(objective(ctx))
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sklearn.model_selection import KFold

from resume_ner.dataset import ENTITY_TYPES, load_dataset, split_dataset
from resume_ner.model import EntityScores, TaggerConfig, TokenTagger

if TYPE_CHECKING:
    from mlinfra.hpo import TrialContext

__all__ = ["PARAMS", "objective", "select_documents", "tagger_config"]

Record = dict[str, Any]

PARAMS: dict[str, type] = {
    "alpha": float,
    "loss": str,
    "penalty": str,
    "l1_ratio": float,
    "window": int,
    "affix": int,
    "min_count": int,
    "class_weight": str,
    "scheme": str,
    "epochs": int,
}
"""The hyperparameters the objective reads from ``ctx.params`` (defaults: :class:`TaggerConfig`)."""

METRICS_FILE = "metrics.json"
MODEL_FILE = "model.joblib"


def _convert(name: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind``, or a :class:`ValueError` naming the hyperparameter."""
    if kind is str:
        if value is None:  # YAML `null` in a choice list
            return "none"
        if not isinstance(value, str):
            raise ValueError(f"hyperparameter {name!r} must be a string; got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"hyperparameter {name!r} must be a number; got {value!r}")
    number = float(value)
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"hyperparameter {name!r} must be a whole number; got {value!r}")
        return int(number)
    if not math.isfinite(number):
        raise ValueError(f"hyperparameter {name!r} must be finite; got {value!r}")
    return number


def tagger_config(
    params: Mapping[str, Any], *, seed: int, labels: Sequence[str] = ENTITY_TYPES
) -> TaggerConfig:
    """The :class:`TaggerConfig` of sampled ``params`` (defaults for the others).

    Raises:
        ValueError: an unknown hyperparameter, or a value the model cannot use; the message
            names the hyperparameter.
    """
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))}; "
            f"this objective reads {', '.join(PARAMS)}"
        )
    values = {name: _convert(name, params[name], PARAMS[name]) for name in params}
    try:
        return TaggerConfig(**values, seed=seed, labels=tuple(labels))
    except ValueError as exc:
        raise ValueError(f"hyperparameter {exc}") from exc


def _get(config: Mapping[str, Any], key: str, default: Any) -> Any:
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def select_documents(
    records: Sequence[Record], ctx: TrialContext
) -> tuple[list[Record], list[Record], str]:
    """``(fit documents, scored documents, name of the scored split)`` for this call.

    See the module docstring for the holdout, fold and refit modes.

    Raises:
        ValueError: a bad split ratio, fold index or number of splits.
    """
    ratio = float(_get(ctx.config, "data.splitting.train_test_ratio", 0.8))
    split_seed = int(_get(ctx.config, "data.splitting.random_seed", 42))
    train, test = split_dataset(records, ratio, split_seed)
    if ctx.refit:
        return train, test, "test"
    fold = ctx.fold
    if fold is None:
        fit, dev = split_dataset(train, ratio, split_seed)
        return fit, dev, "dev"
    if not 2 <= fold.n_splits <= len(train):
        raise ValueError(
            f"fold.n_splits must be between 2 and the {len(train)} training documents; "
            f"got {fold.n_splits}"
        )
    if not 0 <= fold.index < fold.n_splits:
        raise ValueError(f"fold.index must be between 0 and {fold.n_splits - 1}; got {fold.index}")
    kfold = (
        KFold(fold.n_splits, shuffle=True, random_state=fold.seed)
        if fold.shuffle
        else KFold(fold.n_splits)
    )
    fit_idx, dev_idx = list(kfold.split(train))[fold.index]
    return [train[i] for i in fit_idx], [train[i] for i in dev_idx], f"fold-{fold.index}"


def _scores_json(scores: EntityScores) -> dict[str, Any]:
    return {
        label: {
            "precision": scores.precision[label],
            "recall": scores.recall[label],
            "f1": scores.f1[label],
            "support": scores.support[label],
            "predicted": scores.n_predicted[label],
        }
        for label in scores.f1
    }


def objective(ctx: TrialContext) -> float:
    """Train the token classifier for one trial (or fold, or refit); return its macro-F1.

    Raises:
        ValueError: a bad hyperparameter (named), split or fold.
        KeyError: ``data.local_path`` is missing from the config.
        TrialPrunedError: raised by ``ctx.report`` when the pruner stops the trial.
    """
    began = time.perf_counter()
    labels = tuple(_get(ctx.config, "data.schema.entity_types", None) or ENTITY_TYPES)
    outside = sorted(set(labels) - set(ENTITY_TYPES))
    if outside:
        raise ValueError(f"data.schema.entity_types: unknown entity types {outside}")
    config = tagger_config(ctx.params, seed=int(ctx.seed), labels=labels)

    records = [
        {**r, "entities": [e for e in r["entities"] if e["label"] in labels]}
        for r in load_dataset(ctx.data_path("data.local_path"))
    ]
    fit_docs, eval_docs, eval_split = select_documents(records, ctx)

    tagger = TokenTagger(config)
    tagger.start(fit_docs)
    prepared = tagger.prepare(eval_docs)
    history: list[float] = []
    scores: EntityScores | None = None
    for epoch in range(config.epochs):
        tagger.train_epoch()
        scores = tagger.evaluate(prepared)
        history.append(scores.macro_f1)
        ctx.report(epoch, scores.macro_f1)  # may raise the pruner's TrialPruned: let it go
    if scores is None:  # unreachable: TaggerConfig checks epochs >= 1
        raise RuntimeError("no epoch was trained")

    mode = "refit" if ctx.refit else "fold" if ctx.fold is not None else "holdout"
    output_dir = Path(ctx.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if ctx.refit:
        import joblib

        bundle = {"config": config.to_dict(), "tags": tagger.tags}
        bundle |= {"vectorizer": tagger.vectorizer, "classifier": tagger.classifier}
        joblib.dump(bundle, output_dir / MODEL_FILE, compress=3)
    seconds = time.perf_counter() - began
    metrics: dict[str, Any] = {
        "metric": "macro-f1",
        "macro_f1": scores.macro_f1,
        "micro_f1": scores.micro_f1,
        "scoring": "entity-level, exact span and label; macro = mean F1 over entity types",
        "mode": mode,
        "eval_split": eval_split,
        "fold": None if ctx.fold is None else dataclasses.asdict(ctx.fold),
        "seed": config.seed,
        "params": config.to_dict(),
        "history": [{"epoch": i, "macro_f1": v} for i, v in enumerate(history)],
        "per_type": _scores_json(scores),
        "n_fit_docs": len(fit_docs),
        "n_eval_docs": len(eval_docs),
        "n_features": tagger.n_features,
        "train_seconds": tagger.train_seconds,
        "seconds": seconds,
    }
    (output_dir / METRICS_FILE).write_text(
        json.dumps(metrics, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    flat = {
        "macro_f1": scores.macro_f1,
        "micro_f1": scores.micro_f1,
        "n_features": float(tagger.n_features),
        "n_fit_docs": float(len(fit_docs)),
        "train_seconds": tagger.train_seconds,
        "seconds": seconds,
    }
    flat |= {f"f1_{label}": scores.f1[label] for label in labels}
    ctx.log_metrics(flat)
    return float(scores.macro_f1)
