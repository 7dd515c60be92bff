"""What a user's objective receives: :class:`TrialContext`.

An objective is a plain function named in the HPO config (``objective.entrypoint:
package.module:function``)::

    def objective(ctx: TrialContext) -> float:
        model = train(ctx.config["data"], **ctx.params, fold=ctx.fold)
        for epoch in range(3):
            ctx.report(epoch, score(model))     # lets the pruner stop a hopeless trial
        ctx.log_metrics({"train_seconds": 12.3})
        return score(model)                     # the metric the study optimises

With k-fold cross-validation enabled, the objective is called once per fold (``ctx.fold`` says
which) and the trial's value is the mean of the folds' values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FoldInfo", "TrialContext", "TrialPrunedError"]


class TrialPrunedError(Exception):
    """Raised by :meth:`TrialContext.report` when the pruner stops the trial; let it propagate.

    It is Optuna's ``TrialPruned`` at run time (this class is its stand-in for type checkers and
    for code that runs without a study, such as a refit).
    """


@dataclass(frozen=True)
class FoldInfo:
    """One fold of k-fold cross-validation.

    Attributes:
        index: The fold, ``0`` to ``n_splits - 1``.
        n_splits: How many folds there are.
        seed: The seed that shuffles examples into folds (the same for every trial).
        shuffle: Whether examples are shuffled before splitting.
        stratified: Whether folds keep the label proportions.
    """

    index: int
    n_splits: int
    seed: int
    shuffle: bool = True
    stratified: bool = False


@dataclass
class TrialContext:
    """Everything one call of the objective needs.

    Attributes:
        params: The sampled hyperparameters (names from ``search_space``).
        config: The resolved experiment configuration (a plain dict, keyed by domain: ``data``,
            ``model``, ``train``, ``hpo``, ``env``, ...), with ``params`` not applied: the
            objective decides how a parameter maps onto its model.
        output_dir: The trial's output folder (created; fold calls get a ``fold-<i>`` sub-folder).
        project_root: The project root; relative data paths in the config are relative to the
            config folder, ``project_root / "config"`` by default.
        config_dir: The config folder.
        trial_number: The Optuna trial number (``None`` for a refit).
        fold: The fold of this call, or ``None`` without cross-validation.
        refit: ``True`` when the best trial is retrained on all the data.
        run_id: The MLflow run of this call (the fold's run with cross-validation).
        seed: A seed for this trial (``sampling.seed`` plus the trial number, or the trial
            number), so reruns of one trial are reproducible.
    """

    params: dict[str, Any]
    config: dict[str, Any]
    output_dir: Path
    project_root: Path
    config_dir: Path
    trial_number: int | None = None
    fold: FoldInfo | None = None
    refit: bool = False
    run_id: str | None = None
    seed: int = 0
    _report: Callable[[int, float], None] | None = field(default=None, repr=False)
    _log_metrics: Callable[[Mapping[str, float], int | None], None] | None = field(
        default=None, repr=False
    )

    def report(self, step: int, value: float) -> None:
        """Report an intermediate value (for example the metric after an epoch).

        The value is logged to the run as the metric ``intermediate`` at ``step``; the pruner
        may then stop the trial by raising Optuna's ``TrialPruned`` (let it propagate). Within a
        cross-validation fold, values are only logged: pruning happens between folds, on the
        running mean.
        """
        if self._report is not None:
            self._report(int(step), float(value))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metrics to this call's MLflow run."""
        if self._log_metrics is not None:
            self._log_metrics(metrics, step)

    def data_path(self, key: str = "data.local_path") -> Path:
        """A path from the config, made absolute against the config folder (``..`` allowed).

        Raises:
            KeyError: the key is not in the config.
        """
        value: Any = self.config
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise KeyError(key)
            value = value[part]
        path = Path(str(value))
        return path if path.is_absolute() else (self.config_dir / path).resolve()
