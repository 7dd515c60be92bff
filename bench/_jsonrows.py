"""Headline rows of a benchmark as JSON, for ``bench/all.py`` (``--json PATH`` of each script).

Each row: ``benchmark``, ``figure``, ``mlinfra`` (value in ``unit``), ``unit``, ``peer`` (name),
``peer_value`` (same unit), ``ratio`` (always mlinfra / peer, so one convention across the
combined table), ``target`` (a readable condition, or null), ``met`` (true, false or null) and
``better`` (``lower`` or ``higher``: which way a figure is good).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def row(
    benchmark: str,
    figure: str,
    mlinfra: float | None,
    unit: str,
    peer: str | None,
    peer_value: float | None,
    *,
    target: str | None = None,
    met: bool | None = None,
    better: str = "lower",
    note: str | None = None,
) -> dict[str, Any]:
    """One headline row; the ratio is computed here (mlinfra / peer) when both values exist."""
    ratio = None
    if mlinfra is not None and peer_value:
        ratio = mlinfra / peer_value
    out: dict[str, Any] = {
        "benchmark": benchmark,
        "figure": figure,
        "mlinfra": mlinfra,
        "unit": unit,
        "peer": peer,
        "peer_value": peer_value,
        "ratio": ratio,
        "target": target,
        "met": met,
        "better": better,
    }
    if note:
        out["note"] = note
    return out


def write(path: Path | str | None, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` to ``path`` as a JSON list (nothing when ``path`` is None)."""
    if path is None:
        return
    Path(path).write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
