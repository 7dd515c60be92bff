"""docs/reliability.md: every row of the fault matrix names a test that exists, every stateful
operation has rows for each fault the matrix promises, and no row hides a known failure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"
OPERATIONS = ("reservation", "index update", "metadata write", "backup", "study snapshot", "sweep")
#: Each operation is checked under each of these faults (words a row's fault column holds).
FAULTS = {
    "SIGKILL": ("sigkill",),
    "disk full": ("disk full",),
    "permission denied": ("permission denied", "read-only"),
    "clock moving backwards": ("clock steps back",),
}


def _rows() -> list[tuple[str, str, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    table = re.search(r"```text\n(.*?)```", text, re.S)
    assert table is not None, "docs/reliability.md has no ```text table"
    lines = table.group(1).strip().splitlines()
    assert lines[0].startswith("operation | fault | invariant | test"), lines[0]
    rows = []
    for line in lines[1:]:
        cells = [c.strip() for c in line.split(" | ")]
        assert len(cells) == 4, f"a row needs 4 cells: {line!r}"
        rows.append((cells[0], cells[1], cells[2], cells[3]))
    return rows


ROWS = _rows()


def _decorators(path: Path, name: str) -> str | None:
    """The decorator lines of test ``name`` in ``path``, or ``None`` when there is no such test."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"def {re.escape(name)}\(", line):
            above = []
            for previous in reversed(lines[:index]):
                if not previous.strip():
                    break
                above.append(previous)
            return "\n".join(reversed(above))
    return None


@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0]}: {r[1][:40]}" for r in ROWS])
def test_each_row_names_an_existing_test(row: tuple[str, str, str, str]) -> None:
    operation, _fault, invariant, test = row
    assert operation in OPERATIONS, operation
    file, _, name = test.partition("::")
    path = REPO / file
    assert path.is_file() and file.startswith("tests/"), f"{test}: no such test file"
    decorators = _decorators(path, name)
    assert decorators is not None, f"{test}: no such test"
    marked = "xfail(" in decorators
    assert marked == invariant.startswith("BUG"), (
        f"{test}: a row says BUG exactly when its test is a strict xfail"
    )


@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_operation_is_checked_under_every_fault(operation: str) -> None:
    faults = " / ".join(f.lower() for op, f, _i, _t in ROWS if op == operation)
    missing = [name for name, words in FAULTS.items() if not any(w in faults for w in words)]
    assert not missing, f"{operation}: no row for {missing}"
