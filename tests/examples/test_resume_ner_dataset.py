"""The resume NER example's dataset: a seeded generator whose output is committed.

The committed ``examples/resume_ner/dataset*/`` folders must be exactly what the generator writes,
every annotation must be a valid character span, and loading rejects malformed records clearly.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "resume_ner"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))
dataset: ModuleType = importlib.import_module("resume_ner.dataset")

# (folder, n, seed) of the committed datasets; the READMEs give the same commands
COMMITTED = [("dataset_tiny", 80, 0), ("dataset", 600, 0)]
LABELS = ("NAME", "EMAIL", "PHONE", "LOCATION", "SKILL", "DEGREE", "COMPANY", "DESIGNATION")


def _records(folder: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(
        (EXAMPLE / folder / "resumes.json").read_text(encoding="utf-8")
    )
    return records


@pytest.mark.parametrize(("folder", "n", "seed"), COMMITTED)
def test_committed_dataset_is_what_the_generator_writes(
    tmp_path: Path, folder: str, n: int, seed: int
) -> None:
    path = dataset.write_dataset(tmp_path / folder, n, seed)
    committed = EXAMPLE / folder
    assert path.read_bytes() == (committed / "resumes.json").read_bytes(), (
        f"{committed}/resumes.json is stale; regenerate it: cd examples/resume_ner && "
        f"python -m resume_ner.dataset --out {folder} --n {n} --seed {seed}"
    )
    assert (tmp_path / folder / "README.md").read_bytes() == (committed / "README.md").read_bytes()
    assert f"--out {folder} --n {n} --seed {seed}" in (committed / "README.md").read_text("utf-8")


def test_the_data_config_points_at_the_committed_datasets() -> None:
    for config, folder in (("resume_tiny.yaml", "dataset_tiny"), ("resume_v1.yaml", "dataset")):
        text = (EXAMPLE / "config" / "data" / config).read_text(encoding="utf-8")
        assert f"local_path: ../{folder}\n" in text
        assert "entity_types: [" + ", ".join(LABELS) + "]" in text
    assert tuple(dataset.ENTITY_TYPES) == LABELS


def test_file_format() -> None:
    raw = (EXAMPLE / "dataset_tiny" / "resumes.json").read_bytes()
    records = json.loads(raw.decode("utf-8"))
    expected = json.dumps(records, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    assert raw == expected.encode("utf-8")
    assert (EXAMPLE / "dataset" / "resumes.json").stat().st_size < 620_000


def test_generation_is_deterministic_and_seeded() -> None:
    first = dataset.generate_resumes(30, 0)
    assert dataset.generate_resumes(30, 0) == first
    assert dataset.generate_resumes(30, 1) != first
    assert [r["text"] for r in dataset.generate_resumes(30, 7)] != [r["text"] for r in first]
    # record i depends only on the seed and i: the tiny set is a prefix of the full one
    assert dataset.generate_resumes(10, 0) == first[:10]
    assert dataset.generate_resumes(0, 0) == []


@pytest.mark.parametrize("bad", [(-1, 0), (3, -2), (True, 0), (2.0, 0), (3, "0")])
def test_generate_rejects_bad_arguments(bad: tuple[Any, Any]) -> None:
    with pytest.raises(ValueError, match="must be a non-negative integer"):
        dataset.generate_resumes(*bad)


@pytest.mark.parametrize("folder", [folder for folder, _, _ in COMMITTED])
def test_every_span_is_valid(folder: str) -> None:
    records = _records(folder)
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    for record in records:
        assert sorted(record) == ["entities", "id", "text"]
        text, previous_end = record["text"], 0
        assert record["entities"], record["id"]
        for entity in record["entities"]:
            start, end, label = entity["start"], entity["end"], entity["label"]
            assert label in LABELS
            assert previous_end <= start < end <= len(text), (record["id"], entity)
            surface = text[start:end]
            assert surface == surface.strip() and surface, (record["id"], entity)
            previous_end = end
    # and the validator agrees
    assert dataset.load_dataset(EXAMPLE / folder) == records


def test_all_labels_occur_in_the_tiny_set() -> None:
    counts = dataset.label_counts(_records("dataset_tiny"))
    assert list(counts) == list(LABELS)
    assert all(counts[label] >= 20 for label in LABELS), counts


def test_layouts_and_lookalikes_vary() -> None:
    texts = [r["text"] for r in _records("dataset_tiny")]
    assert any(t.startswith("Dear Hiring Manager") for t in texts)  # cover letters
    assert any("Email: " in t or "E-mail: " in t for t in texts)  # key: value forms
    assert any(t == t.lower() for t in texts)  # lowercased resumes
    assert len(set(texts)) == len(texts)


def _write(tmp_path: Path, records: Any) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "resumes.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return tmp_path


def _good() -> list[dict[str, Any]]:
    return [
        {"id": "a", "text": "Ann Lee, Oslo", "entities": [{"start": 0, "end": 7, "label": "NAME"}]},
        {"id": "b", "text": "Bo Kim", "entities": []},
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("label", "PERSON", r"record 1 \(id 'b'\): field 'entities\[0\]\.label': unknown label"),
        ("end", 99, r"record 1 \(id 'b'\): field 'entities\[0\]\.end': .*outside the text"),
        ("start", "0", r"record 1 \(id 'b'\): field 'entities\[0\]\.start': not an integer"),
        ("start", 2, r"record 1 \(id 'b'\): field 'entities\[0\]\.start': .*whitespace"),
    ],
)
def test_load_rejects_a_bad_entity(tmp_path: Path, field: str, value: Any, message: str) -> None:
    records = _good()
    entity = {"start": 0, "end": 6, "label": "NAME"}
    entity[field] = value
    records[1]["entities"] = [entity]
    folder = _write(tmp_path, records)
    assert dataset.load_dataset(_write(tmp_path / "ok", _good())) == _good()
    with pytest.raises(ValueError, match=message) as info:
        dataset.load_dataset(folder)
    assert str(folder / "resumes.json") in str(info.value)


def test_load_rejects_bad_records(tmp_path: Path) -> None:
    cases: list[tuple[Any, str]] = [
        ({"id": "x", "text": 3, "entities": []}, r"record 2 \(id 'x'\): field 'text'"),
        ({"id": "x", "text": "t"}, r"record 2 \(id 'x'\): field 'entities': missing"),
        ({"id": "", "text": "t", "entities": []}, r"record 2: field 'id'"),
        ({"id": "a", "text": "t", "entities": []}, r"record 2 \(id 'a'\): field 'id': duplicate"),
        ({"id": "x", "text": "t", "entities": [], "x": 1}, r"field 'x': unexpected field"),
        ("text", r"record 2: expected an object"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            dataset.load_dataset(_write(tmp_path, [*_good(), bad]))
    overlap = {
        "id": "x",
        "text": "Ann Lee",
        "entities": [
            {"start": 0, "end": 7, "label": "NAME"},
            {"start": 4, "end": 7, "label": "NAME"},
        ],
    }
    with pytest.raises(ValueError, match=r"record 2 \(id 'x'\): field 'entities\[1\]\.start'"):
        dataset.load_dataset(_write(tmp_path, [*_good(), overlap]))


def test_load_rejects_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no dataset file"):
        dataset.load_dataset(tmp_path)
    (tmp_path / "resumes.json").write_text("[{", encoding="utf-8")
    with pytest.raises(ValueError, match=r"resumes\.json: not valid JSON"):
        dataset.load_dataset(tmp_path)
    _write(tmp_path, {"id": "a"})
    with pytest.raises(ValueError, match="expected a JSON list"):
        dataset.load_dataset(tmp_path)


def test_split_is_deterministic_disjoint_and_complete() -> None:
    records = dataset.generate_resumes(50, 3)
    train, test = dataset.split_dataset(records, 0.8, 42)
    assert (len(train), len(test)) == (40, 10)
    assert dataset.split_dataset(records, 0.8, 42) == (train, test)
    ids = [r["id"] for r in records]
    train_ids, test_ids = [r["id"] for r in train], [r["id"] for r in test]
    assert not set(train_ids) & set(test_ids)
    assert sorted(train_ids + test_ids) == sorted(ids)
    assert train_ids == [i for i in ids if i in set(train_ids)]  # input order kept
    assert dataset.split_dataset(records, 0.8, 43)[1] != test
    assert [len(part) for part in dataset.split_dataset(records[:2], 0.99, 0)] == [1, 1]
    for ratio in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="train_ratio"):
            dataset.split_dataset(records, ratio, 0)


def test_cli_writes_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    result = subprocess.run(
        [sys.executable, "-m", "resume_ner.dataset", "--out", str(out), "--n", "12", "--seed", "5"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "wrote 12 resumes" in result.stdout
    assert dataset.load_dataset(out) == dataset.generate_resumes(12, 5)
    assert "--out generated --n 12 --seed 5" in (out / "README.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "resumes.json"]


def test_cli_main_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        dataset.main(["--out", "x", "--n", "0"])
    assert info.value.code == 2
    assert "--n must be at least 1" in capsys.readouterr().err
