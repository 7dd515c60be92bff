"""``metadata.json``: round trip, deep merge, schema and corrupt files, legacy files, status."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from mlinfra.errors import MetadataCorruptError, MetadataError, MetadataSchemaError
from mlinfra.metadata import (
    SCHEMA,
    are_conversion_artifacts_uploaded,
    are_training_artifacts_uploaded,
    get_checkpoint_path,
    get_mlflow_info,
    get_onnx_model_path,
    is_benchmarking_complete,
    is_conversion_complete,
    is_training_complete,
    metadata_path,
    read_metadata,
    update_metadata,
    update_mlflow_info_in_metadata,
    update_status,
)

UTC = dt.timezone.utc


def _utc(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_round_trip_sets_schema_and_utc_timestamps(tmp_path: Path) -> None:
    folder = tmp_path / "out" / "v1"  # created on the first update
    before = dt.datetime.now(UTC)
    written = update_metadata(folder, {"model": "distilbert", "variant": 1, "p": Path("a/b")})
    assert written["schema"] == SCHEMA
    assert written["p"] == "a/b"
    assert read_metadata(folder) == written
    assert json.loads((folder / "metadata.json").read_text(encoding="utf-8")) == written
    created = _utc(written["created_at"])
    assert before - dt.timedelta(seconds=5) <= created <= dt.datetime.now(UTC)

    again = update_metadata(folder, {"variant": 2})
    assert again["created_at"] == written["created_at"]  # first write only
    assert _utc(again["last_updated"]) >= _utc(written["last_updated"])
    assert again["model"] == "distilbert" and again["variant"] == 2


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    assert read_metadata(tmp_path) == {}
    assert read_metadata(tmp_path / "nowhere") == {}
    assert metadata_path(tmp_path) == tmp_path / "metadata.json"
    assert metadata_path(tmp_path / "x_metadata.json") == tmp_path / "x_metadata.json"


def test_deep_merge_merges_mappings_and_replaces_the_rest(tmp_path: Path) -> None:
    update_metadata(tmp_path, {"a": {"b": 1, "c": {"d": 2}}, "tags": [1, 2], "keep": "x"})
    merged = update_metadata(tmp_path, {"a": {"c": {"e": 3}}, "tags": [3], "keep": None})
    assert merged["a"] == {"b": 1, "c": {"d": 2, "e": 3}}
    assert merged["tags"] == [3]  # lists replace
    assert merged["keep"] is None  # None is stored, not a deletion


def test_lock_file_is_kept_next_to_the_file(tmp_path: Path) -> None:
    update_metadata(tmp_path, {"a": 1})
    update_metadata(tmp_path, {"b": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata.json", "metadata.json.lock"]


@pytest.mark.parametrize(
    ("updates", "match"),
    [
        ({"schema": "x"}, "managed by mlinfra"),
        ({"created_at": "2020"}, "managed by mlinfra"),
        ({"x": float("nan")}, "JSON cannot hold"),
        ({"x": {"y": object()}}, r"x\.y is a object"),
        ({"x": dt.datetime(2024, 1, 1)}, "naive datetime"),
        ({"x": {1: "a"}}, "non-string key"),
    ],
)
def test_bad_updates_are_refused_and_nothing_is_written(
    tmp_path: Path, updates: dict[str, Any], match: str
) -> None:
    update_metadata(tmp_path, {"a": 1})
    before = (tmp_path / "metadata.json").read_bytes()
    with pytest.raises(MetadataError, match=match):
        update_metadata(tmp_path, updates)
    assert (tmp_path / "metadata.json").read_bytes() == before


def test_aware_datetimes_are_stored_in_utc(tmp_path: Path) -> None:
    moment = dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert update_metadata(tmp_path, {"at": moment})["at"] == "2024-05-01T12:00:00.000000Z"


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe{}", b'{"a": 1'],
    ids=["garbage", "empty", "list", "string", "not-utf8", "truncated"],
)
def test_corrupt_file_is_an_error_naming_it_and_is_not_overwritten(
    tmp_path: Path, content: bytes
) -> None:
    file = tmp_path / "metadata.json"
    file.write_bytes(content)
    with pytest.raises(MetadataCorruptError) as info:
        read_metadata(tmp_path)
    assert info.value.path == str(file)
    assert str(file) in str(info.value)
    with pytest.raises(MetadataCorruptError):
        update_metadata(tmp_path, {"a": 1})
    with pytest.raises(MetadataCorruptError):
        update_status(tmp_path, "training", completed=True)
    assert file.read_bytes() == content
    # the error crosses process boundaries intact
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is MetadataCorruptError and again.path == str(file)


@pytest.mark.parametrize("schema", ["mlinfra.metadata/2", "mlinfra.metadata/17"])
def test_newer_schema_says_to_upgrade_and_is_not_overwritten(tmp_path: Path, schema: str) -> None:
    file = tmp_path / "metadata.json"
    file.write_text(json.dumps({"schema": schema, "a": 1}), encoding="utf-8")
    before = file.read_bytes()
    with pytest.raises(MetadataSchemaError, match="upgrade mlinfra") as info:
        read_metadata(tmp_path)
    assert info.value.path == str(file)
    with pytest.raises(MetadataSchemaError, match="upgrade mlinfra"):
        update_metadata(tmp_path, {"b": 2})
    assert file.read_bytes() == before


@pytest.mark.parametrize("schema", ["other-tool/1", 3, "mlinfra.metadata/x"])
def test_unknown_schema_is_refused(tmp_path: Path, schema: object) -> None:
    file = tmp_path / "metadata.json"
    file.write_text(json.dumps({"schema": schema}), encoding="utf-8")
    before = file.read_bytes()
    with pytest.raises(MetadataSchemaError, match="unknown metadata schema"):
        update_metadata(tmp_path, {"b": 2})
    assert file.read_bytes() == before


LEGACY = {
    "spec_fp": "0123456789abcdef",
    "exec_fp": "fedcba9876543210",
    "variant": 1,
    "created_at": "2024-03-01T10:00:00.123456",
    "last_updated": "2024-03-01T11:00:00",
    "mlflow_info": {"run_id": "r1", "experiment_id": "7"},
    "status": {"training": {"completed": True, "completed_at": "2024-03-01T10:30:00"}},
}


def test_legacy_file_is_read_with_mlflow_info_as_mlflow(tmp_path: Path) -> None:
    file = tmp_path / "metadata.json"
    file.write_text(json.dumps(LEGACY), encoding="utf-8")
    before = file.read_bytes()
    meta = read_metadata(tmp_path)
    assert meta["mlflow"] == {"run_id": "r1", "experiment_id": "7"}
    assert "mlflow_info" not in meta and "schema" not in meta
    assert get_mlflow_info(LEGACY) == {"run_id": "r1", "experiment_id": "7"}
    assert get_mlflow_info(meta)["run_id"] == "r1"
    assert is_training_complete(tmp_path)
    local = dt.datetime.fromisoformat(str(LEGACY["created_at"])).astimezone(UTC)
    assert _utc(meta["created_at"]) == local
    assert file.read_bytes() == before  # reading changes nothing


def test_legacy_file_is_upgraded_on_the_next_write(tmp_path: Path) -> None:
    (tmp_path / "metadata.json").write_text(json.dumps(LEGACY), encoding="utf-8")
    written = update_mlflow_info_in_metadata(tmp_path, {"tracking_uri": "sqlite:///m.db"})
    assert written == {"run_id": "r1", "experiment_id": "7", "tracking_uri": "sqlite:///m.db"}
    on_disk = json.loads((tmp_path / "metadata.json").read_text(encoding="utf-8"))
    assert on_disk["schema"] == SCHEMA
    assert "mlflow_info" not in on_disk
    assert on_disk["mlflow"]["tracking_uri"] == "sqlite:///m.db"
    assert on_disk["spec_fp"] == LEGACY["spec_fp"]
    assert _utc(on_disk["created_at"]) == dt.datetime.fromisoformat(
        str(LEGACY["created_at"])
    ).astimezone(UTC)
    assert on_disk["status"]["training"]["completed_at"].endswith("Z")


def test_mlflow_info_given_to_an_update_is_stored_as_mlflow(tmp_path: Path) -> None:
    update_metadata(tmp_path, {"mlflow": {"run_id": "a", "run_key": "k"}})
    merged = update_metadata(tmp_path, {"mlflow_info": {"run_id": "b"}})
    assert merged["mlflow"] == {"run_id": "b", "run_key": "k"}
    assert "mlflow_info" not in merged


def test_update_status_sets_fields_and_timestamps(tmp_path: Path) -> None:
    update_status(tmp_path, "training", completed=False, checkpoint_path="checkpoint")
    meta = read_metadata(tmp_path)
    assert meta["status"]["training"]["completed_at"] is None
    assert not is_training_complete(meta)
    assert get_checkpoint_path(meta) == Path("checkpoint")

    update_status(tmp_path, "training", completed=True)
    update_status(tmp_path, "training", artifacts_uploaded=True)
    update_status(tmp_path, "conversion", completed=True, onnx_model_path="model.onnx")
    meta = read_metadata(tmp_path)
    training = meta["status"]["training"]
    assert training["checkpoint_path"] == "checkpoint"  # earlier fields are kept
    assert _utc(training["completed_at"]) <= _utc(training["artifacts_uploaded_at"])
    assert is_training_complete(tmp_path) and are_training_artifacts_uploaded(tmp_path)
    assert is_conversion_complete(meta) and not are_conversion_artifacts_uploaded(meta)
    assert get_onnx_model_path(tmp_path) == Path("model.onnx")
    assert not is_benchmarking_complete(meta)
    with pytest.raises(MetadataError, match="without dots"):
        update_status(tmp_path, "a.b", completed=True)


def test_predicates_read_the_legacy_training_cache_file(tmp_path: Path) -> None:
    file = tmp_path / "distilbert_trial_3_metadata.json"
    file.write_text(
        json.dumps(
            {
                "training_name": "distilbert_trial_3",
                "status": {
                    "training": {"completed": True, "checkpoint_path": "/x/ckpt"},
                    "benchmarking": {"completed": "yes"},  # only JSON true counts
                },
            }
        ),
        encoding="utf-8",
    )
    assert is_training_complete(file)
    assert get_checkpoint_path(file) == Path("/x/ckpt")
    assert not is_benchmarking_complete(file)
    assert get_onnx_model_path(file) is None
    assert not are_training_artifacts_uploaded({})


def test_update_with_a_registry_needs_the_project_root(tmp_path: Path) -> None:
    from mlinfra.registry import SqlRegistry

    with (
        SqlRegistry(f"sqlite:///{tmp_path / 'r.db'}") as reg,
        pytest.raises(MetadataError, match="root_dir"),
    ):
        update_metadata(tmp_path / "o", {"a": 1}, registry=reg)
    assert not (tmp_path / "o" / "metadata.json").exists()
