"""``import mlinfra.naming`` loads none of the heavy dependencies."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("mlflow", "optuna", "sqlalchemy", "pandas", "torch", "azure")


def test_import_naming_is_light() -> None:
    code = (
        "import sys\n"
        "import mlinfra.naming, mlinfra.naming.display_policy, mlinfra.naming.keys\n"
        "import mlinfra.naming.tags, mlinfra.naming.experiments, mlinfra.cli.name_cmd\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
