"""The resume NER example's objective: a real scikit-learn token classifier behind a TrialContext.

The objective (``resume_ner.objective:objective``) is called by hand here, with a context built
from the example's composed configuration, the way ``mlinfra hpo`` calls it: holdout, k-fold
and refit modes, per-epoch reports for the pruner, ``metrics.json``, and clear errors.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from mlinfra.config import compose_experiment
from mlinfra.config.models import HpoSpec
from mlinfra.hpo.context import FoldInfo, TrialContext, TrialPrunedError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "resume_ner"
CONFIG_DIR = EXAMPLE / "config"
EXPERIMENT = "resume_ner_baseline"

# good hyperparameters of the demo search space (a trial TPE finds early)
DEMO_PARAMS: dict[str, Any] = {
    "alpha": 1e-5,
    "loss": "hinge",
    "window": 2,
    "affix": 2,
    "min_count": 1,
    "class_weight": "none",
    "scheme": "io",
}


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``resume_ner.objective``, importable from the example project folder."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return importlib.import_module("resume_ner.objective")


@pytest.fixture
def model(example: ModuleType) -> ModuleType:
    """``resume_ner.model``."""
    return importlib.import_module("resume_ner.model")


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The composed configuration of the example experiment (default stage, tiny dataset)."""
    resolved = compose_experiment(CONFIG_DIR, EXPERIMENT, environ={})
    data: dict[str, Any] = resolved.to_dict()
    return data


class Recorder:
    """Records ``report`` and ``log_metrics`` calls."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, float]] = []
        self.metrics: list[dict[str, float]] = []

    def report(self, step: int, value: float) -> None:
        self.reports.append((step, value))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None) -> None:
        self.metrics.append(dict(metrics))


def _ctx(
    config: dict[str, Any],
    output_dir: Path,
    params: Mapping[str, Any] | None = None,
    *,
    fold: FoldInfo | None = None,
    refit: bool = False,
    seed: int = 0,
    recorder: Recorder | None = None,
) -> TrialContext:
    recorder = recorder or Recorder()
    return TrialContext(
        params=dict(DEMO_PARAMS if params is None else params),
        config=config,
        output_dir=output_dir,
        project_root=EXAMPLE,
        config_dir=CONFIG_DIR,
        trial_number=None if refit else 0,
        fold=fold,
        refit=refit,
        seed=seed,
        _report=recorder.report,
        _log_metrics=recorder.log_metrics,
    )


def _metrics(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    return data


# ---- the holdout trial ----------------------------------------------------------------------


def test_objective_returns_macro_f1_reports_epochs_and_writes_metrics(
    example: ModuleType, config: dict[str, Any], tmp_path: Path
) -> None:
    recorder = Recorder()
    out = tmp_path / "trial-0"  # not created yet: the objective makes it
    value = example.objective(_ctx(config, out, recorder=recorder))

    assert isinstance(value, float)
    assert 0.0 < value <= 1.0
    # one report per epoch (default 5), steps 0, 1, 2, ...; the last one is the result
    assert [step for step, _ in recorder.reports] == [0, 1, 2, 3, 4]
    assert all(0.0 <= v <= 1.0 for _, v in recorder.reports)
    assert recorder.reports[-1][1] == value

    metrics = _metrics(out)
    assert metrics["macro_f1"] == value
    assert metrics["mode"] == "holdout"
    assert metrics["eval_split"] == "dev"
    assert metrics["fold"] is None
    assert [h["macro_f1"] for h in metrics["history"]] == [v for _, v in recorder.reports]
    assert sorted(metrics["per_type"]) == sorted(config["data"]["schema"]["entity_types"])
    assert metrics["params"]["alpha"] == DEMO_PARAMS["alpha"]
    assert metrics["params"]["epochs"] == 5  # a default, not sampled
    # 80 resumes: 64 train (16 test, untouched) -> 51 fitted + 13 scored
    assert (metrics["n_fit_docs"], metrics["n_eval_docs"]) == (51, 13)
    assert not (out / "model.joblib").exists()  # only a refit keeps its model

    (logged,) = recorder.metrics
    assert logged["macro_f1"] == value
    assert {f"f1_{label}" for label in metrics["per_type"]} <= set(logged)
    assert all(isinstance(v, float) for v in logged.values())


def test_tiny_dataset_leaves_room_to_optimise(
    example: ModuleType, config: dict[str, Any], tmp_path: Path
) -> None:
    default = example.objective(_ctx(config, tmp_path / "default", {}))
    demo = example.objective(_ctx(config, tmp_path / "demo"))
    for value in (default, demo):
        assert 0.3 <= value <= 0.98
    assert demo > default  # the search space holds better settings than the defaults


def test_same_params_and_seed_give_the_same_score(
    example: ModuleType, config: dict[str, Any], tmp_path: Path
) -> None:
    first, second = Recorder(), Recorder()
    a = example.objective(_ctx(config, tmp_path / "a", seed=7, recorder=first))
    b = example.objective(_ctx(config, tmp_path / "b", seed=7, recorder=second))
    assert a == b
    assert first.reports == second.reports
    assert _metrics(tmp_path / "a")["per_type"] == _metrics(tmp_path / "b")["per_type"]


def test_better_hyperparameters_beat_absurd_ones(
    example: ModuleType, config: dict[str, Any], tmp_path: Path
) -> None:
    good = example.objective(_ctx(config, tmp_path / "good"))
    # an enormous regularisation shrinks every weight to nothing: only "O" is predicted
    absurd = example.objective(_ctx(config, tmp_path / "absurd", {**DEMO_PARAMS, "alpha": 10.0}))
    assert absurd < good
    assert absurd < 0.1
    # no context at all (no window, no affixes) is worse too
    blind = example.objective(
        _ctx(config, tmp_path / "blind", {**DEMO_PARAMS, "window": 0, "affix": 0})
    )
    assert blind < good


def test_a_pruned_trial_stops_at_the_report(
    example: ModuleType, config: dict[str, Any], tmp_path: Path
) -> None:
    steps: list[int] = []

    def prune_at_step_1(step: int, value: float) -> None:
        steps.append(step)
        if step == 1:
            raise TrialPrunedError(f"pruned at step {step}")

    ctx = _ctx(config, tmp_path / "pruned")
    ctx._report = prune_at_step_1
    with pytest.raises(TrialPrunedError):
        example.objective(ctx)
    assert steps == [0, 1]
    assert not (tmp_path / "pruned" / "metrics.json").exists()


# ---- k-fold and refit -----------------------------------------------------------------------


def test_each_fold_trains_on_its_own_split(
    example: ModuleType, config: dict[str, Any], tmp_path: Path
) -> None:
    holdout = example.objective(_ctx(config, tmp_path / "holdout"))
    values = []
    dev_sizes = []
    for index in range(3):
        recorder = Recorder()
        out = tmp_path / f"fold-{index}"
        fold = FoldInfo(index=index, n_splits=3, seed=42, shuffle=True, stratified=True)
        values.append(example.objective(_ctx(config, out, fold=fold, recorder=recorder)))
        metrics = _metrics(out)
        assert metrics["mode"] == "fold"
        assert metrics["eval_split"] == f"fold-{index}"
        assert metrics["fold"]["index"] == index
        assert metrics["n_fit_docs"] + metrics["n_eval_docs"] == 64  # the train part only
        assert len(recorder.reports) == 5
        dev_sizes.append(metrics["n_eval_docs"])
    assert all(0.0 < v <= 1.0 for v in values)
    assert sum(dev_sizes) == 64  # the folds partition the 64 training resumes
    assert len(set(values)) == 3
    assert holdout not in values


def test_folds_depend_on_the_fold_seed_and_work_unshuffled(
    example: ModuleType, config: dict[str, Any], tmp_path: Path
) -> None:
    def score(seed: int, shuffle: bool) -> float:
        fold = FoldInfo(index=0, n_splits=3, seed=seed, shuffle=shuffle)
        value: float = example.objective(_ctx(config, tmp_path / f"{seed}-{shuffle}", fold=fold))
        return value

    assert score(1, True) != score(2, True)
    assert score(1, False) == score(2, False)  # unshuffled folds ignore the seed


@pytest.mark.parametrize(
    ("index", "n_splits", "match"),
    [
        (3, 3, "fold.index must be between 0 and 2; got 3"),
        (-1, 3, "fold.index must be between 0 and 2; got -1"),
        (0, 65, "fold.n_splits must be between 2 and the 64 training documents; got 65"),
    ],
)
def test_a_bad_fold_raises(
    example: ModuleType,
    config: dict[str, Any],
    tmp_path: Path,
    index: int,
    n_splits: int,
    match: str,
) -> None:
    fold = FoldInfo(index=index, n_splits=n_splits, seed=42)
    with pytest.raises(ValueError, match=match):
        example.objective(_ctx(config, tmp_path, fold=fold))


def test_refit_trains_on_all_training_data_and_scores_the_test_split(
    example: ModuleType, config: dict[str, Any], tmp_path: Path
) -> None:
    recorder = Recorder()
    # a refit ignores the fold: it is the final model on the whole train part
    fold = FoldInfo(index=0, n_splits=3, seed=42)
    value = example.objective(
        _ctx(config, tmp_path / "refit", fold=fold, refit=True, recorder=recorder)
    )
    assert 0.3 <= value <= 1.0
    metrics = _metrics(tmp_path / "refit")
    assert (metrics["mode"], metrics["eval_split"]) == ("refit", "test")
    assert (metrics["n_fit_docs"], metrics["n_eval_docs"]) == (64, 16)
    assert len(recorder.reports) == 5

    import joblib

    bundle = joblib.load(tmp_path / "refit" / "model.joblib")
    assert bundle["config"]["alpha"] == DEMO_PARAMS["alpha"]
    assert (tmp_path / "refit" / "model.joblib").stat().st_size < 2_000_000


def test_a_context_without_callbacks_works(
    example: ModuleType, config: dict[str, Any], tmp_path: Path
) -> None:
    ctx = TrialContext(
        params={"epochs": 1},
        config=config,
        output_dir=tmp_path,
        project_root=EXAMPLE,
        config_dir=CONFIG_DIR,
    )
    assert 0.0 < example.objective(ctx) <= 1.0


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"alpha": -1.0}, "alpha must be a finite number > 0; got -1.0"),
        ({"alpha": "big"}, "hyperparameter 'alpha' must be a number; got 'big'"),
        ({"alpha": float("nan")}, "hyperparameter 'alpha' must be finite"),
        ({"loss": "squared_error"}, "loss must be one of .*; got 'squared_error'"),
        ({"window": 2.5}, "hyperparameter 'window' must be a whole number; got 2.5"),
        ({"window": 9}, "window must be between 0 and 5; got 9"),
        ({"min_count": 0}, "min_count must be between 1 and 1000; got 0"),
        ({"epochs": True}, "hyperparameter 'epochs' must be a number; got True"),
        ({"class_weight": "auto"}, "class_weight must be one of none, balanced; got 'auto'"),
        ({"scheme": "bilou"}, "scheme must be one of bio, io; got 'bilou'"),
        ({"learning_rate": 1e-5}, "unknown hyperparameter.*'learning_rate'"),
    ],
)
def test_a_bad_hyperparameter_raises_naming_it(
    example: ModuleType,
    config: dict[str, Any],
    tmp_path: Path,
    params: dict[str, Any],
    match: str,
) -> None:
    with pytest.raises(ValueError, match=match):
        example.objective(_ctx(config, tmp_path / "bad", {**DEMO_PARAMS, **params}))
    assert not (tmp_path / "bad").exists()  # refused before any work


def test_whole_number_floats_and_null_choices_are_accepted(example: ModuleType) -> None:
    cfg = example.tagger_config({"window": 2.0, "class_weight": None}, seed=3)
    assert (cfg.window, cfg.class_weight, cfg.seed) == (2, "none", 3)


def test_a_missing_dataset_is_a_clear_error(
    example: ModuleType, config: dict[str, Any], tmp_path: Path
) -> None:
    broken = {**config, "data": {**config["data"], "local_path": str(tmp_path / "nowhere")}}
    with pytest.raises(FileNotFoundError, match="nowhere"):
        example.objective(_ctx(broken, tmp_path / "out"))


# ---- the demo sweep config ------------------------------------------------------------------


def test_demo_hpo_config_matches_the_objective(example: ModuleType) -> None:
    raw = yaml.safe_load((CONFIG_DIR / "hpo" / "demo.yaml").read_text(encoding="utf-8"))
    hpo = HpoSpec.model_validate(raw)
    assert raw["objective"]["entrypoint"] == "resume_ner.objective:objective"
    module, _, name = raw["objective"]["entrypoint"].partition(":")
    assert getattr(importlib.import_module(module), name) is example.objective
    assert hpo.objective.metric == "macro-f1"
    assert hpo.objective.direction == "maximize"
    assert hpo.sampling.seed is not None  # reproducible
    assert 10 <= hpo.sampling.max_trials <= 15
    assert hpo.early_termination.policy == "median"
    # every name is a hyperparameter the objective reads, and every edge value is accepted
    assert set(hpo.search_space) <= set(example.PARAMS)
    for name, spec in hpo.search_space.items():
        values = spec.values if spec.type == "choice" else [spec.min, spec.max]
        for value in values or []:
            example.tagger_config({name: value}, seed=0)


# ---- the model's pieces ---------------------------------------------------------------------


def test_tokens_keep_offsets_and_entity_boundaries(model: ModuleType) -> None:
    text = "Jordan Lopez\njordan.lopez@proton.me • +1 (535) 911-9638, C++ & Node.js."
    tokens = model.tokenize(text)
    assert all(text[t.start : t.end] == t.text for t in tokens)
    assert [t.text for t in tokens] == [
        "Jordan", "Lopez", "jordan.lopez@proton.me", "•", "+", "1", "(", "535", ")",
        "911-9638", ",", "C++", "&", "Node.js", ".",
    ]  # fmt: skip
    entities = [
        {"start": 0, "end": 12, "label": "NAME"},
        {"start": 13, "end": 35, "label": "EMAIL"},
        {"start": 38, "end": 55, "label": "PHONE"},
    ]
    tags = model.tag_tokens(tokens, entities, "bio")
    assert tags[:10] == ["B-NAME", "I-NAME", "B-EMAIL", "O", "B-PHONE"] + ["I-PHONE"] * 5
    assert model.decode_entities(text, tokens, tags) == [
        (0, 12, "NAME"),
        (13, 35, "EMAIL"),
        (38, 55, "PHONE"),
    ]


@pytest.mark.parametrize("scheme", ["bio", "io"])
def test_gold_tags_decode_back_to_the_gold_entities(model: ModuleType, scheme: str) -> None:
    records = importlib.import_module("resume_ner.dataset").load_dataset(EXAMPLE / "dataset_tiny")
    gold = [model.gold_entities(r) for r in records]
    decoded = []
    for record in records:
        tokens = model.tokenize(record["text"])
        tags = model.tag_tokens(tokens, record["entities"], scheme)
        decoded.append(model.decode_entities(record["text"], tokens, tags))
    scores = model.score_entities(gold, decoded)
    # the tokeniser splits at every entity boundary, so the tags lose nothing (an upper bound)
    assert scores.macro_f1 == scores.micro_f1 == 1.0


def test_entity_scores_are_exact_match_and_macro_averaged(model: ModuleType) -> None:
    span = model.Span
    gold = [[span(0, 5, "NAME"), span(10, 15, "SKILL"), span(20, 25, "SKILL")]]
    predicted = [[span(0, 5, "NAME"), span(10, 14, "SKILL"), span(20, 25, "COMPANY")]]
    scores = model.score_entities(gold, predicted)
    assert scores.f1["NAME"] == 1.0
    assert scores.f1["SKILL"] == 0.0  # a boundary off by one is a miss
    assert scores.f1["COMPANY"] == 0.0  # a false positive of a type without gold
    assert scores.macro_f1 == pytest.approx(1 / 3)  # over NAME, SKILL, COMPANY
    assert scores.micro_f1 == pytest.approx(2 * 1 / (3 + 3))
