"""Every kind of bad configuration input: refused with file, line and key, and exit status 1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlinfra.cli.main import cli

BOMB = "\n".join(
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
)


def _replace(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(cfg: Path) -> None:
        path = cfg / rel
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))

    return edit


def _write(rel: str, text: str) -> Callable[[Path], None]:
    def edit(cfg: Path) -> None:
        (cfg / rel).write_text(text)

    return edit


def _huge(cfg: Path) -> None:
    with (cfg / "train.yaml").open("r+b") as handle:
        handle.truncate(50 * 1024 * 1024)


def _delete(rel: str) -> Callable[[Path], None]:
    def edit(cfg: Path) -> None:
        (cfg / rel).unlink()

    return edit


# (id, edit, extra CLI args, text the error must contain)
CASES: list[tuple[str, Callable[[Path], None], list[str], list[str]]] = [
    (
        "malformed-yaml",
        _write("train.yaml", "training:\n  epochs: [1, 2\n"),
        [],
        ["config/train.yaml:", "malformed YAML"],
    ),
    (
        "python-object-tag",
        _write("train.yaml", "x: !!python/object/apply:os.getcwd []\n"),
        [],
        ["config/train.yaml:1", "not allowed"],
    ),
    (
        "missing-domain-file",
        _delete("hpo/prod.yaml"),
        [],
        ["config/experiment/resume_ner_baseline.yaml:10", "key 'hpo_config'", "does not exist"],
    ),
    (
        "interpolation-cycle",
        _write("env/local.yaml", "a: ${env.b}\nb: ${env.a}\n"),
        [],
        ["config/env/local.yaml:1", "interpolation cycle"],
    ),
    (
        "unset-env-var",
        _write("env/local.yaml", "token: ${SOME_UNSET_TOKEN}\n"),
        [],
        ["config/env/local.yaml:1", "SOME_UNSET_TOKEN is not set"],
    ),
    (
        "wrong-type",
        _replace("hpo/prod.yaml", "max_trials: ${HPO_MAX_TRIALS:-20}", "n_trials: many"),
        [],
        ["config/hpo/prod.yaml:23", "key 'hpo.sampling.n_trials'", "'many'"],
    ),
    (
        "unknown-override-key",
        lambda cfg: None,
        ["hpo.sampling.trials=3"],
        ["unknown key 'hpo.sampling.trials'", "+hpo.sampling.trials="],
    ),
    (
        "duplicate-key",
        _write("train.yaml", "training:\n  epochs: 1\n  epochs: 2\n"),
        [],
        ["config/train.yaml:3", "duplicate key 'epochs'", "line 2"],
    ),
    ("huge-file", _huge, [], ["config/train.yaml", "byte limit"]),
    ("alias-bomb", _write("train.yaml", BOMB), [], ["config/train.yaml:", "alias bomb"]),
]


@pytest.mark.parametrize(
    ("edit", "args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_with_location(
    example_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    edit: Callable[[Path], None],
    args: list[str],
    expected: list[str],
) -> None:
    edit(example_project / "config")
    monkeypatch.chdir(example_project)
    monkeypatch.delenv("HPO_MAX_TRIALS", raising=False)
    monkeypatch.delenv("SOME_UNSET_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["config", "show", *args])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    for text in expected:
        assert text in result.stderr, (text, result.stderr)
    if not args:
        validated = CliRunner().invoke(cli, ["config", "validate"])
        assert validated.exit_code == 1
        assert expected[0] in validated.stderr
