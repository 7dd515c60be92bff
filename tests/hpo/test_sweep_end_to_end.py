"""A short sweep of a real objective, in process: Optuna storage, MLflow runs, folders, metadata.

Also a rerun (nothing new: same best trial, no new MLflow run), k-fold trials (fold runs under
each trial run, the mean as the trial's value) and the refit of the best trial (made once).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest

FP_TAGS = (
    "code.fingerprint.code",
    "code.fingerprint.config",
    "code.fingerprint.data",
    "code.fingerprint.env",
)
METRIC = "macro-f1"
COMPLETE = optuna.trial.TrialState.COMPLETE


def _metadata(folder: Path) -> dict[str, Any]:
    path = folder / "metadata.json"
    assert path.is_file(), f"no metadata.json in {folder}"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.slow
def test_sweep_runs_links_and_folders(hpo_project: Any) -> None:
    result = hpo_project.sweep("fast", max_trials=4)

    assert (result.finished, result.completed, result.pruned, result.failed) == (4, 4, 0, 0)
    assert result.new_trials == 4
    assert result.stopped is None
    study = hpo_project.study(result.storage_url, result.study_name)
    trials = study.get_trials()
    assert [t.state for t in trials] == [COMPLETE] * 4
    assert result.best_number == study.best_trial.number
    assert result.best_value == pytest.approx(study.best_value)
    assert study.user_attrs["mlflow_parent_run_id"] == result.parent_run_id
    assert result.storage_url == f"sqlite:///{result.study_dir / 'study.db'}"

    runs = hpo_project.runs(result.experiment_name)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in parents] == [result.parent_run_id]
    parent = parents[0]
    assert parent.info.run_name == result.parent_run_name
    assert parent.info.status == "FINISHED"
    children = hpo_project.children(runs, result.parent_run_id)
    assert len(children) == 4 == len(runs) - 1
    names = [r.info.run_name for r in children]
    assert len(set(names)) == 4, names
    assert all(r.info.status == "FINISHED" for r in children)

    # the study folder: metadata of the parent run, fingerprints as tags
    meta = _metadata(result.study_dir)
    assert meta["mlflow"]["run_id"] == result.parent_run_id
    fingerprints = meta["fingerprints"]
    for tag in FP_TAGS:
        assert parent.data.tags.get(tag) == fingerprints[tag.rsplit(".", 1)[1]], tag
    assert parent.data.metrics["finished_trials"] == 4

    by_id = {r.info.run_id: r for r in children}
    linked = set()
    for trial in trials:
        run_id = trial.user_attrs["mlflow_run_id"]
        run = by_id[run_id]  # trial -> run
        linked.add(run_id)
        assert run.info.run_name == trial.user_attrs["mlflow_run_name"]
        assert run.data.tags["code.hpo.trial_number"] == str(trial.number)  # run -> trial
        assert run.data.metrics[METRIC] == pytest.approx(trial.value)
        assert float(run.data.params["learning_rate"]) == pytest.approx(
            trial.params["learning_rate"]
        )
        assert run.data.tags["mlinfra.trial_state"] == "COMPLETE"
        for tag in FP_TAGS:
            assert run.data.tags.get(tag) == parent.data.tags[tag], tag
        folder = hpo_project.root / run.data.tags["code.output_dir"]  # run -> folder
        assert folder.parent == result.study_dir
        record = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        assert record["params"] == trial.params
        assert record["trial"] == trial.number
        assert record["run_id"] == run_id
        assert record["value"] == pytest.approx(trial.value)
        trial_meta = _metadata(folder)
        assert trial_meta["mlflow"]["run_id"] == run_id
        assert trial_meta["fingerprints"] == fingerprints
    assert linked == set(by_id)  # every child run belongs to exactly one trial
    best = study.best_trial
    assert result.best_run_name == best.user_attrs["mlflow_run_name"]
    best_run = by_id[best.user_attrs["mlflow_run_id"]]
    assert result.best_output_dir == str(hpo_project.root / best_run.data.tags["code.output_dir"])


def test_rerun_adds_nothing(hpo_project: Any) -> None:
    first = hpo_project.sweep("fast", max_trials=3)
    before = {r.info.run_id for r in hpo_project.all_runs()}
    assert len(before) == 4  # the sweep and its 3 trials

    again = hpo_project.sweep("fast", max_trials=3)

    assert again.new_trials == 0
    assert again.finished == 3
    assert (again.study_dir, again.storage_url) == (first.study_dir, first.storage_url)
    assert again.parent_run_id == first.parent_run_id
    assert (again.best_number, again.best_value, again.best_params) == (
        first.best_number,
        first.best_value,
        first.best_params,
    )
    assert again.best_run_name == first.best_run_name
    after = hpo_project.all_runs()
    assert {r.info.run_id for r in after} == before
    assert len(hpo_project.study(first.storage_url, first.study_name).get_trials()) == 3


def test_k_fold_trials_have_fold_runs_and_mean_value(hpo_project: Any) -> None:
    result = hpo_project.sweep(
        "fast", "hpo.k_fold.enabled=true", "+hpo.k_fold.n_splits=2", max_trials=2
    )

    assert (result.finished, result.completed) == (2, 2)
    study = hpo_project.study(result.storage_url, result.study_name)
    runs = hpo_project.runs(result.experiment_name)
    trial_runs = hpo_project.children(runs, result.parent_run_id)
    assert len(trial_runs) == 2
    assert len(runs) == 1 + 2 + 2 * 2  # sweep, trials, folds
    for trial in study.get_trials():
        run_id = trial.user_attrs["mlflow_run_id"]
        folds = hpo_project.children(runs, run_id)  # grandchildren of the sweep
        assert len(folds) == 2
        assert len({r.info.run_name for r in folds}) == 2
        values = sorted(r.data.metrics[METRIC] for r in folds)
        base = trial.params["learning_rate"] * 1e4
        assert values == pytest.approx([base, base + 1])  # fold i adds i (see the objective)
        assert trial.value == pytest.approx(sum(values) / 2)
        assert trial.value == pytest.approx(base + 0.5)
        trial_run = next(r for r in trial_runs if r.info.run_id == run_id)
        folder = hpo_project.root / trial_run.data.tags["code.output_dir"]
        for index in range(2):
            record = json.loads((folder / f"fold-{index}" / "result.json").read_text("utf-8"))
            assert record["fold"] == index
            assert record["params"] == trial.params
            assert record["run_id"] in {r.info.run_id for r in folds}
    all_names = [r.info.run_name for r in runs]
    assert len(set(all_names)) == len(all_names)


@pytest.mark.slow
def test_refit_runs_once(hpo_project: Any) -> None:
    result = hpo_project.sweep("fast", "hpo.refit.enabled=true", max_trials=2)

    assert result.refit_run_name
    runs = hpo_project.runs(result.experiment_name)
    refits = [r for r in runs if r.info.run_name == result.refit_run_name]
    assert len(refits) == 1
    refit = refits[0]
    assert refit.info.status == "FINISHED"
    assert refit.data.tags["mlflow.parentRunId"] == result.parent_run_id
    study = hpo_project.study(result.storage_url, result.study_name)
    best = study.best_trial
    assert refit.data.tags["code.lineage.hpo_trial_run_id"] == best.user_attrs["mlflow_run_id"]
    assert float(refit.data.params["learning_rate"]) == pytest.approx(best.params["learning_rate"])
    assert refit.data.metrics[METRIC] == pytest.approx(best.value)
    assert len(runs) == 1 + 2 + 1
    files = (hpo_project.root / "outputs").rglob("result.json")
    records = [json.loads(p.read_text(encoding="utf-8")) for p in files]
    refit_records = [r for r in records if r["refit"] is True]
    assert len(records) == 3
    assert len(refit_records) == 1
    assert refit_records[0]["run_id"] == refit.info.run_id
    assert refit_records[0]["trial"] is None

    again = hpo_project.sweep("fast", "hpo.refit.enabled=true", max_trials=2)

    assert again.new_trials == 0
    assert again.refit_run_name == result.refit_run_name
    assert {r.info.run_id for r in hpo_project.runs(result.experiment_name)} == {
        r.info.run_id for r in runs
    }


def test_seeded_sweep_resumed_samples_new_params(hpo_project: Any) -> None:
    seeded = "+hpo.sampling.seed=7"
    hpo_project.sweep("fast", seeded, max_trials=2)
    result = hpo_project.sweep("fast", seeded, max_trials=4)  # the same study, a larger budget

    assert (result.finished, result.new_trials) == (4, 2)
    trials = hpo_project.study(result.storage_url, result.study_name).get_trials()
    rates = [t.params["learning_rate"] for t in trials]
    assert len(set(rates)) == 4, rates
    children = hpo_project.children(hpo_project.runs(result.experiment_name), result.parent_run_id)
    assert len(children) == 4
    assert len({t.user_attrs["mlflow_run_id"] for t in trials}) == 4


def test_why_between_two_trials_of_a_sweep(
    hpo_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trial runs carry fingerprint tags, their folders the record; without the folder's
    metadata, the sweep run's shared record answers (the hashes agree)."""
    from click.testing import CliRunner

    from mlinfra.cli.main import cli

    result = hpo_project.sweep("fast", max_trials=2)
    trials = hpo_project.children(hpo_project.runs(result.experiment_name), result.parent_run_id)
    first, second = (r.info.run_id for r in trials)
    for name, value in hpo_project.env().items():
        monkeypatch.setenv(name, value)
    args = ["fingerprint", "--project", str(hpo_project.root), "--why", first, second]
    same = CliRunner().invoke(cli, args)
    assert same.exit_code == 0, same.output
    assert "A and B identical." in same.output and "(hashes only)" not in same.output

    for run in trials:  # no folder metadata: the sweep's record is used
        (hpo_project.root / run.data.tags["code.output_dir"] / "metadata.json").unlink()
    shared = CliRunner().invoke(cli, args)
    assert shared.exit_code == 0, shared.output
    assert "(its sweep's record)" in shared.output and "A and B identical." in shared.output


def test_the_timeout_stops_starting_trials_and_is_not_a_failure(hpo_project: Any) -> None:
    from mlinfra.hpo.runner import TIMEOUT_REASON

    result = hpo_project.sweep("fast", "hpo.sampling.timeout_minutes=0.0001", max_trials=500)
    assert result.stopped == TIMEOUT_REASON and not result.failed_to_finish
    assert result.finished < 500
    args = hpo_project.hpo_args("fast", "hpo.sampling.timeout_minutes=0.0001", max_trials=500)
    rerun = hpo_project.cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert "stopped" in rerun.stdout and "timeout" in rerun.stdout


def test_backups_of_the_study_folder_as_trials_finish(hpo_project: Any, tmp_path: Path) -> None:
    import sqlite3

    drive = tmp_path / "MyDrive" / "project"
    result = hpo_project.sweep(
        "fast", "+hpo.backup.enabled=true", f"+hpo.backup.root={drive}", max_trials=3
    )
    study_dir = Path(result.study_dir)
    backup = drive / study_dir.relative_to(hpo_project.root)
    assert (backup / "study.db").is_file()
    with sqlite3.connect(backup / "study.db") as db:  # a consistent snapshot: every trial is in
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone() == (3,)
    trial_dirs = sorted(p.name for p in study_dir.iterdir() if p.name.startswith("trial-"))
    assert sorted(p.name for p in backup.iterdir() if p.name.startswith("trial-")) == trial_dirs


def test_backups_enabled_without_a_root_off_colab_is_a_clear_error(hpo_project: Any) -> None:
    from mlinfra.errors import ConfigError

    with pytest.raises(ConfigError, match=r"backup.root"):
        hpo_project.sweep("fast", "+hpo.backup.enabled=true", max_trials=1)
