"""Bad YAML in configuration files: unsafe tags, alias bombs, deep nesting, huge files, NUL and
control characters, file references that leave the config folder.

Each case must be refused with a ``ConfigError`` that names the file (and the line and key where
there is one), in bounded time (``timeout(20)``) and memory (a child process under
``RLIMIT_AS`` for the bombs, ``tracemalloc`` for huge files), and nothing may be written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from mlinfra.config import compose_experiment, load_infra_config
from mlinfra.errors import ConfigError

EXPERIMENT = "resume_ner_baseline"
DATA = "data/resume_tiny.yaml"  # the data file of the experiment (not of a stage)

Guard = Callable[..., AbstractContextManager[None]]


def _append(config_dir: Path, rel: str, text: str) -> int:
    """Append ``text`` to a config file; returns the line number of its first line."""
    path = config_dir / rel
    old = path.read_text(encoding="utf-8")
    if not old.endswith("\n"):
        old += "\n"
    path.write_text(old + text, encoding="utf-8")
    return len(old.splitlines()) + 1


def _refused(config_dir: Path, infra: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        if infra is None:
            compose_experiment(config_dir, EXPERIMENT, environ={})
        else:
            load_infra_config(config_dir, infra, environ={})  # type: ignore[call-overload]
    return info.value


# ---- unsafe tags ----------------------------------------------------------------------------

UNSAFE_TAGS = [
    "!!python/object/apply:os.system ['touch pwned']",
    "!!python/object/new:os.system [touch pwned]",
    "!!python/object:builtins.dict {}",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!!binary aGVsbG8=",
    "!!set {a: null}",
    "!!omap [a: 1]",
    "!!pairs [a: 1]",
    "!custom value",
    "!<tag:evil.example,2024:thing> value",
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("value", UNSAFE_TAGS)
def test_unsafe_tag_in_experiment_domain_file_is_refused(
    example_project: Path, nothing_written: Guard, work_cwd: Path, value: str
) -> None:
    config_dir = example_project / "config"
    line = _append(config_dir, DATA, f"evil: {value}\n")
    with nothing_written(example_project, work_cwd):
        err = _refused(config_dir)
    assert err.file is not None and err.file.endswith(DATA), err
    assert err.line == line, err
    assert err.key == "evil", err
    assert "is not allowed" in str(err) and f"{DATA}:{line}" in str(err)
    assert not (work_cwd / "pwned").exists() and not (example_project / "pwned").exists()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("infra", ["paths", "naming", "tags", "mlflow"])
def test_unsafe_tag_in_infra_file_is_refused(
    example_project: Path, nothing_written: Guard, infra: str
) -> None:
    config_dir = example_project / "config"
    line = _append(config_dir, f"{infra}.yaml", "evil: !!python/object/apply:os.getcwd []\n")
    with nothing_written(example_project):
        err = _refused(config_dir, infra)
    assert err.file is not None and err.file.endswith(f"{infra}.yaml"), err
    assert (err.line, err.key) == (line, "evil"), err
    assert "!!python/object/apply:os.getcwd" in str(err)


@pytest.mark.timeout(20)
def test_tag_on_whole_document_is_refused(example_project: Path, nothing_written: Guard) -> None:
    config_dir = example_project / "config"
    path = config_dir / DATA
    path.write_text(
        "--- !!python/object:builtins.dict\n" + path.read_text(encoding="utf-8"), "utf-8"
    )
    with nothing_written(example_project):
        err = _refused(config_dir)
    assert err.file is not None and err.file.endswith(DATA) and err.line == 1, err
    assert "!!python/object:builtins.dict" in str(err)


# ---- alias and merge-key bombs: in a child process with a hard memory cap -------------------

_BOMB_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    limit = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from mlinfra.config import compose_experiment, load_infra_config
    from mlinfra.errors import ConfigError
    try:
        if sys.argv[2] == "compose":
            compose_experiment(sys.argv[1], "resume_ner_baseline", environ={})
        else:
            load_infra_config(sys.argv[1], sys.argv[2], environ={})
    except ConfigError as exc:
        print(json.dumps({"file": exc.file, "line": exc.line, "key": exc.key, "msg": str(exc)}))
        sys.exit(0)
    print(json.dumps({"accepted": True}))
    sys.exit(3)
    """
)
MEMORY_CAP = 1536 * 1024 * 1024  # address space of the child: the bombs below need far more


def _laughs(levels: int = 9, width: int = 10) -> str:
    """The billion laughs: ``width ** levels`` leaves from a few hundred bytes."""
    lines = ["lol0: &lol0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * width) + "]")
    return "bomb:\n" + "".join(f"  {line}\n" for line in lines)


def _merge_bomb(levels: int = 9, width: int = 10) -> str:
    lines = ["m0: &m0 {a: 1, b: 2, c: 3}"]
    for i in range(1, levels):
        refs = ", ".join([f"*m{i - 1}"] * width)
        lines.append(f"m{i}: &m{i} {{<<: [{refs}], k{i}: [{refs}]}}")
    return "bomb:\n" + "".join(f"  {line}\n" for line in lines)


def _run_capped(config_dir: Path, target: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLINFRA_"))}
    proc = subprocess.run(
        [sys.executable, "-c", _BOMB_CHILD, str(config_dir), target, str(MEMORY_CAP)],
        capture_output=True,
        text=True,
        timeout=18,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-2000:]}"
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.timeout(20)
@pytest.mark.parametrize("bomb", [_laughs, _merge_bomb], ids=["alias", "merge-key"])
@pytest.mark.parametrize("target", ["compose", "mlflow"])
def test_bomb_is_refused_in_bounded_time_and_memory(
    example_project: Path, nothing_written: Guard, bomb: Callable[[], str], target: str
) -> None:
    config_dir = example_project / "config"
    rel = DATA if target == "compose" else "mlflow.yaml"
    line = _append(config_dir, rel, bomb())
    with nothing_written(example_project):
        result = _run_capped(config_dir, target)
    assert "accepted" not in result, f"{bomb.__name__} in {rel} was accepted"
    assert str(result["file"]).endswith(rel), result
    assert isinstance(result["line"], int) and result["line"] > line, result
    assert str(result["key"]).startswith("bomb."), result
    assert "alias bomb" in str(result["msg"]), result


# ---- deep nesting ---------------------------------------------------------------------------

DEEP = {
    "flow-lists-65": "deep: " + "[" * 65 + "]" * 65 + "\n",
    "flow-maps-100": "deep: " + "{a: " * 100 + "1" + "}" * 100 + "\n",
    "block-maps-80": "deep:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(80)),
    "flow-lists-100000": "deep: " + "[" * 100_000 + "]" * 100_000 + "\n",
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("text", list(DEEP.values()), ids=list(DEEP))
def test_deep_nesting_is_refused(example_project: Path, nothing_written: Guard, text: str) -> None:
    config_dir = example_project / "config"
    line = _append(config_dir, DATA, text)
    with nothing_written(example_project):
        err = _refused(config_dir)
    assert err.file is not None and err.file.endswith(DATA), err
    assert err.line is not None and err.line >= line, err
    assert "nest" in err.reason, err  # "nesting deeper than 64 levels" / "maximum nesting depth"


# ---- huge files: never read, never held in memory -------------------------------------------

LIMIT = 5 * 1024 * 1024


def _sparse(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)  # a hole: no data blocks, no string in memory


def _streamed(path: Path, size: int) -> None:
    chunk = b"# padding comment line of a configuration file far too large to read\n" * 1024
    with path.open("ab") as handle:
        while handle.tell() < size:
            handle.write(chunk)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("make", [_sparse, _streamed], ids=["sparse", "streamed"])
@pytest.mark.parametrize("rel", [DATA, "experiment/resume_ner_baseline.yaml", "paths.yaml"])
def test_huge_file_is_refused_unread(
    example_project: Path, nothing_written: Guard, make: Callable[[Path, int], None], rel: str
) -> None:
    config_dir = example_project / "config"
    path = config_dir / rel
    make(path, LIMIT + 1)
    size = path.stat().st_size
    infra = "paths" if rel == "paths.yaml" else None
    with nothing_written(example_project):
        tracemalloc.start()
        try:
            err = _refused(config_dir, infra)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert err.file is not None and err.file.endswith(rel), err
    assert f"file is {size} bytes" in str(err) and str(LIMIT) in str(err), err
    assert peak < LIMIT // 4, f"{peak} bytes allocated to refuse a file of {size} bytes"


# ---- NUL, control characters, encodings -----------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "raw", [b"evil: a\x00b\n", b"evil: a\x07b\n", b"evil: a\x1b[31mred\n", b"evil: \x7f\n"]
)
def test_raw_control_character_in_file_is_refused(
    example_project: Path, nothing_written: Guard, raw: bytes
) -> None:
    config_dir = example_project / "config"
    path = config_dir / DATA
    path.write_bytes(path.read_bytes() + raw)
    with nothing_written(example_project):
        err = _refused(config_dir)
    assert err.file is not None and err.file.endswith(DATA), err
    assert "control characters are not allowed" in str(err) or "not allowed" in str(err), err


@pytest.mark.timeout(20)
@pytest.mark.parametrize("raw", [b"name: \xff\xfe\n", b"\xef\xbb\xbfname: \xc3\x28\n"])
def test_invalid_utf8_is_refused(example_project: Path, nothing_written: Guard, raw: bytes) -> None:
    config_dir = example_project / "config"
    (config_dir / DATA).write_bytes(raw)
    with nothing_written(example_project):
        err = _refused(config_dir)
    assert err.file is not None and err.file.endswith(DATA), err
    assert "not UTF-8" in str(err), err


ESCAPED = {
    "nul": r'"a\0b"',
    "escape": r'"a\e[2Jb"',
    "bell": r'"a\x07b"',
    "rtl-override": r'"report\u202Efdp.exe"',
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("value", list(ESCAPED.values()), ids=list(ESCAPED))
def test_escaped_control_character_in_value_is_refused(
    example_project: Path, nothing_written: Guard, value: str
) -> None:
    config_dir = example_project / "config"
    path = config_dir / DATA
    text = path.read_text(encoding="utf-8").replace("name: resume_tiny", f"name: {value}")
    path.write_text(text, encoding="utf-8")
    with nothing_written(example_project):
        err = _refused(config_dir)
    assert err.file is not None and err.file.endswith(DATA) and err.key == "name", err


# ---- file references that leave the config folder -------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "ref",
    [
        "../../outside.yaml",
        "data/../../../outside.yaml",
        "{outside}",
        "..%2f..%2foutside.yaml",
        "data/resume_tiny.yaml\x00.txt",
    ],
)
def test_experiment_file_reference_outside_config_is_refused(
    example_project: Path, nothing_written: Guard, ref: str
) -> None:
    config_dir = example_project / "config"
    outside = example_project.parent / "outside.yaml"
    outside.write_text(
        (config_dir / DATA).read_text(encoding="utf-8"), encoding="utf-8"
    )  # a valid data file, so only its place can make it wrong
    ref = ref.format(outside=outside)
    exp = config_dir / "experiment" / f"{EXPERIMENT}.yaml"
    text = exp.read_text(encoding="utf-8")
    exp.write_text(text.replace("data/resume_tiny.yaml", json.dumps(ref)), encoding="utf-8")
    line = text.splitlines().index("data_config: data/resume_tiny.yaml") + 1
    with nothing_written(example_project):
        err = _refused(config_dir)
    assert err.file is not None and err.file.endswith(f"experiment/{EXPERIMENT}.yaml"), err
    assert (err.line, err.key) == (line, "data_config"), err
