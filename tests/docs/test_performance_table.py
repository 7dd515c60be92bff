"""docs/performance.md holds one whole `make bench` run's table, unedited between its markers."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "performance.md"
BENCHMARKS = ("startup", "registry", "tracking", "fingerprints", "backup", "hpo", "scaleout")


def _table() -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- bench-table:begin -->\n(.*?)<!-- bench-table:end -->", text, re.S)
    assert found is not None, "docs/performance.md lost its bench-table markers"
    return found.group(1)


def test_the_documented_table_is_a_full_run_of_every_benchmark() -> None:
    table = _table()
    assert "## mlinfra benchmarks" in table, "no report between the markers: run `make bench`"
    assert "(quick mode)" not in table, "a quick run's table: run `make bench`"
    assert "--doc docs/performance.md" in table  # the command that wrote it
    for line in ("- machine:", "- date:", "- commit:", "- command:"):
        assert line in table, line
    rows = [r for r in table.splitlines() if r.startswith("| ") and not r.startswith("| bench")]
    measured = {r.split(" | ")[0].strip("| ") for r in rows if "not run:" not in r}
    assert measured == set(BENCHMARKS), f"benchmarks without figures: {set(BENCHMARKS) - measured}"
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 8, row
        assert cells[5] not in ("", "–"), f"a row without a ratio: {row}"
