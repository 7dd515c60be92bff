"""Tests for mlinfra.errors (and mlinfra.core.imports, which raises MissingDependencyError)."""

from __future__ import annotations

import copy
import json
import pickle
import sys
from pathlib import Path

import pytest

from mlinfra.core.imports import require
from mlinfra.errors import ConfigError, ConfigErrorGroup, MissingDependencyError, MlinfraError

# --------------------------------------------------------------------------- ConfigError


def test_config_error_is_a_value_error_and_mlinfra_error() -> None:
    err = ConfigError("bad")
    assert isinstance(err, ValueError)
    assert isinstance(err, MlinfraError)
    with pytest.raises(ValueError, match="bad"):
        raise err


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({}, "reason here"),
        ({"file": "cfg.yaml"}, "cfg.yaml: reason here"),
        ({"file": "cfg.yaml", "line": 7}, "cfg.yaml:7: reason here"),
        ({"file": "cfg.yaml", "line": 7, "key": "a.b"}, "cfg.yaml:7, key 'a.b': reason here"),
        ({"file": "cfg.yaml", "key": "a.b"}, "cfg.yaml, key 'a.b': reason here"),
        ({"key": "hpo.sampling.max_trials"}, "key 'hpo.sampling.max_trials': reason here"),
        ({"line": 3}, "reason here"),
    ],
)
def test_config_error_message_format(kwargs: dict[str, object], text: str) -> None:
    err = ConfigError("reason here", **kwargs)  # type: ignore[arg-type]
    assert str(err) == text
    assert err.reason == "reason here"
    assert err.args == (text,)


def test_config_error_attributes_and_path_file() -> None:
    err = ConfigError("r", file=Path("configs") / "model.yaml", line=12, key="model.dropout")
    assert err.file == str(Path("configs") / "model.yaml")
    assert isinstance(err.file, str)
    assert err.line == 12
    assert err.key == "model.dropout"


def test_config_error_defaults_are_none() -> None:
    err = ConfigError("r")
    assert (err.file, err.line, err.key) == (None, None, None)


def test_config_error_line_zero_is_kept() -> None:
    assert str(ConfigError("r", file="f", line=0)) == "f:0: r"


@pytest.mark.parametrize(
    "err",
    [
        ConfigError("only reason"),
        ConfigError("r", file="a.yaml"),
        ConfigError("r", file=Path("a.yaml"), line=3, key="x.y[0]"),
    ],
)
def test_config_error_pickle_round_trip(err: ConfigError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ConfigError
    assert (back.reason, back.file, back.line, back.key) == (
        err.reason,
        err.file,
        err.line,
        err.key,
    )
    assert str(back) == str(err)
    assert back.args == err.args


def test_config_error_copy_keeps_attributes() -> None:
    err = ConfigError("r", file="f", line=2, key="k")
    dup = copy.copy(err)
    assert (dup.reason, dup.file, dup.line, dup.key) == ("r", "f", 2, "k")


# --------------------------------------------------------------------------- ConfigErrorGroup


def _group() -> ConfigErrorGroup:
    return ConfigErrorGroup(
        [
            ConfigError("first problem", file="a.yaml", line=1, key="x"),
            ConfigError("second problem", key="y"),
        ]
    )


def test_group_is_a_config_error() -> None:
    group = _group()
    assert isinstance(group, ConfigError)
    assert isinstance(group, ValueError)


def test_group_message_lists_every_error() -> None:
    text = str(_group())
    assert text.splitlines() == [
        "2 configuration problem(s):",
        "  - a.yaml:1, key 'x': first problem",
        "  - key 'y': second problem",
    ]
    assert _group().file is None


def test_group_copies_the_list() -> None:
    errors = [ConfigError("a")]
    group = ConfigErrorGroup(errors)
    errors.append(ConfigError("b"))
    assert len(group.errors) == 1


def test_group_needs_at_least_one_error() -> None:
    with pytest.raises(ValueError, match="at least one error"):
        ConfigErrorGroup([])


def test_group_pickle_round_trip_keeps_inner_errors() -> None:
    group = _group()
    back = pickle.loads(pickle.dumps(group))
    assert type(back) is ConfigErrorGroup
    assert str(back) == str(group)
    assert [type(e) for e in back.errors] == [ConfigError, ConfigError]
    assert [(e.reason, e.file, e.line, e.key) for e in back.errors] == [
        ("first problem", "a.yaml", 1, "x"),
        ("second problem", None, None, "y"),
    ]


# --------------------------------------------------------------------------- MissingDependencyError


def test_missing_dependency_with_extra() -> None:
    err = MissingDependencyError("azure.ai.ml", extra="azure", feature="Azure ML runs")
    assert isinstance(err, ImportError)
    assert isinstance(err, MlinfraError)
    assert str(err) == (
        "azure.ai.ml is not installed (needed for Azure ML runs); "
        "install it with: pip install 'mlinfra[azure]'"
    )


def test_missing_dependency_without_extra() -> None:
    err = MissingDependencyError("psutil")
    assert str(err) == "psutil is not installed; install it with: pip install psutil"
    assert (err.package, err.extra, err.feature) == ("psutil", None, None)


def test_missing_dependency_pickle_round_trip() -> None:
    err = MissingDependencyError("psycopg", extra="postgres", feature="the Postgres backend")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is MissingDependencyError
    assert (back.package, back.extra, back.feature) == (
        "psycopg",
        "postgres",
        "the Postgres backend",
    )
    assert str(back) == str(err)


def test_errors_can_be_caught_as_mlinfra_error() -> None:
    for err in (ConfigError("x"), _group(), MissingDependencyError("p")):
        with pytest.raises(MlinfraError):
            raise err


# --------------------------------------------------------------------------- require()


def test_require_returns_the_module() -> None:
    assert require("json") is json


def test_require_missing_module_raises_with_hint() -> None:
    with pytest.raises(MissingDependencyError) as info:
        require("mlinfra_no_such_module_xyz.sub", extra="azure", feature="testing")
    err = info.value
    assert err.package == "mlinfra_no_such_module_xyz.sub"
    assert err.extra == "azure"
    assert "pip install 'mlinfra[azure]'" in str(err)
    assert isinstance(err.__cause__, ImportError)


def test_require_does_not_mask_a_broken_dependency_of_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module that exists but fails to import one of *its* dependencies is a real error."""
    (tmp_path / "mlinfra_probe_pkg_xyz.py").write_text(
        "import mlinfra_inner_missing_dep_xyz\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ImportError) as info:
            require("mlinfra_probe_pkg_xyz", extra="x")
        assert not isinstance(info.value, MissingDependencyError)
        assert info.value.name == "mlinfra_inner_missing_dep_xyz"
    finally:
        sys.modules.pop("mlinfra_probe_pkg_xyz", None)


# --------------------------------------------------------------------------- add_note


def test_add_note_keeps_every_note_and_the_cli_prints_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlinfra.cli.common import fail
    from mlinfra.errors import add_note

    err = MlinfraError("the sweep stopped: trial 3: /x/metadata.json: No space left on device")
    add_note(err, "trial 3 was not queued again: OSError: disk full")
    add_note(err, "(marking run abc FAILED also failed: timeout)")
    assert err.__notes__ == [
        "trial 3 was not queued again: OSError: disk full",
        "(marking run abc FAILED also failed: timeout)",
    ]
    with pytest.raises(SystemExit) as stop:
        fail(err)
    assert stop.value.code == 1
    shown = capsys.readouterr().err.splitlines()
    assert shown == [
        f"error: {err}",
        "  trial 3 was not queued again: OSError: disk full",
        "  (marking run abc FAILED also failed: timeout)",
    ]
