"""Every fingerprint of the example experiment, how they move together, and compare_records."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from mlinfra.errors import FingerprintError
from mlinfra.fingerprints import (
    FINGERPRINT_NAMES,
    RECORD_SCHEMA,
    Difference,
    Fingerprints,
    compare_records,
    describe,
    fingerprint_experiment,
)
from mlinfra.fingerprints.data import RACY_WINDOW_NS

EXPERIMENT = "resume_ner_baseline"
SIX = ("config", "data", "code", "env", "spec", "exec")


def _fps(config_dir: Path, *overrides: str, **kwargs: Any) -> Fingerprints:
    kwargs.setdefault("stage", "smoke")
    kwargs.setdefault("environ", {})
    return fingerprint_experiment(config_dir, EXPERIMENT, overrides=list(overrides), **kwargs)


def _changed(a: Fingerprints, b: Fingerprints) -> set[str]:
    ha, hb = a.hashes(), b.hashes()
    return {name for name in set(ha) | set(hb) if ha.get(name) != hb.get(name)}


def _age(root: Path) -> None:
    old = time.time_ns() - 10 * RACY_WINDOW_NS
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(old, old))


def test_all_six_fingerprints_of_the_example(config_dir: Path, example_project: Path) -> None:
    fps = _fps(config_dir)
    hashes = fps.hashes()
    assert tuple(hashes) == SIX  # no conv for a training stage
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in hashes.values())
    assert len(set(hashes.values())) == 6
    [data] = fps.data
    assert Path(data.path) == (example_project / "dataset_tiny").resolve()
    assert data.kind == "dir"
    assert data.files == len(list((example_project / "dataset_tiny").iterdir()))
    assert fps.data_hash == data.hash
    assert fps.config.values["train.training.epochs"] == 1  # the smoke stage's override
    assert "env.device" in fps.config.volatile
    assert fps.code.kind == "files"  # the copy is not in a git work tree
    assert _fps(config_dir).hashes() == hashes  # deterministic


def test_the_record_is_json(config_dir: Path) -> None:
    fps = _fps(config_dir)
    record = fps.record()
    again = json.loads(json.dumps(record))
    assert again == record
    assert record["schema"] == RECORD_SCHEMA
    assert record["hashes"] == fps.hashes()
    assert record["config"]["values"]["train.training.epochs"] == 1
    assert record["data"][0]["hash"] == fps.data_hash
    assert record["code"]["kind"] == "files"
    assert record["env"]["hash"] == fps.hashes()["env"]


def test_an_override_of_a_training_value_changes_config_and_spec_only(config_dir: Path) -> None:
    base = _fps(config_dir)
    seven = _fps(config_dir, "train.training.epochs=7")
    assert _changed(base, seven) == {"config", "spec"}
    assert seven.config.values["train.training.epochs"] == 7


def test_a_device_override_changes_nothing(config_dir: Path) -> None:
    base = _fps(config_dir)
    assert _changed(base, _fps(config_dir, "env.device=cuda")) == set()
    assert _changed(base, _fps(config_dir, environ={"MLINFRA_DEVICE": "cuda:3"})) == set()
    assert _changed(base, _fps(config_dir, "data.description=another text")) == set()


def test_the_stage_matters_only_through_its_values(config_dir: Path) -> None:
    smoke = _fps(config_dir)
    plain = _fps(config_dir, "train.training.epochs=1", "hpo=smoke", stage=None)
    assert smoke.config.hash == plain.config.hash  # the experiment domain does not count
    assert _changed(smoke, plain) == set()


def test_one_byte_of_the_dataset_changes_data_and_spec_only(
    config_dir: Path, example_project: Path
) -> None:
    base = _fps(config_dir)
    path = example_project / "dataset_tiny" / "resumes.json"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x20
    path.write_bytes(bytes(raw))
    edited = _fps(config_dir)
    assert _changed(base, edited) == {"data", "spec"}
    assert edited.data[0].bytes == base.data[0].bytes


def test_another_data_file_changes_data_config_and_spec(config_dir: Path) -> None:
    base = _fps(config_dir)
    full = _fps(config_dir, "data=resume_v1")
    assert _changed(base, full) == {"config", "data", "spec"}


def test_a_code_change_changes_code_and_exec_only(config_dir: Path, example_project: Path) -> None:
    base = _fps(config_dir)
    source = next((example_project / "resume_ner").glob("*.py"))
    source.write_text(source.read_text() + "\n# edited\n")
    assert _changed(base, _fps(config_dir)) == {"code", "exec"}


def test_outputs_and_the_cache_do_not_change_the_code(
    config_dir: Path, example_project: Path
) -> None:
    base = _fps(config_dir)
    cache = example_project / "outputs" / "cache" / "fingerprints"
    assert list(cache.glob("*.json"))  # the default stat cache lives under outputs/
    (example_project / "outputs" / "final_training" / "x.py").parent.mkdir(parents=True)
    (example_project / "outputs" / "final_training" / "x.py").write_text("x = 1\n")
    (example_project / "mlruns").mkdir()
    (example_project / "mlruns" / "y.py").write_text("y = 1\n")
    assert _changed(base, _fps(config_dir)) == set()


def test_a_precision_changes_config_spec_env_and_exec(config_dir: Path) -> None:
    base = _fps(config_dir)
    bf16 = _fps(config_dir, "+train.training.precision=bf16")
    assert bf16.environment.precision == "bf16"
    assert _changed(base, bf16) == {"config", "spec", "env", "exec"}


def test_volatile_keys_declared_by_the_experiment(config_dir: Path) -> None:
    experiment = config_dir / "experiment" / f"{EXPERIMENT}.yaml"
    experiment.write_text(
        experiment.read_text() + "\nfingerprint:\n  volatile: [training.epochs]\n"
    )
    base = _fps(config_dir)
    assert _changed(base, _fps(config_dir, "train.training.epochs=7")) == set()
    assert "train.training.epochs" in base.config.volatile
    assert _changed(base, _fps(config_dir, "train.training.batch_size=8")) == {"config", "spec"}


def test_the_stat_cache_makes_a_second_run_read_nothing(
    config_dir: Path, example_project: Path, tmp_path: Path
) -> None:
    _age(example_project / "dataset_tiny")
    first = _fps(config_dir)
    assert first.data[0].bytes_read == first.data[0].bytes
    warm = _fps(config_dir)
    assert warm.data[0].bytes_read == 0
    assert warm.hashes() == first.hashes()
    uncached = _fps(config_dir, use_cache=False)
    assert uncached.data[0].bytes_read == first.data[0].bytes
    elsewhere = tmp_path / "fp-cache"
    _fps(config_dir, cache_dir=elsewhere)
    assert list(elsewhere.glob("*.json"))


def test_a_missing_data_path_names_where_it_was_configured(config_dir: Path) -> None:
    data_file = config_dir / "data" / "resume_tiny.yaml"
    lines = data_file.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.startswith("local_path:"))
    lines[line - 1] = "local_path: ../no_such_dataset"
    data_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(FingerprintError) as caught:
        _fps(config_dir)
    message = str(caught.value)
    assert "does not exist" in message
    assert "data.local_path" in message
    assert f"resume_tiny.yaml:{line}" in message
    assert caught.value.path is not None and caught.value.path.endswith("no_such_dataset")


def test_a_missing_data_path_from_an_override_names_the_override(config_dir: Path) -> None:
    with pytest.raises(FingerprintError, match=r"data\.local_path.*override") as caught:
        _fps(config_dir, "data.local_path=../elsewhere")
    assert "elsewhere" in str(caught.value)


def test_declared_data_paths(config_dir: Path, example_project: Path) -> None:
    experiment = config_dir / "experiment" / f"{EXPERIMENT}.yaml"
    original = experiment.read_text()
    experiment.write_text(
        original + "\nfingerprint:\n  data: [../dataset_tiny, ../dataset/resumes.json]\n"
    )
    both = _fps(config_dir)
    assert [d.kind for d in both.data] == ["dir", "file"]
    assert both.data_hash not in (both.data[0].hash, both.data[1].hash)
    full = example_project / "dataset" / "resumes.json"
    full.write_bytes(full.read_bytes() + b" ")
    assert _changed(both, _fps(config_dir)) == {"data", "spec"}

    experiment.write_text(original + "\nfingerprint:\n  data: [../missing_folder]\n")
    with pytest.raises(FingerprintError, match=rf"fingerprint\.data in {EXPERIMENT}\.yaml"):
        _fps(config_dir)


def test_a_broken_link_in_the_dataset_is_reported_as_such(
    config_dir: Path, example_project: Path
) -> None:
    (example_project / "dataset_tiny" / "gone.json").symlink_to("nowhere.json")
    with pytest.raises(FingerprintError, match="broken symbolic link"):
        _fps(config_dir)


# ---- compare_records --------------------------------------------------------------------------


def _by_name(differences: list[Difference]) -> dict[str, Difference]:
    return {d.name: d for d in differences}


def test_compare_records_names_the_changed_key(config_dir: Path) -> None:
    one = _fps(config_dir).record()
    seven = _fps(config_dir, "train.training.epochs=7").record()
    found = compare_records(one, seven)
    assert [d.name for d in found] == list(SIX)
    diff = _by_name(found)
    assert diff["config"].status == "differs"
    assert diff["config"].details == ("~ train.training.epochs: 1 -> 7",)
    assert diff["spec"].status == "differs"
    assert diff["spec"].details == ("follows from: config",)
    for name in ("data", "code", "env", "exec"):
        assert diff[name].status == "same", name
        assert diff[name].left == diff[name].right == one["hashes"][name]
    assert describe(found) == "differ in: config, spec"
    assert describe(compare_records(one, json.loads(json.dumps(one)))) == "identical"


def test_compare_records_added_and_removed_keys(config_dir: Path) -> None:
    base = _fps(config_dir).record()
    more = _fps(config_dir, "+model.extra_layer=true", "~train.training.warmup_steps").record()
    details = _by_name(compare_records(base, more))["config"].details
    assert "+ model.extra_layer = True (only in B)" in details
    assert "- train.training.warmup_steps = 0 (only in A)" in details


def test_compare_records_missing_fingerprints() -> None:
    a = {"hashes": {"config": "1" * 64, "data": "2" * 64, "spec": "3" * 64}}
    b = {"hashes": {"config": "1" * 64, "spec": "4" * 64, "conv": "5" * 64}}
    diff = _by_name(compare_records(a, b))
    assert list(diff) == ["config", "data", "spec", "conv"]
    assert diff["config"].status == "same"
    assert diff["data"].status == "missing"
    assert diff["data"].details == ("only A has it",)
    assert diff["conv"].status == "missing"
    assert diff["conv"].details == ("only B has it",)
    assert diff["spec"].status == "differs"
    assert diff["spec"].details == ("follows from: data",)
    assert describe(compare_records(a, b)) == "differ in: data, spec, conv"


def test_compare_records_with_hashes_only() -> None:
    a = {"hashes": {"config": "1" * 64, "exec": "6" * 64, "code": "7" * 64, "env": "8" * 64}}
    b = {"hashes": {"config": "2" * 64, "exec": "9" * 64, "code": "7" * 64, "env": "8" * 64}}
    diff = _by_name(compare_records(a, b))
    assert diff["config"].details == ("(no config values recorded on one side)",)
    assert diff["exec"].details == (
        "follows from: the env config or the precision/determinism settings",
    )


def test_compare_records_explains_code_env_and_data(config_dir: Path) -> None:
    base = _fps(config_dir).record()
    other = json.loads(json.dumps(base))
    other["hashes"]["code"] = "a" * 64
    other["code"].update(commit="b" * 40, dirty=True, changed=["train.py"], kind="git")
    other["hashes"]["env"] = "c" * 64
    other["env"]["packages"] = {**other["env"]["packages"], "torch": "9.9.9"}
    other["env"]["precision"] = "bf16"
    other["hashes"]["data"] = "d" * 64
    other["data"][0].update(hash="d" * 64, files=99)
    other["hashes"]["exec"] = "e" * 64
    diff = _by_name(compare_records(base, other))
    code = diff["code"].details
    assert f"commit: - -> {'b' * 40}" in code
    assert "B has uncommitted changes: train.py" in code
    assert "fingerprinted from: files -> git" in code
    env = diff["env"].details
    assert "torch: not installed -> 9.9.9" in env
    assert "precision: - -> bf16" in env
    [data_line] = diff["data"].details
    assert "-> 99 files" in data_line and "content differs" in data_line
    assert diff["exec"].details == ("follows from: code, env",)
    assert [n for n in FINGERPRINT_NAMES if n in diff] == list(SIX)
