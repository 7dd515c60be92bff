"""Submit an AzureML job and follow it to the end, reliably.

:func:`submit_and_wait_for_job` submits a job and hands it to :func:`wait_for_job`, which follows
any job by name (also one submitted earlier, by another process: ``mlinfra azureml wait NAME``):

1. **Submission** retries transient failures (no connection, HTTP 408/429/5xx) with exponential
   backoff, honouring ``Retry-After``. Before sending a job again it looks it up by name, because
   a request whose answer was lost may still have created it: a job is never submitted twice.
2. **Logs** stream from ``ml_client.jobs.stream`` in a background thread, and the last lines are
   kept. When the stream raises, or prints nothing for ``silence_timeout`` seconds (a known
   AzureML failure: the stream hangs while the job moves on), the job's status decides: polled
   with ``jobs.get`` with backoff (``poll`` doubling up to ``max_poll``) until it is terminal.
3. **The end**: ``Completed`` returns the job; ``Failed``, ``Canceled`` or ``NotResponding``
   raise :class:`~mlinfra.errors.JobFailedError` with the status, the studio URL and the last log
   lines. Nothing waits longer than ``timeout`` (:class:`JobWaitTimeoutError`; the job keeps
   running and can be followed again).
4. **Ctrl-C** asks whether to cancel the job (``confirm``; by default a prompt on a terminal, and
   no cancellation otherwise), prints how to follow it again, and re-raises ``KeyboardInterrupt``.

Time is read from ``clock`` and spent in ``sleep`` (both injectable), so every path is bounded and
testable without waiting. The Azure SDK is imported on first use.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

from mlinfra.azureml._sdk import azure_core_exceptions
from mlinfra.errors import JobFailedError, MlinfraError

__all__ = [
    "COMPLETED",
    "TERMINAL_STATUSES",
    "AzureMLRequestError",
    "JobWaitTimeoutError",
    "reattach_hint",
    "submit_and_wait_for_job",
    "wait_for_job",
]

#: The status of a job that finished successfully.
COMPLETED = "Completed"
#: Statuses after which a job changes no more (as azure-ai-ml's ``RunHistoryConstants``).
TERMINAL_STATUSES = frozenset({COMPLETED, "Failed", "Canceled", "NotResponding"})
_DEFAULT_TIMEOUT = 7 * 24 * 3600.0
_TRANSIENT_HTTP = frozenset({408, 429})


class AzureMLRequestError(MlinfraError, RuntimeError):
    """AzureML refused a request, or kept failing transiently after every retry.

    Attributes:
        resource: What the request was about (``job NAME``, ``compute cpu-cluster``).
        action: What was being done (``submit``, ``get``, ``create``).
    """

    def __init__(self, message: str, *, resource: str, action: str) -> None:
        self.resource = resource
        self.action = action
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_request_error, (str(self), self.resource, self.action))


def _rebuild_request_error(message: str, resource: str, action: str) -> AzureMLRequestError:
    return AzureMLRequestError(message, resource=resource, action=action)


class JobWaitTimeoutError(MlinfraError, TimeoutError):
    """Waiting for a job took longer than allowed; the job itself was left running.

    Attributes:
        job_name: The job (follow it again with ``mlinfra azureml wait <job_name>``).
        status: Its last known status.
        waited: Seconds waited.
    """

    def __init__(self, job_name: str, status: str | None, waited: float) -> None:
        self.job_name = job_name
        self.status = status
        self.waited = waited
        super().__init__(
            f"stopped waiting for AzureML job {job_name} after {waited:.0f} s (last status "
            f"{status or 'unknown'}); it was left running. {reattach_hint(job_name)}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (JobWaitTimeoutError, (self.job_name, self.status, self.waited))


def reattach_hint(job_name: str) -> str:
    """The sentence telling how to follow ``job_name`` again."""
    return f"Follow it again with: mlinfra azureml wait {job_name}"


def _echo_stderr(message: str) -> None:
    import click

    click.echo(message, err=True)


def _ask_on_terminal(question: str) -> bool:
    """Ask on a terminal; anywhere else (CI, a notebook without stdin) never cancel."""
    if not (sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    import click

    return bool(click.confirm(question, default=False, err=True))


# ---- retries ---------------------------------------------------------------------------------


def _transient_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is worth retrying, or ``None`` when it is not."""
    errors = azure_core_exceptions()
    if isinstance(exc, (errors.ServiceRequestError, errors.ServiceResponseError)):
        return f"connection problem ({type(exc).__name__})"
    if isinstance(exc, errors.HttpResponseError):
        code = getattr(exc, "status_code", None)
        if isinstance(code, int) and (code in _TRANSIENT_HTTP or code >= 500):
            return f"HTTP {code}"
    return None


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class _Clock:
    """Time, deadline and backoff shared by one submit-and-wait."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        timeout: float,
        retries: int,
        retry_delay: float,
        max_delay: float,
        echo: Callable[[str], None],
    ) -> None:
        if timeout <= 0 or retries < 1 or retry_delay < 0 or max_delay < 0:
            raise ValueError("timeout must be > 0, retries >= 1, delays >= 0")
        self.now = clock
        self.sleep = sleep
        self.start = clock()
        self.deadline = self.start + timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        self.echo = echo

    def waited(self) -> float:
        return self.now() - self.start

    def call(self, action: str, job_name: str, func: Callable[[], Any]) -> Any:
        """``func()``, retried on transient errors; any other error is wrapped once."""
        for attempt in range(1, self.retries + 1):
            try:
                return func()
            except Exception as exc:
                reason = _transient_reason(exc)
                if reason is None:
                    raise AzureMLRequestError(
                        f"AzureML refused to {action} job {job_name}: {exc}",
                        resource=f"job {job_name}",
                        action=action,
                    ) from exc
                if attempt == self.retries or self.now() >= self.deadline:
                    raise AzureMLRequestError(
                        f"could not {action} job {job_name}: {reason} on each of {attempt} "
                        f"attempt(s); last error: {exc}",
                        resource=f"job {job_name}",
                        action=action,
                    ) from exc
                delay = min(self.retry_delay * 2 ** (attempt - 1), self.max_delay)
                delay = max(delay, min(_retry_after(exc) or 0.0, self.max_delay))
                self.echo(
                    f"{action} {job_name}: {reason}; retrying in {delay:.0f} s "
                    f"(attempt {attempt + 1} of {self.retries})"
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


# ---- log capture -----------------------------------------------------------------------------


class _LogTee:
    """Stands in for ``sys.stdout`` while the SDK streams: prints through, keeps the last lines
    and the time of the last output."""

    def __init__(self, target: TextIO, tail: int, clock: Callable[[], float]) -> None:
        self.target = target
        self.lines: deque[str] = deque(maxlen=tail)
        self._partial = ""
        self._clock = clock
        self._lock = threading.Lock()
        self.last_output = clock()
        self.muted = False

    def write(self, text: str) -> int:
        with self._lock:
            if text:
                self.last_output = self._clock()
                parts = (self._partial + text).split("\n")
                self._partial = parts.pop()
                self.lines.extend(line.rstrip("\r") for line in parts)
            if not self.muted:
                self.target.write(text)
        return len(text)

    def flush(self) -> None:
        if not self.muted:
            self.target.flush()

    def isatty(self) -> bool:
        return False

    def add(self, text: str) -> None:
        with self._lock:
            self.lines.extend(line for line in text.splitlines() if line.strip())

    def tail(self) -> tuple[str, ...]:
        with self._lock:
            extra = (self._partial,) if self._partial.strip() else ()
            return (*self.lines, *extra)[-(self.lines.maxlen or 1) :]


# ---- following a job -------------------------------------------------------------------------


def _status(job: Any) -> str:
    status = getattr(job, "status", None)
    return str(getattr(status, "value", status) or "Unknown")


def _follow_stream(
    ml_client: Any, name: str, tee: _LogTee, times: _Clock, silence_timeout: float, tick: float
) -> None:
    """Stream logs until the stream ends, raises, or is silent for ``silence_timeout``."""
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            ml_client.jobs.stream(name)
        except BaseException as exc:  # reported by the waiting thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"mlinfra-stream-{name}", daemon=True).start()
    while not done.is_set():
        if times.now() >= times.deadline:
            return
        silent = times.now() - tee.last_output
        if silent >= silence_timeout:
            times.echo(
                f"job {name}: no log output for {silent:.0f} s; following its status instead "
                "(log lines still print if the stream resumes)"
            )
            return
        times.sleep(tick)
    if failure:
        exc = failure[0]
        tee.add(str(exc))
        if _status_is_terminal_hint(exc):
            return
        times.echo(
            f"job {name}: the log stream stopped ({type(exc).__name__}: {exc}); following its "
            "status instead"
        )


def _status_is_terminal_hint(exc: BaseException) -> bool:
    """The SDK raises ``JobException`` when the job it streamed failed: not a stream problem."""
    return type(exc).__name__ == "JobException"


def _poll(
    ml_client: Any, name: str, times: _Clock, poll: float, max_poll: float, first: Any | None
) -> Any:
    """``jobs.get`` with backoff until the job is terminal; returns the last job entity."""
    delay = poll
    last_status: str | None = None
    job = first
    while True:
        if job is None:
            job = times.call("get", name, lambda: ml_client.jobs.get(name))
        status = _status(job)
        if status in TERMINAL_STATUSES:
            return job
        if status != last_status:
            if last_status is not None:
                times.echo(f"job {name}: {status}")
            last_status, delay = status, poll
        if times.now() + delay > times.deadline:
            raise JobWaitTimeoutError(name, status, times.waited())
        times.sleep(delay)
        delay = min(delay * 2, max_poll)
        job = None


def _on_interrupt(
    ml_client: Any,
    name: str,
    studio_url: str | None,
    confirm: Callable[[str], bool],
    echo: Callable[[str], None],
) -> None:
    try:
        cancel = bool(confirm(f"Cancel AzureML job {name}?"))
    except (KeyboardInterrupt, EOFError, Exception):
        cancel = False
    if not cancel:
        echo(f"job {name} keeps running. {reattach_hint(name)}")
        return
    jobs = ml_client.jobs
    try:
        begin = getattr(jobs, "begin_cancel", None)
        (begin if begin is not None else jobs.cancel)(name)
    except Exception as exc:  # report and leave: the user is on their way out
        where = f" in the studio ({studio_url})" if studio_url else " in the studio"
        echo(f"could not cancel job {name}: {exc}; cancel it{where}")
        return
    echo(f"cancellation of job {name} requested; to see it stop: mlinfra azureml wait {name}")


def wait_for_job(
    ml_client: Any,
    name: str,
    *,
    stream: bool = True,
    poll: float = 5.0,
    max_poll: float = 60.0,
    silence_timeout: float = 600.0,
    timeout: float = _DEFAULT_TIMEOUT,
    retries: int = 6,
    retry_delay: float = 2.0,
    log_tail: int = 50,
    studio_url: str | None = None,
    confirm: Callable[[str], bool] | None = None,
    echo: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Follow the AzureML job ``name`` until it ends (see the module docstring).

    Args:
        ml_client: An ``azure.ai.ml.MLClient`` (anything with its ``jobs`` operations).
        name: The job's name.
        stream: Stream its logs (else only poll its status).
        poll: First interval between status checks, in seconds; doubles up to ``max_poll``.
        max_poll: Longest interval between status checks.
        silence_timeout: Seconds without log output after which the status is polled instead.
        timeout: Longest time to wait, in seconds; the job is left running after it.
        retries: Attempts of each request when AzureML fails transiently.
        retry_delay: First delay between attempts (doubling, capped at ``max_poll``).
        log_tail: How many of the last log lines to keep for the error.
        studio_url: The job's studio page, when known (else read from the job).
        confirm: Asked ``"Cancel AzureML job NAME?"`` on Ctrl-C; default: a prompt on a
            terminal, and never cancel elsewhere.
        echo: Where progress messages go (default: standard error).
        sleep: How to wait (injectable for tests).
        clock: Monotonic seconds (injectable for tests).

    Returns:
        The job entity, with status ``Completed``.

    Raises:
        JobFailedError: the job ended Failed, Canceled or NotResponding.
        JobWaitTimeoutError: ``timeout`` passed first.
        AzureMLRequestError: AzureML refused a request (no such job), or kept failing.
        MissingDependencyError: the ``azure`` extra is not installed.
        KeyboardInterrupt: after offering to cancel the job.
    """
    azure_core_exceptions()  # fail now, naming the extra, when the SDK is missing
    say = echo or _echo_stderr
    times = _Clock(
        clock=clock,
        sleep=sleep,
        timeout=timeout,
        retries=retries,
        retry_delay=retry_delay,
        max_delay=max_poll,
        echo=say,
    )
    tee = _LogTee(sys.stdout, log_tail, clock)
    url = studio_url
    try:
        first: Any | None = None
        if url is None:
            first = times.call("get", name, lambda: ml_client.jobs.get(name))
            url = getattr(first, "studio_url", None)
            if _status(first) in TERMINAL_STATUSES:
                stream = False
        if stream:
            saved = sys.stdout
            sys.stdout = tee
            try:
                _follow_stream(ml_client, name, tee, times, silence_timeout, min(poll, 1.0) or 0.01)
            finally:
                sys.stdout = saved
            first = None
        job = _poll(ml_client, name, times, poll, max_poll, first)
    except KeyboardInterrupt:
        tee.muted = True
        _on_interrupt(ml_client, name, url, confirm or _ask_on_terminal, say)
        raise
    finally:
        tee.muted = True  # a stream thread left behind prints no more
    status = _status(job)
    if status != COMPLETED:
        raise JobFailedError(
            name, status, studio_url=url or getattr(job, "studio_url", None), log_tail=tee.tail()
        )
    return job


def _submit(ml_client: Any, job: Any, times: _Clock, experiment_name: str | None) -> Any:
    """``jobs.create_or_update`` with retries that never create the job twice."""
    errors = azure_core_exceptions()
    if not getattr(job, "name", None):
        job.name = f"mlinfra-{uuid.uuid4().hex[:12]}"
    name = str(job.name)
    kwargs = {"experiment_name": experiment_name} if experiment_name else {}
    attempts = 0

    def create() -> Any:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            # the previous request may have created it before its answer was lost
            try:
                return ml_client.jobs.get(name)
            except errors.ResourceNotFoundError:
                pass
        return ml_client.jobs.create_or_update(job, **kwargs)

    return times.call("submit", name, create)


def submit_and_wait_for_job(
    ml_client: Any,
    job: Any,
    *,
    experiment_name: str | None = None,
    wait: bool = True,
    stream: bool = True,
    poll: float = 5.0,
    max_poll: float = 60.0,
    silence_timeout: float = 600.0,
    timeout: float = _DEFAULT_TIMEOUT,
    retries: int = 6,
    retry_delay: float = 2.0,
    log_tail: int = 50,
    confirm: Callable[[str], bool] | None = None,
    echo: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Submit ``job`` and follow it to the end (see the module docstring).

    Args:
        ml_client: An ``azure.ai.ml.MLClient``.
        job: The job entity (``azure.ai.ml.command(...)``); a name is given to it when it has
            none, so a retried submission finds it instead of creating a second job.
        experiment_name: The AzureML experiment (default: the job's own).
        wait: Follow the job (else return the submitted job at once).
        Other arguments: as :func:`wait_for_job`.

    Returns:
        The job entity: ``Completed``, or just submitted when ``wait`` is false.

    Raises:
        JobFailedError: the job ended Failed, Canceled or NotResponding; it is a
            ``RuntimeError`` carrying the job name, status, studio URL and last log lines.
        JobWaitTimeoutError, AzureMLRequestError, MissingDependencyError, KeyboardInterrupt:
            as :func:`wait_for_job`.
    """
    say = echo or _echo_stderr
    times = _Clock(
        clock=clock,
        sleep=sleep,
        timeout=timeout,
        retries=retries,
        retry_delay=retry_delay,
        max_delay=max_poll,
        echo=say,
    )
    try:
        created = _submit(ml_client, job, times, experiment_name)
    except KeyboardInterrupt:
        say(
            f"interrupted while submitting job {job.name}; if it was created: mlinfra azureml "
            f"wait {job.name}"
        )
        raise
    name = str(getattr(created, "name", None) or job.name)
    url = getattr(created, "studio_url", None)
    say(f"submitted job {name}" + (f": {url}" if url else "") + f"\n{reattach_hint(name)}")
    if not wait:
        return created
    return wait_for_job(
        ml_client,
        name,
        stream=stream,
        poll=poll,
        max_poll=max_poll,
        silence_timeout=silence_timeout,
        timeout=max(timeout - times.waited(), 1e-9),
        retries=retries,
        retry_delay=retry_delay,
        log_tail=log_tail,
        studio_url=url,
        confirm=confirm,
        echo=say,
        sleep=sleep,
        clock=clock,
    )
