"""The specification's metadata functions on the example project, and the metadata index:
written with the metadata, queried by the finders, rebuilt from the files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlinfra.errors import MetadataCorruptError
from mlinfra.metadata import (
    SCHEMA,
    find_by_env,
    find_by_model,
    find_by_spec_and_env,
    find_by_spec_fp,
    find_metadata_by_spec_fp,
    get_latest_entry,
    load_metadata_by_fingerprints,
    output_folder,
    output_key,
    read_metadata,
    rebuild_metadata_index,
    save_metadata_with_fingerprints,
    update_metadata,
    update_metadata_index,
    update_status,
)
from mlinfra.naming import NamingContext, create_naming_context
from mlinfra.paths import build_output_path
from mlinfra.registry import SqlRegistry, open_registry

SPEC, EXEC, CONV = "1" * 64, "2" * 64, "3" * 64


def _ctx(**changes: object) -> NamingContext:
    values: dict[str, object] = {
        "process_type": "final_training",
        "model": "distilbert",
        "spec_fp": SPEC,
        "exec_fp": EXEC,
        "environment": "local",
    }
    values.update(changes)
    return create_naming_context(**values)  # type: ignore[arg-type]


def test_save_metadata_with_fingerprints_writes_the_folder_and_the_index(
    example_project: Path, config_dir: Path
) -> None:
    ctx = _ctx(variant=2)
    path = save_metadata_with_fingerprints(
        example_project,
        config_dir,
        ctx,
        {
            "trial_id": "t3",
            "trial_name": "trial_3",
            "fingerprints": {"config": "c" * 64, "data": "d" * 32},
            "fingerprint_details": {"config": {"volatile": ["output_dir"]}},
        },
        {"training": {"completed": True, "checkpoint_path": "checkpoint"}},
        mlflow_info={"run_id": "r1", "experiment_id": "4"},
        notes="first",
        environ={},
    )
    assert path == build_output_path(example_project, ctx, config_dir=config_dir) / "metadata.json"
    meta = read_metadata(path)
    assert meta["schema"] == SCHEMA
    assert (meta["spec_fp"], meta["exec_fp"], meta["variant"]) == (SPEC, EXEC, 2)
    assert (meta["model"], meta["environment"], meta["process_type"]) == (
        "distilbert",
        "local",
        "final_training",
    )
    assert meta["lineage"] == {
        "hpo_trial": "trial_3",
        "hpo_trial_id": "t3",
        "hpo_trial_name": "trial_3",
    }
    assert meta["parent_hpo_trial"] == "trial_3"
    assert meta["fingerprints"] == {"config": "c" * 64, "data": "d" * 32}
    assert meta["fingerprint_details"]["config"] == {"volatile": ["output_dir"]}
    assert meta["status"]["training"]["completed"] is True
    assert meta["status"]["training"]["completed_at"].endswith("Z")
    assert meta["mlflow"] == {"run_id": "r1", "experiment_id": "4"}
    assert "mlflow_info" not in meta
    assert meta["notes"] == "first"

    (entry,) = find_by_spec_fp(example_project, SPEC, environ={}, config_dir=config_dir)
    assert entry.path == output_key(path.parent, example_project)
    assert not Path(entry.path).is_absolute()
    assert output_folder(entry, example_project) == path.parent
    assert (entry.run_id, entry.variant, entry.trial_id) == ("r1", 2, "t3")
    assert entry.status["training"]["completed"] is True

    # writing again updates the one entry
    save_metadata_with_fingerprints(
        example_project,
        config_dir,
        ctx,
        status_updates={"benchmarking": {"completed": True}},
        environ={},
    )
    (again,) = find_by_spec_fp(example_project, SPEC, "final_training", environ={})
    assert again.status["benchmarking"]["completed"] is True
    assert again.status["training"]["completed"] is True  # merged, not replaced
    assert again.updated_at is not None and entry.updated_at is not None
    assert again.updated_at >= entry.updated_at


def test_save_without_index_writes_no_registry(example_project: Path) -> None:
    path = save_metadata_with_fingerprints(
        example_project, None, _ctx(), {}, index=False, environ={}
    )
    assert path.is_file()
    assert not (example_project / "outputs" / "cache" / "mlinfra_registry.db").exists()


def test_finders_filter_and_order_newest_first(example_project: Path) -> None:
    with open_registry(example_project, environ={}) as reg:
        for variant in (1, 2, 3):
            save_metadata_with_fingerprints(
                example_project, None, _ctx(variant=variant), registry=reg
            )
        save_metadata_with_fingerprints(
            example_project, None, _ctx(environment="colab", model="deberta"), registry=reg
        )
        save_metadata_with_fingerprints(
            example_project,
            None,
            _ctx(process_type="conversion", conv_fp=CONV, parent_training_id=None),
            registry=reg,
        )
        variants = [
            e.variant
            for e in find_by_spec_fp(example_project, SPEC, "final_training", registry=reg)
        ]
        assert variants == [1, 3, 2, 1]
        assert [e.model for e in find_by_env(example_project, "colab", registry=reg)] == ["deberta"]
        assert len(find_by_model(example_project, "distilbert", registry=reg)) == 4
        assert [
            e.process_type
            for e in find_by_model(example_project, "distilbert", "conversion", registry=reg)
        ] == ["conversion"]
        local = find_by_spec_and_env(
            example_project, SPEC, "local", "final_training", exec_fp=EXEC, registry=reg
        )
        assert [e.variant for e in local] == [3, 2, 1]
        assert (
            find_by_spec_and_env(example_project, SPEC, "local", exec_fp="9" * 64, registry=reg)
            == []
        )

        # newest by last update: touching variant 2 makes it the latest
        update_status(
            output_folder(local[1], example_project),
            "training",
            completed=True,
            registry=reg,
            root_dir=example_project,
        )
        latest = get_latest_entry(
            example_project, "final_training", registry=reg, spec_fp=SPEC, environment="local"
        )
        assert latest is not None and latest.variant == 2
        assert get_latest_entry(example_project, "hpo", registry=reg) is None


def test_load_metadata_by_fingerprints(example_project: Path) -> None:
    path = save_metadata_with_fingerprints(
        example_project, None, _ctx(variant=2), index=False, environ={}
    )
    assert load_metadata_by_fingerprints(path, SPEC, EXEC)["variant"] == 2  # type: ignore[index]
    assert load_metadata_by_fingerprints(path.parent, SPEC, EXEC, 2) is not None
    assert load_metadata_by_fingerprints(path, SPEC, EXEC, 1) is None
    assert load_metadata_by_fingerprints(path, SPEC, "9" * 64) is None
    assert load_metadata_by_fingerprints(path.parent / "nowhere", SPEC, EXEC) is None


def test_find_metadata_by_spec_fp_scans_only_without_a_registry(example_project: Path) -> None:
    first = save_metadata_with_fingerprints(
        example_project, None, _ctx(variant=1), index=False, environ={}
    )
    second = save_metadata_with_fingerprints(
        example_project, None, _ctx(variant=2), index=False, environ={}
    )
    save_metadata_with_fingerprints(
        example_project, None, _ctx(spec_fp="4" * 64), index=False, environ={}
    )
    db = example_project / "outputs" / "cache" / "mlinfra_registry.db"
    assert find_metadata_by_spec_fp(example_project, SPEC, "final_training", environ={}) == [
        second,
        first,
    ]
    assert find_metadata_by_spec_fp(example_project, SPEC, "conversion", environ={}) == []
    assert not db.exists()  # the scan created no registry

    # once the project has a registry, the index answers: folders not in it are not found
    with open_registry(example_project, environ={}) as reg:
        update_metadata_index(first.parent, reg, root_dir=example_project)
    assert find_metadata_by_spec_fp(example_project, SPEC, "final_training", environ={}) == [first]
    # an entry whose folder is gone is left out
    shutil.rmtree(first.parent)
    assert find_metadata_by_spec_fp(example_project, SPEC, "final_training", environ={}) == []


def test_scan_reports_a_corrupt_file(example_project: Path) -> None:
    path = save_metadata_with_fingerprints(example_project, None, _ctx(), index=False, environ={})
    path.write_text("{broken", encoding="utf-8")
    with pytest.raises(MetadataCorruptError):
        find_metadata_by_spec_fp(example_project, SPEC, "final_training", environ={})


def test_rebuild_metadata_index_from_a_tree(example_project: Path, registry: SqlRegistry) -> None:
    root = example_project
    made = [
        save_metadata_with_fingerprints(
            root,
            None,
            _ctx(variant=v),
            {"mlflow_info": {"run_id": f"r{v}"}},
            index=False,
            environ={},
        )
        for v in (1, 2)
    ]
    conv = save_metadata_with_fingerprints(
        root, None, _ctx(process_type="conversion", conv_fp=CONV), index=False, environ={}
    )
    # a legacy file of the specification's system: no schema, no process_type, mlflow_info
    legacy = root / "outputs" / "hpo" / "local" / "distilbert" / "study-aaaaaaaa" / "refit"
    legacy.mkdir(parents=True)
    (legacy / "metadata.json").write_text(
        json.dumps(
            {
                "model": "distilbert",
                "spec_fp": SPEC,
                "last_updated": "2024-01-01T00:00:00",
                "mlflow_info": {"run_id": "old"},
            }
        ),
        encoding="utf-8",
    )
    corrupt = root / "outputs" / "benchmarking" / "local" / "x"
    corrupt.mkdir(parents=True)
    (corrupt / "metadata.json").write_text("[]", encoding="utf-8")
    before = (corrupt / "metadata.json").read_bytes()
    # an entry for a folder that no longer exists
    registry.upsert_output(registry_entry("outputs/final_training/gone"))

    report = rebuild_metadata_index(root, registry=registry, environ={})
    assert report.indexed == 4
    assert len(report.skipped) == 1 and "benchmarking" in report.skipped[0]
    assert (corrupt / "metadata.json").read_bytes() == before  # left as it is
    assert report.removed == 0  # prune is off by default

    by_path = {e.path: e for e in registry.find_outputs()}
    assert by_path[output_key(made[0].parent, root)].run_id == "r1"
    assert by_path[output_key(conv.parent, root)].process_type == "conversion"
    old = by_path[output_key(legacy, root)]
    assert (old.process_type, old.run_id) == ("hpo_refit", "old")  # guessed from the folder
    assert old.updated_at is not None and old.updated_at.tzinfo is not None

    # rebuilding again adds no duplicates; prune drops the vanished folder
    again = rebuild_metadata_index(root, registry=registry, environ={}, prune=True)
    assert (again.indexed, again.removed) == (4, 1)
    assert len(registry.find_outputs()) == 4
    assert legacy.joinpath("metadata.json").read_text(encoding="utf-8").find("schema") == -1


def registry_entry(path: str) -> object:
    from mlinfra.registry import OutputEntry

    return OutputEntry(path, process_type="final_training")


def test_update_metadata_index_follows_the_file(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    folder = root / "outputs" / "x"
    with SqlRegistry(f"sqlite:///{tmp_path / 'r.db'}") as reg:
        update_metadata(folder, {"spec_fp": SPEC, "variant": "3"}, registry=reg, root_dir=root)
        entry = update_metadata_index(folder, reg, root_dir=root)
        assert entry is not None and (entry.path, entry.variant) == ("outputs/x", 3)
        (folder / "metadata.json").unlink()
        assert update_metadata_index(folder, reg, root_dir=root) is None
        assert reg.find_outputs() == []
    assert output_key(tmp_path / "elsewhere", root) == (tmp_path / "elsewhere").as_posix()
    assert output_folder("outputs/x", root) == folder
