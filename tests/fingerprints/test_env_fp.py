"""Environment fingerprints with fake distribution maps, and the precision a config asks for."""

from __future__ import annotations

import platform
from typing import Any

import pytest

from mlinfra.fingerprints import (
    EnvironmentFingerprint,
    environment_fingerprint,
    precision_from_config,
)
from mlinfra.fingerprints.environment import DEFAULT_PACKAGES, installed_distributions

DISTS = {
    "numpy": "2.1.0",
    "torch": "2.4.1",
    "transformers": "4.44.0",
    "scikit-learn": "1.5.2",
    "rich": "13.7.1",
    "click": "8.1.7",
}


def _env(dists: dict[str, str] | None = None, **kwargs: Any) -> EnvironmentFingerprint:
    return environment_fingerprint(
        distributions=DISTS if dists is None else dists, cuda=kwargs.pop("cuda", "12.1"), **kwargs
    )


def test_the_fingerprint_describes_the_environment() -> None:
    found = _env()
    assert len(found.hash) == 64 and int(found.hash, 16) >= 0
    assert found.packages == {
        "numpy": "2.1.0",
        "scikit-learn": "1.5.2",
        "torch": "2.4.1",
        "transformers": "4.44.0",
    }
    assert found.python.startswith(platform.python_version())
    assert platform.machine() in found.platform
    assert found.cuda == "12.1"
    summary = found.summary()
    assert summary["packages"] == found.packages
    assert summary["freeze_hash"] == found.freeze_hash
    assert _env().hash == found.hash  # deterministic


def test_a_key_package_version_changes_it() -> None:
    base = _env()
    for name in ("numpy", "torch", "scikit-learn"):
        bumped = _env({**DISTS, name: DISTS[name] + ".post1"})
        assert bumped.hash != base.hash, name
        assert bumped.freeze_hash != base.freeze_hash
    installed = _env({**DISTS, "pandas": "2.2.0"})
    assert installed.hash != base.hash  # a key package appearing counts
    removed = dict(DISTS)
    del removed["torch"]
    assert _env(removed).hash != base.hash


def test_an_unrelated_package_changes_only_the_freeze_hash() -> None:
    base = _env()
    for dists in (
        {**DISTS, "rich": "14.0.0"},
        {**DISTS, "some-cli-tool": "0.1"},
        {k: v for k, v in DISTS.items() if k != "click"},
    ):
        other = _env(dists)
        assert other.hash == base.hash
        assert other.packages == base.packages
        assert other.freeze_hash != base.freeze_hash


def test_package_names_are_normalised() -> None:
    spelled = _env(DISTS, packages=["Scikit_Learn", "NUMPY"])
    assert spelled.packages == {"scikit-learn": "1.5.2", "numpy": "2.1.0"}
    assert spelled.hash == _env(DISTS, packages=["scikit-learn", "numpy"]).hash
    assert spelled.hash == _env(DISTS, packages=["scikit.learn", "numpy", "numpy"]).hash
    assert spelled.hash != _env(DISTS, packages=["numpy"]).hash


def test_installed_distributions_are_canonical_names() -> None:
    found = installed_distributions()
    assert "pytest" in found
    assert all(name == name.lower() and "_" not in name for name in found)
    real = environment_fingerprint(packages=["pytest", "xxhash"])
    assert real.packages["pytest"] == found["pytest"]
    assert real.packages["xxhash"] == found["xxhash"]


def test_custom_packages_replace_the_defaults() -> None:
    found = _env(packages=["rich"])
    assert found.packages == {"rich": "13.7.1"}
    assert _env({**DISTS, "torch": "9"}, packages=["rich"]).hash == found.hash
    assert _env({**DISTS, "rich": "1"}, packages=["rich"]).hash != found.hash
    assert "numpy" in DEFAULT_PACKAGES


def test_an_empty_package_list_means_no_key_packages() -> None:
    assert _env(packages=[]).packages == {}


def test_precision_and_cuda_change_it() -> None:
    base = _env(precision=None)
    bf16 = _env(precision="bf16")
    fp16 = _env(precision="fp16")
    assert len({base.hash, bf16.hash, fp16.hash}) == 3
    assert bf16.precision == "bf16"
    assert _env(cuda="12.4").hash != _env(cuda="12.1").hash
    assert bf16.freeze_hash == base.freeze_hash


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"train": {"training": {"precision": "BF16"}}}, "bf16"),
        ({"train": {"training": {"mixed_precision": "fp16"}}}, "fp16"),
        ({"train": {"training": {"bf16": True}}}, "bf16"),
        ({"train": {"training": {"fp16": True}}}, "fp16"),
        ({"train": {"precision": "fp32"}}, "fp32"),
        ({"train": {"bf16": True}}, "bf16"),
        ({"precision": "tf32"}, "tf32"),
        ({"fp16": True}, "fp16"),
        ({"precision": 16}, "16"),
        # the most specific place wins
        ({"precision": "fp32", "train": {"training": {"precision": "bf16"}}}, "bf16"),
        ({"train": {"precision": "fp16", "training": {"bf16": True}}}, "bf16"),
        # flags that are off, booleans, empty values and other places do not count
        ({"train": {"training": {"bf16": False, "fp16": False}}}, None),
        ({"train": {"training": {"precision": True}}}, None),
        ({"train": {"training": {"precision": ""}}}, None),
        ({"model": {"precision": "bf16"}}, None),
        ({"train": {"training": {"epochs": 3}}}, None),
        ({}, None),
    ],
)
def test_precision_from_config(config: dict[str, Any], expected: str | None) -> None:
    assert precision_from_config(config) == expected
