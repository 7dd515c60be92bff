"""An ``mlflow server`` in the background: started in its own process group, found again through
a state file, stopped as a group (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from mlinfra.core.atomic import atomic_write_json
from mlinfra.core.redact import hide_password
from mlinfra.services.postgres import ServicesError

__all__ = ["ServerState", "healthy", "read_state", "start_server", "stop_server"]

STATE_FILE = "mlflow-server.json"
LOG_FILE = "mlflow-server.log"
#: Servers this process started: kept so they are reaped (waited for) when stopped here, and
#: outlive this process otherwise (they run in their own session).
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ServerState:
    """A started server, as its state file records it."""

    pid: int
    port: int
    url: str
    backend_store_uri: str
    artifacts: str
    log: str
    started_at: float


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether ``<url>/health`` answers HTTP 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _mlflow_command() -> list[str]:
    script = Path(sys.executable).parent / "mlflow"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlflow"]


def _is_our_server(pid: int) -> bool:
    """The process ``pid`` leads its own group and runs mlflow (not a recycled pid)."""
    try:
        if os.getpgid(pid) != pid:
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ProcessLookupError, PermissionError):
        return False
    except OSError:  # no /proc (macOS): trust the process group
        return True
    return b"mlflow" in cmdline


def read_state(folder: Path) -> ServerState | None:
    """The state of a server started from ``folder`` that still runs, else ``None`` (a stale
    state file is removed)."""
    import json

    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = ServerState(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        path.unlink(missing_ok=True)
        return None
    if not _is_our_server(state.pid):
        path.unlink(missing_ok=True)
        return None
    return state


def _tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])


def start_server(
    folder: Path,
    backend_store_uri: str,
    *,
    port: int = 0,
    workers: int = 2,
    timeout: float = 90.0,
) -> ServerState:
    """Start ``mlflow server`` on 127.0.0.1 (``port``, or a free one when 0) with runs in
    ``backend_store_uri`` and artifacts in ``folder/artifacts``; wait for ``/health``.

    Raises:
        ServicesError: the port is taken, or the server did not answer within ``timeout``
            (the end of its log is in the message).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if port and _port_taken(port):
        raise ServicesError(
            f"port {port} on 127.0.0.1 is taken by another program; pass another --port, or "
            "--port 0 for a free one"
        )
    chosen = port or _free_port()
    url = f"http://127.0.0.1:{chosen}"
    log = folder / LOG_FILE
    artifacts = folder / "artifacts"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # the server's job runner (huey consumers) serves GenAI jobs: not needed for tracking
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    argv = [
        *_mlflow_command(),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(chosen),
        "--workers",
        str(workers),
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        str(artifacts),
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one
        )
    _STARTED[proc.pid] = proc
    state = ServerState(
        proc.pid,
        chosen,
        url,
        hide_password(backend_store_uri),
        str(artifacts),
        str(log),
        time.time(),
    )
    atomic_write_json(folder / STATE_FILE, asdict(state))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if healthy(url):
            return state
        time.sleep(0.25)
    _stop_group(proc.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    (folder / STATE_FILE).unlink(missing_ok=True)
    raise ServicesError(
        f"mlflow server did not answer {url}/health within {timeout:.0f} s; the end of its log "
        f"({log}):\n{_tail(log)}"
    )


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group ``pid``, wait up to ``grace`` seconds, then SIGKILL it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        _reap(pid)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    proc = _STARTED.pop(pid, None)
    if proc is not None:
        proc.wait(timeout=10)
    else:
        _reap(pid)


def _reap(pid: int) -> None:
    """Collect ``pid`` when it is this process's child (so it does not linger as a zombie)."""
    proc = _STARTED.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _STARTED[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_server(folder: Path) -> ServerState | None:
    """Stop the server started from ``folder``; ``None`` when none runs."""
    state = read_state(folder)
    if state is None:
        return None
    _stop_group(state.pid)
    (folder / STATE_FILE).unlink(missing_ok=True)
    return state
