"""The composite fingerprints: spec_fp, exec_fp, conv_fp (and the bench/hardware ones)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from mlinfra.errors import FingerprintError
from mlinfra.fingerprints import (
    CodeFingerprint,
    EnvironmentFingerprint,
    compute_bench_fp,
    compute_conv_fp,
    compute_exec_fp,
    compute_hardware_fp,
    compute_spec_fp,
    environment_fingerprint,
)

HEX64 = re.compile(r"[0-9a-f]{64}")
MODEL: dict[str, Any] = {"backbone": "distilbert", "dropout": 0.1, "device": "cpu"}
DATA: dict[str, Any] = {"name": "resume_tiny", "seed": 0, "description": "tiny set"}
TRAIN: dict[str, Any] = {
    "training": {"epochs": 3, "learning_rate": 2e-5, "num_workers": 2},
    "logging": {"log_interval": 10},
    "output_dir": "outputs/a",
}
CODE = CodeFingerprint(hash="c" * 64, kind="git", commit="a" * 40, dirty=False)
ENV = environment_fingerprint(distributions={"numpy": "2.1.0"}, cuda="12.1")


def _spec(**changes: Any) -> str:
    args: dict[str, Any] = {
        "model_config": copy.deepcopy(MODEL),
        "data_config": copy.deepcopy(DATA),
        "train_config": copy.deepcopy(TRAIN),
    }
    for key, value in changes.items():
        args[key] = value
    return compute_spec_fp(**args)


def _set(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(config)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    node[last] = value
    return out


def test_spec_fp_changes_with_what_is_trained() -> None:
    base = _spec()
    assert HEX64.fullmatch(base)
    changed = [
        _spec(model_config=_set(MODEL, "dropout", 0.2)),
        _spec(data_config=_set(DATA, "seed", 1)),
        _spec(train_config=_set(TRAIN, "training.epochs", 4)),
        _spec(train_config=_set(TRAIN, "training.learning_rate", 2.0e-5 * 1.5)),
        _spec(seed=42),
        _spec(data_fingerprint="d" * 64),
    ]
    assert all(HEX64.fullmatch(v) for v in changed)
    assert base not in changed
    assert len(set(changed)) == len(changed)
    assert _spec(data_fingerprint="d" * 64) != _spec(data_fingerprint="e" * 64)
    # the same value in another domain is another spec
    assert _spec(model_config={**MODEL, "x": 1}) != _spec(data_config={**DATA, "x": 1})


def test_spec_fp_ignores_volatile_keys_and_descriptions() -> None:
    base = _spec()
    assert _spec(model_config=_set(MODEL, "device", "cuda")) == base
    assert _spec(data_config=_set(DATA, "description", "another")) == base
    assert _spec(train_config=_set(TRAIN, "output_dir", "/elsewhere")) == base
    assert _spec(train_config=_set(TRAIN, "logging.log_interval", 1)) == base
    assert _spec(train_config=_set(TRAIN, "training.num_workers", 8)) == base
    flipped = {k: TRAIN[k] for k in reversed(list(TRAIN))}
    assert _spec(train_config=flipped) == base
    # declared volatile patterns
    assert _spec(
        train_config=_set(TRAIN, "training.epochs", 9), volatile=("training.epochs",)
    ) == _spec(volatile=("training.epochs",))


def test_spec_fp_rejects_a_config_that_is_not_a_mapping() -> None:
    with pytest.raises(TypeError, match="train_config must be a mapping"):
        compute_spec_fp(MODEL, DATA, ["epochs", 3])  # type: ignore[arg-type]


def test_exec_fp_changes_with_code_env_and_settings() -> None:
    base = compute_exec_fp(code=CODE, environment=ENV, env_config={"name": "local"})
    assert HEX64.fullmatch(base)
    other_code = CodeFingerprint(hash="d" * 64, kind="git", commit="a" * 40, dirty=True)
    other_env = environment_fingerprint(distributions={"numpy": "2.2.0"}, cuda="12.1")
    variants = [
        compute_exec_fp(code=other_code, environment=ENV, env_config={"name": "local"}),
        compute_exec_fp(code=CODE, environment=other_env, env_config={"name": "local"}),
        compute_exec_fp(code=CODE, environment=ENV, env_config={"name": "cluster"}),
        compute_exec_fp(
            code=CODE, environment=ENV, env_config={"name": "local"}, include_precision="bf16"
        ),
        compute_exec_fp(
            code=CODE, environment=ENV, env_config={"name": "local"}, include_determinism=True
        ),
    ]
    assert base not in variants
    assert len(set(variants)) == len(variants)
    assert compute_exec_fp(
        code=CODE, environment=ENV, env_config={"name": "local"}, include_precision="fp32"
    ) != compute_exec_fp(
        code=CODE, environment=ENV, env_config={"name": "local"}, include_precision="bf16"
    )


def test_exec_fp_takes_objects_or_their_hashes() -> None:
    assert compute_exec_fp(code=CODE, environment=ENV) == compute_exec_fp(
        code=CODE.hash, environment=ENV.hash
    )
    assert isinstance(ENV, EnvironmentFingerprint)


def test_exec_fp_ignores_volatile_env_config_keys() -> None:
    one = compute_exec_fp(code=CODE, environment=ENV, env_config={"name": "l", "device": "cpu"})
    two = compute_exec_fp(
        code=CODE,
        environment=ENV,
        env_config={"name": "l", "device": "cuda", "logging": {"level": "DEBUG"}},
    )
    assert one == two


def test_exec_fp_with_a_git_sha_only() -> None:
    one = compute_exec_fp("a" * 40)
    assert HEX64.fullmatch(one)
    assert compute_exec_fp("b" * 40) != one
    assert compute_exec_fp(code=CODE) != one  # a code fingerprint is not the same as a sha


def test_exec_fp_refuses_a_precision_flag() -> None:
    with pytest.raises(TypeError, match="precision itself"):
        compute_exec_fp(code=CODE, include_precision=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        compute_exec_fp("a" * 40, None, False)  # type: ignore[arg-type]


def test_exec_fp_needs_to_know_which_code_ran() -> None:
    with pytest.raises(FingerprintError, match="which code ran"):
        compute_exec_fp()
    with pytest.raises(FingerprintError, match="which code ran"):
        compute_exec_fp("", environment=ENV)


def test_conv_fp() -> None:
    spec, exe = "1" * 64, "2" * 64
    base = compute_conv_fp(spec, exe, {"opset": 17, "quantize": False})
    assert HEX64.fullmatch(base)
    assert compute_conv_fp(spec.upper(), f" {exe} ", {"quantize": False, "opset": 17}) == base
    assert compute_conv_fp(spec, exe, {"opset": 18, "quantize": False}) != base
    assert compute_conv_fp("3" * 64, exe, {"opset": 17, "quantize": False}) != base
    assert compute_conv_fp(spec, "3" * 64, {"opset": 17, "quantize": False}) != base
    assert compute_conv_fp(spec, exe, {"opset": 17, "quantize": False, "device": "x"}) == base
    assert HEX64.fullmatch(compute_conv_fp("abcdef12", "12345678", {}))  # short forms


@pytest.mark.parametrize(
    "bad", ["", "xyz", "g" * 64, "a" * 7, "a" * 65, "abc def12", None, 12345678, "../../etc"]
)
def test_conv_fp_rejects_non_hex_parents(bad: Any) -> None:
    with pytest.raises(FingerprintError, match="parent_spec_fp must be a hex fingerprint"):
        compute_conv_fp(bad, "2" * 64, {})
    with pytest.raises(FingerprintError, match="parent_exec_fp must be a hex fingerprint"):
        compute_conv_fp("1" * 64, bad, {})


def test_bench_and_hardware_fps() -> None:
    bench = compute_bench_fp(MODEL, {"batch_sizes": [1, 8]})
    assert HEX64.fullmatch(bench)
    assert compute_bench_fp(MODEL, {"batch_sizes": [1, 16]}) != bench
    assert compute_bench_fp({**MODEL, "device": "cuda"}, {"batch_sizes": [1, 8]}) == bench
    hw = compute_hardware_fp({"gpu": "A100", "count": 1})
    assert HEX64.fullmatch(hw)
    assert compute_hardware_fp({"count": 1, "gpu": "A100"}) == hw
    assert compute_hardware_fp({"gpu": "A100", "count": 2}) != hw
