"""Every benchmark in ``bench/``, one markdown table: mlinfra's figure, the peer's, their ratio.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/all.py                            # make bench
    .venv/bin/python bench/all.py --quick                    # make bench-quick (< 2 minutes)
    .venv/bin/python bench/all.py --output bench-results.md  # also write the table to a file
    .venv/bin/python bench/all.py --doc docs/performance.md  # and put it in the doc (make bench)

Each benchmark runs as its own subprocess with ``--json PATH``; its normal output is kept (shown
with ``--verbose``, and the last lines of it when it fails) and its headline rows are collected
from the JSON into one table. ``--quick`` passes ``--quick`` to each benchmark, plus the smaller
sizes in ``QUICK_ARGS`` that keep the whole run under two minutes on a 2-core machine.
``bench/scaleout.py`` needs PostgreSQL at 127.0.0.1:5432; without it, its row says it was
skipped. The ratio is always mlinfra / peer: below 1 mlinfra is faster for times, above 1 it has
the higher throughput for rates (``/s``).

``--doc FILE`` replaces the part of FILE between the lines ``<!-- bench-table:begin -->`` and
``<!-- bench-table:end -->`` with the report (headings two levels down), so the documented table
is always one whole run's, unedited; only a full run of every benchmark may do that.

This is a benchmark, not a test: it exits 0 unless a benchmark fails (then 1, after the table,
and the doc is left as it was).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _report import commit, cpu, progress

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
BENCHMARKS = ("startup", "registry", "tracking", "fingerprints", "backup", "hpo", "scaleout")
# With --quick, on top of --quick: what keeps the sum under two minutes (measured on 2 cores
# shared with test suites; the figures are medians of fewer runs, so noisier).
QUICK_ARGS: dict[str, tuple[str, ...]] = {
    "startup": ("-n", "2"),
    "registry": ("--repeat", "1", "--count", "20"),
    "tracking": ("-n", "15"),
    "fingerprints": (),
    "backup": ("-n", "2"),
    "hpo": ("-n", "8", "-r", "1"),
    "scaleout": (),
}
# Skipped in quick mode (documented in the table's notes): only when no smaller size fits.
QUICK_SKIP: dict[str, str] = {
    "scaleout": "its own --quick takes over two minutes alone (an `mlflow server`, fresh "
    "PostgreSQL databases, sweeps with 1, 2 and 4 workers); `make bench` runs it",
}
POSTGRES = ("127.0.0.1", 5432)
DOC_BEGIN = "<!-- bench-table:begin -->"
DOC_END = "<!-- bench-table:end -->"
TIMEOUT_SECONDS = {True: 600, False: 3600}


def _postgres_up() -> bool:
    try:
        with socket.create_connection(POSTGRES, timeout=1.0):
            return True
    except OSError:
        return False


def _run(name: str, quick: bool, verbose: bool, folder: Path) -> tuple[list[dict[str, Any]], str]:
    """Run one benchmark; return its rows and a note ("" when it ran and wrote its rows)."""
    out = folder / f"{name}.json"
    argv = [sys.executable, str(BENCH / f"{name}.py"), "--json", str(out)]
    if quick:
        argv += ["--quick", *QUICK_ARGS.get(name, ())]
    progress(f"{name}: {shlex.join(argv[1:])}")
    try:
        done = subprocess.run(
            argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS[quick],
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], f"failed: no result within {TIMEOUT_SECONDS[quick]} s"
    if verbose:
        print(done.stdout, flush=True)
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        for line in tail:
            progress(f"{name}: {line}")
        last = tail[-1] if tail else "no output"
        return [], f"failed (exit {done.returncode}): {last}"
    rows: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    return rows, ""


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    magnitude = abs(value)
    if magnitude >= 100:
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    if not unit:
        return text
    return f"{text}{unit}" if unit == "/s" else f"{text} {unit}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _line(row: dict[str, Any]) -> str:
    unit = row.get("unit", "")
    met = {True: "yes", False: "**NO**", None: "–"}[row.get("met")]
    figure = row["figure"]
    if row.get("note"):
        figure = f"{figure} ({row['note']})"
    return (
        f"| {row['benchmark']} | {_cell(figure)} | {_num(row.get('mlinfra'), unit)} | "
        f"{_cell(row.get('peer') or '–')} | {_num(row.get('peer_value'), unit)} | "
        f"{_num(row.get('ratio'))} | {_cell(row.get('target') or '–')} | {met} |"
    )


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("mlinfra", "mlflow", "optuna", "SQLAlchemy", "hydra-core"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def _splice(doc: Path, report: str) -> None:
    """Put ``report`` between the bench-table markers of ``doc`` (atomically)."""
    text = doc.read_text(encoding="utf-8")
    begin, end = text.find(DOC_BEGIN), text.find(DOC_END)
    if begin < 0 or end < begin:
        raise SystemExit(f"error: {doc} has no '{DOC_BEGIN}' ... '{DOC_END}' section")
    body = "\n".join(f"##{line}" if line.startswith("#") else line for line in report.splitlines())
    new = f"{text[: begin + len(DOC_BEGIN)]}\n\n{body}\n\n{text[end:]}"
    tmp = doc.with_name(f".{doc.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(doc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark's quick mode")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--doc", type=Path, help="put the report between the bench-table markers of this file"
    )
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, metavar="NAME", help="run only these benchmarks"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print each one's output")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    if args.doc is not None and (args.quick or args.only):
        parser.error("--doc takes a full run of every benchmark (no --quick, no --only)")
    if args.doc is not None and DOC_BEGIN not in args.doc.read_text(encoding="utf-8"):
        parser.error(f"{args.doc} has no '{DOC_BEGIN}' line")

    began = time.perf_counter()
    load_before = _load()
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    timings: list[str] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="mlinfra-bench-all-") as tmp:
        for name in names:
            start = time.perf_counter()
            if args.quick and name in QUICK_SKIP:
                got, note = [], f"skipped in quick mode: {QUICK_SKIP[name]}"
            elif name == "scaleout" and not _postgres_up():
                host, port = POSTGRES
                got, note = [], f"skipped: no PostgreSQL at {host}:{port}"
            else:
                got, note = _run(name, args.quick, args.verbose, Path(tmp))
            took = time.perf_counter() - start
            failed = failed or note.startswith("failed")
            timings.append(f"{name} {took:.0f} s")
            progress(f"{name}: {len(got)} rows in {took:.0f} s{'; ' + note if note else ''}")
            rows.extend(got)
            if note:
                rows.append(
                    {"benchmark": name, "figure": f"not run: {note}", "unit": "", "met": None}
                )
                notes.append(f"{name}: {note}")
            elif name == "startup" and not any("hydra" in (r.get("peer") or "") for r in got):
                notes.append(
                    "startup: the Hydra compose row was skipped (hydra-core is not installed "
                    "in this environment)"
                )
    elapsed = time.perf_counter() - began

    command = [os.path.relpath(sys.executable), *sys.argv]
    lines = [
        "# mlinfra benchmarks" + (" (quick mode)" if args.quick else ""),
        "",
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu()}, {platform.platform()}",
        f"- python: {platform.python_version()} ({sys.executable}); {_versions()}",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- commit: {commit()}",
        f"- command: `{' '.join(command)}` (working directory {Path.cwd()})",
        f"- wall time: {elapsed:.0f} s ({', '.join(timings)}); load average before "
        f"{load_before}, after {_load()}",
        "",
        "| benchmark | figure | mlinfra | peer | peer figure | ratio | target | met? |",
        "|---|---|---:|---|---:|---:|---|---|",
        *(_line(row) for row in rows),
        "",
        "Ratio: mlinfra / peer, measured in the same run. Below 1 mlinfra is faster (times); for "
        "rates (`/s`, higher is better) above 1 mlinfra has the higher throughput. Each "
        "benchmark's own output (`.venv/bin/python bench/NAME.py`) explains its method and "
        "checks.",
    ]
    if args.quick:
        lines.append(
            "Quick mode: smaller sizes and fewer repetitions than `make bench`, so the figures "
            "are noisier; they are for a quick look, not for docs/performance.md."
        )
    lines += [f"- note: {note}" for note in notes]
    report = "\n".join(lines) + "\n"
    print(report, end="")
    if args.output:
        args.output.write_text(report, encoding="utf-8")
    if args.doc is not None and not failed:
        _splice(args.doc, report)
        progress(f"the table is in {args.doc}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
