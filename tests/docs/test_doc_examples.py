"""Every ```python block in README.md and docs/*.md runs, so the documentation cannot drift.

The blocks of one markdown file run in order in one shared namespace (a later block may use what an
earlier one defined), with the working directory set to a fresh copy of ``examples/resume_ner``.
A block that raises, or an ``assert`` in it that fails, fails the test of its file; the traceback
points at the markdown file and line. Blocks fenced as ``text``, ``bash``, ``yaml`` and so on are
not run. A file without any ```python block is skipped.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "resume_ner"

# An opening fence: up to any indentation (fences inside list items are indented), three or more
# backticks or tildes, then an info string whose first word names the language.
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")
_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its language, its text, and the markdown line its first code line is on."""

    language: str
    code: str
    line: int


def extract_code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced code block of a markdown document, in order.

    Follows CommonMark where it matters here: a fence closes only on the same character, at least
    as long as the opening run, with nothing but spaces after it, so a ```python block shown inside
    a ````markdown block is not a block of its own. Content lines lose the opening fence's
    indentation.

    Raises:
        ValueError: a fence is never closed (the rest of the document would silently be code).
    """
    blocks: list[CodeBlock] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if match is None or (match["fence"][0] == "`" and "`" in match["info"]):
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        language = match["info"].split()[0].lower() if match["info"].strip() else ""
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        start = i + 1
        end = start
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"line {i + 1}: the {fence} fence opened here is never closed")
        # As CommonMark does: remove the fence's indentation, or as much of it as a line has.
        body = [ln[min(len(indent), len(ln) - len(ln.lstrip())) :] for ln in lines[start:end]]
        blocks.append(CodeBlock(language, "\n".join(body) + "\n", start + 1))
        i = end + 1
    return blocks


def python_blocks(path: Path) -> list[CodeBlock]:
    """The ```python blocks of one markdown file."""
    blocks = extract_code_blocks(path.read_text(encoding="utf-8"))
    return [b for b in blocks if b.language == "python"]


def _markdown_files() -> list[Path]:
    readme = REPO / "README.md"
    return ([readme] if readme.is_file() else []) + sorted((REPO / "docs").glob("*.md"))


# Files without Python examples (performance tables, CLI transcripts) have nothing to run.
MARKDOWN_FILES = [p for p in _markdown_files() if python_blocks(p)]


def _isolate_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the variables the example config reads, so documented values do not depend on the
    shell the tests run in."""
    names = {
        m for f in EXAMPLE.rglob("*.y*ml") for m in _ENV_REF.findall(f.read_text(encoding="utf-8"))
    }
    names |= {n for n in os.environ if n.startswith(("MLINFRA_", "MLFLOW_"))}
    for name in names:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("markdown", MARKDOWN_FILES, ids=[p.name for p in MARKDOWN_FILES])
def test_python_blocks_run(markdown: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(markdown)

    project = tmp_path / EXAMPLE.name
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns("outputs", "mlruns", "__pycache__")
    )
    monkeypatch.chdir(project)
    _isolate_environment(monkeypatch)
    # Blocks may put the project on sys.path (for a `_schema` model, say); undo that afterwards.
    monkeypatch.setattr(sys, "path", list(sys.path))

    # A real module as the shared namespace, so classes defined in a block (dataclasses, pydantic
    # models) can find their module.
    module_name = "doc_example_" + re.sub(r"\W", "_", markdown.stem)
    module = types.ModuleType(module_name)
    module.__file__ = str(markdown)
    monkeypatch.setitem(sys.modules, module_name, module)

    loaded_before = set(sys.modules)
    try:
        for block in blocks:
            importlib.invalidate_caches()  # a block may have just written a module to import
            # Pad with blank lines so traceback line numbers are the markdown file's own.
            source = "\n" * (block.line - 1) + block.code
            exec(compile(source, str(markdown), "exec"), module.__dict__)
    finally:
        for name in set(sys.modules) - loaded_before:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if file.startswith(str(tmp_path)):
                del sys.modules[name]


def test_extractor_finds_only_real_python_blocks() -> None:
    sample = "\n".join(
        [
            "# Title",
            "```python",
            "x = 1",
            "```",
            "````markdown",
            "```python",
            "not_a_block = True",
            "```",
            "````",
            "- a list item:",
            "",
            "  ```python",
            "  if x:",
            "      y = 2",
            "  ```",
            "~~~bash",
            "echo hi",
            "~~~",
            "```text",
            "```",
        ]
    )
    blocks = extract_code_blocks(sample)
    assert [b.language for b in blocks] == ["python", "markdown", "python", "bash", "text"]
    runnable = [b for b in blocks if b.language == "python"]
    assert [b.code for b in runnable] == ["x = 1\n", "if x:\n    y = 2\n"]
    assert [b.line for b in runnable] == [3, 13]
    with pytest.raises(ValueError, match="never closed"):
        extract_code_blocks("```python\nx = 1\n")
