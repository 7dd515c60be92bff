"""The fingerprint and metadata errors survive a pickle round trip (worker pools) intact."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mlinfra.errors import (
    DataChangedError,
    FingerprintError,
    MetadataCorruptError,
    MetadataError,
    MetadataSchemaError,
    MlinfraError,
)

CLASSES = [
    (FingerprintError, RuntimeError),
    (DataChangedError, FingerprintError),
    (MetadataError, ValueError),
    (MetadataCorruptError, MetadataError),
    (MetadataSchemaError, MetadataError),
]


@pytest.mark.parametrize(("cls", "base"), CLASSES)
@pytest.mark.parametrize("path", [Path("/data/train/part-0001.bin"), "rel/metadata.json", None])
@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_pickle_round_trip(
    cls: type[MlinfraError], base: type[Exception], path: Path | str | None, protocol: int
) -> None:
    error = cls("it changed; run it again", path=path)  # type: ignore[call-arg]
    copy = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert copy.path == (str(path) if path is not None else None)  # type: ignore[attr-defined]
    assert copy.reason == "it changed; run it again"  # type: ignore[attr-defined]
    assert isinstance(copy, base)
    assert isinstance(copy, MlinfraError)
    if path is not None:
        assert str(copy) == f"{path}: it changed; run it again"
    else:
        assert str(copy) == "it changed; run it again"


def test_a_raised_error_pickles_across_a_process_pool(tmp_path: Path) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from mlinfra.fingerprints import data_fingerprint

    missing = tmp_path / "absent"
    spawn = multiprocessing.get_context("spawn")  # no fork of a threaded process
    with (
        ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool,
        pytest.raises(FingerprintError) as caught,
    ):
        pool.submit(data_fingerprint, missing).result(timeout=60)
    assert type(caught.value) is FingerprintError
    assert caught.value.path == str(missing)
    assert "no such file or folder" in str(caught.value)
