"""Test doubles at the Azure SDK boundary (a helper module of this folder's tests).

* :class:`FakeClock`: the ``clock``/``sleep`` pair the runtime takes; sleeping advances fake time
  (and yields a millisecond of real time, so the log-stream thread can run).
* :class:`FakeJobs`: the ``MLClient.jobs`` operations (``create_or_update``, ``stream``, ``get``,
  ``begin_cancel``) scripted by lists of events. Nothing of mlinfra's own is replaced.
* :class:`FakeOps`: ``workspaces``/``compute``/``environments``/``data`` operations for setup.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

STUDIO = "https://ml.azure.com/runs/{name}?wsid=/subscriptions/s/resourcegroups/r/workspaces/w"

CONDA = """\
name: resume-ner
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - pip: [mlinfra]
"""


def http_error(status: int, retry_after: str | None = None) -> HttpResponseError:
    """An ``HttpResponseError`` with ``status_code`` (as the SDK raises for 429/5xx)."""
    exc = HttpResponseError(message=f"HTTP {status} from the service")
    exc.status_code = status
    if retry_after is not None:

        class _Response:
            headers = {"Retry-After": retry_after}  # noqa: RUF012

        exc.response = _Response()  # type: ignore[assignment]
    return exc


class FakeClock:
    """Monotonic fake time; ``sleep`` advances it, and can raise (a Ctrl-C) at a chosen call."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.interrupt_at = interrupt_at

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.interrupt_at is not None and len(self.sleeps) >= self.interrupt_at:
            raise KeyboardInterrupt
        self.now += seconds
        time.sleep(0.001)


@dataclass
class FakeJob:
    name: str
    status: str = "Queued"
    studio_url: str | None = None


@dataclass
class FakeJobs:
    """``MLClient.jobs`` scripted by events.

    Attributes:
        statuses: What successive ``get`` calls return: a status, or an exception to raise;
            the last entry repeats.
        stream_events: What ``stream`` does, in order: ``("log", text)`` prints a line,
            ``("raise", exc)`` raises, ``("silent",)`` blocks (until released, at most 10 s of
            real time) and prints nothing.
        submit_errors: Exceptions successive ``create_or_update`` calls raise before one works;
            ``("created", exc)`` creates the job and then raises (the answer was lost).
    """

    statuses: list[Any] = field(default_factory=lambda: ["Completed"])
    stream_events: list[tuple[Any, ...]] = field(default_factory=list)
    submit_errors: list[Any] = field(default_factory=list)
    created: dict[str, FakeJob] = field(default_factory=dict)
    submitted: list[Any] = field(default_factory=list)
    get_calls: int = 0
    stream_calls: int = 0
    cancelled: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def create_or_update(self, job: Any, **kwargs: Any) -> FakeJob:
        self.submitted.append((job, kwargs))
        if self.submit_errors:
            error = self.submit_errors.pop(0)
            if isinstance(error, tuple):
                self.created[job.name] = FakeJob(job.name, "Queued", STUDIO.format(name=job.name))
                raise error[1]
            raise error
        created = FakeJob(job.name, "Queued", STUDIO.format(name=job.name))
        self.created[job.name] = created
        return created

    def get(self, name: str) -> FakeJob:
        self.get_calls += 1
        if name not in self.created:
            raise ResourceNotFoundError(f"job {name} not found")
        item = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(item, BaseException):
            raise item
        job = self.created[name]
        job.status = item
        return FakeJob(job.name, item, job.studio_url)

    def stream(self, name: str) -> None:
        self.stream_calls += 1
        for event in self.stream_events:
            if event[0] == "log":
                print(event[1])
            elif event[0] == "raise":
                raise event[1]
            elif event[0] == "silent":
                self.release.wait(10)
                return

    def begin_cancel(self, name: str) -> None:
        self.cancelled.append(name)


class FakeClient:
    def __init__(self, jobs: FakeJobs) -> None:
        self.jobs = jobs


class FakeOps:
    """One kind of workspace resource: ``get`` raises ``ResourceNotFoundError`` until created."""

    def __init__(self, existing: set[str] | None = None) -> None:
        self.items: dict[str, Any] = dict.fromkeys(existing or set())
        self.created: list[Any] = []

    @staticmethod
    def _key(name: str, version: str | None) -> str:
        return f"{name}:{version}" if version else name

    def get(self, name: str, version: str | None = None) -> Any:
        key = self._key(name, version)
        if key not in self.items:
            raise ResourceNotFoundError(f"{key} not found")
        return self.items[key]

    def _store(self, entity: Any) -> Any:
        self.created.append(entity)
        self.items[self._key(entity.name, getattr(entity, "version", None))] = entity
        return entity

    def create_or_update(self, entity: Any) -> Any:
        return self._store(entity)

    def begin_create_or_update(self, entity: Any) -> Any:
        return _Poller(self._store(entity))

    def begin_create(self, entity: Any) -> Any:
        return _Poller(self._store(entity))


@dataclass
class _Poller:
    value: Any

    def result(self) -> Any:
        return self.value


class FakeWorkspaceClient:
    def __init__(self, workspace: str = "resume-ner-ws") -> None:
        self.workspaces = FakeOps({workspace})
        self.compute = FakeOps()
        self.environments = FakeOps()
        self.data = FakeOps()
