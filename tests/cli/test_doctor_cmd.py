"""``mlinfra doctor``: one checklist line per check, nothing created, exit 1 on any problem."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlinfra.cli.main import cli

ENV_VARS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLINFRA_REGISTRY_URL",
    "MLINFRA_PLATFORM",
    "MLINFRA_PROJECT_ROOT",
)
CHECKS = (
    "platform",
    "project",
    "config",
    "tracking URI",
    "tracking store",
    "tracking disk",
    "registry",
    "registry disk",
)


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(example_project)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return example_project


def _doctor(*args: str) -> Result:
    return CliRunner().invoke(cli, ["doctor", *args])


def _lines(result: Result) -> dict[str, str]:
    """``check name → its line``, for the lines that start with a mark."""
    out = {}
    for line in result.stdout.splitlines():
        if line[:1] in ("✓", "✗"):
            name = line[2:].split("  ")[0].strip()
            out[name] = line
    return out


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_fresh_project_passes_and_nothing_is_created(project: Path) -> None:
    before = _listing(project)
    result = _doctor()
    assert result.exit_code == 0, result.output
    lines = _lines(result)
    assert list(lines) == list(CHECKS)
    assert all(line.startswith("✓") for line in lines.values()), result.stdout
    assert "local (detected)" in lines["platform"]
    assert str(project) in lines["project"] and str(project / "config") in lines["project"]
    assert "valid (" in lines["config"]
    assert f"sqlite:///{project / 'mlruns' / 'mlflow.db'}" in lines["tracking URI"]
    assert "(from the platform default)" in lines["tracking URI"]
    assert "no MLflow database yet" in lines["tracking store"]
    assert str(project / "outputs" / "cache" / "mlinfra_registry.db") in lines["registry"]
    assert result.stdout.rstrip().endswith(f"all {len(CHECKS)} checks passed")
    assert _listing(project) == before


def test_an_existing_database_is_reported(project: Path) -> None:
    (project / "mlruns").mkdir()
    (project / "mlruns" / "mlflow.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 84)
    result = _doctor()
    assert result.exit_code == 0, result.output
    assert "MLflow database exists (100 bytes)" in _lines(result)["tracking store"]


def test_a_file_that_is_not_sqlite_fails(project: Path) -> None:
    (project / "mlruns").mkdir()
    (project / "mlruns" / "mlflow.db").write_text("{}", encoding="utf-8")
    result = _doctor()
    assert result.exit_code == 1
    assert _lines(result)["tracking store"].startswith("✗")
    assert "is not a SQLite database" in result.stdout


def test_an_unreachable_tracking_server_fails_with_a_fix(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    result = _doctor()
    assert result.exit_code == 1
    lines = _lines(result)
    assert "(from $MLFLOW_TRACKING_URI)" in lines["tracking URI"]
    assert lines["tracking store"].startswith("✗")
    assert "cannot reach http://127.0.0.1:9" in lines["tracking store"]
    assert "tracking disk" not in lines
    after = result.stdout.split(lines["tracking store"], 1)[1].splitlines()[1]
    assert after.strip().startswith("fix: start the server")
    assert "1 problem(s): tracking store" in result.stdout


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = 200 if self.path == "/health" else 404
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_a_tracking_server_that_answers_passes(
    project: Path, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    result = _doctor()
    assert result.exit_code == 0, result.output
    assert "answers (GET /health answered HTTP 200)" in _lines(result)["tracking store"]


def test_a_database_on_google_drive_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////content/drive/MyDrive/mlruns/mlflow.db")
    result = _doctor()
    assert result.exit_code == 1
    lines = _lines(result)
    assert lines["tracking disk"].startswith("✗")
    assert "is on Google Drive" in lines["tracking disk"]
    assert "fix: keep the MLflow database on local disk" in result.stdout
    assert lines["registry disk"].startswith("✓")


def test_a_registry_on_google_drive_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLINFRA_REGISTRY_URL", "sqlite:////content/drive/MyDrive/reg.db")
    result = _doctor()
    assert result.exit_code == 1
    lines = _lines(result)
    assert "(from $MLINFRA_REGISTRY_URL)" in lines["registry"]
    assert lines["registry disk"].startswith("✗") and "Google Drive" in lines["registry disk"]
    assert "1 problem(s): registry disk" in result.stdout


def test_an_unreachable_postgres_registry_fails_without_showing_the_password(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLINFRA_REGISTRY_URL", "postgresql://me:secret@127.0.0.1:9/mlinfra")
    result = _doctor()
    assert result.exit_code == 1
    lines = _lines(result)
    assert lines["registry"].startswith("✓")
    assert "postgresql://me:***@127.0.0.1:9/mlinfra" in lines["registry"]
    assert lines["registry driver"].startswith("✓")
    assert lines["registry server"].startswith("✗")
    assert "secret" not in result.output


def test_an_unknown_platform_fails(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLINFRA_PLATFORM", "azure")
    result = _doctor()
    assert result.exit_code == 1
    assert "did you mean 'azureml'" in _lines(result)["platform"]
    assert "fix: set MLINFRA_PLATFORM to one of" in result.stdout


def test_config_problems_are_counted(project: Path) -> None:
    (project / "config" / "train.yaml").write_text("a: [1,\n", encoding="utf-8")
    result = _doctor()
    assert result.exit_code == 1
    line = _lines(result)["config"]
    assert line.startswith("✗") and "problem(s); the first:" in line
    assert "fix: `mlinfra config validate`" in result.stdout


def test_outside_a_project_every_dependent_check_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    result = _doctor()
    assert result.exit_code == 1
    lines = _lines(result)
    assert lines["platform"].startswith("✓")
    for name in ("project", "config", "tracking URI", "tracking store", "registry"):
        assert lines[name].startswith("✗"), name
    assert list(empty.iterdir()) == []


def test_help_lists_runs_and_doctor() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "List and find MLflow runs of the project." in result.stdout
    assert "Check the platform, project, tracking and registry setup." in result.stdout


def test_doctor_does_not_import_mlflow(project: Path) -> None:
    code = (
        "import sys\n"
        "from mlinfra.cli.main import main\n"
        "try:\n    main(['doctor'])\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_password_in_the_tracking_uri_is_never_shown(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://me:secret@127.0.0.1:9")
    result = _doctor()
    assert result.exit_code == 1
    assert "http://me:***@127.0.0.1:9" in _lines(result)["tracking URI"]
    assert "secret" not in result.output
