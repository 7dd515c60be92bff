"""`import mlinfra` and `mlinfra --help` must not load the heavy dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("mlflow", "optuna", "azure", "pandas", "sqlalchemy", "torch")

_PROBE = """
import sys
{body}
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print('\\nloaded:' + ','.join(heavy))
"""


def _loaded(body: str) -> str:
    code = _PROBE.format(body=body, heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("loaded:"), result.stdout
    return last.removeprefix("loaded:")


def test_heavy_dependencies_are_installed() -> None:
    # The check below only means something if the heavy packages could be imported.
    assert _loaded("import mlflow, optuna, sqlalchemy") != ""


def test_import_mlinfra_is_light() -> None:
    assert _loaded("import mlinfra, mlinfra.core, mlinfra.errors") == ""


def test_import_config_layer_is_light() -> None:
    assert _loaded("import mlinfra.config") == ""


def test_cli_help_is_light() -> None:
    body = (
        "from mlinfra.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
    )
    assert _loaded(body) == ""


def test_cli_help_lists_commands_without_importing_them() -> None:
    exe = Path(sys.executable).parent / "mlinfra"
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "config" in result.stdout
    assert "Show, explain and validate configuration." in result.stdout
    body = (
        "from mlinfra.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'mlinfra.cli.config_cmd' not in sys.modules\n"
        "assert 'pydantic' not in sys.modules\n"
    )
    _loaded(body)
