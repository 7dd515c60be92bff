"""The run registry: one store for the run index and the run-name version counters.

Contract (every backend, checked by the conformance tests in ``tests/registry``):

1. Safe for many processes on one machine (SQLite on local disk) and for many machines
   (PostgreSQL or any SQLAlchemy URL the machines share). Every operation is one transaction.
2. A version number is handed out at most once per counter key, and never again after its
   reservation expires or is released: numbers are never reused. When every reservation is
   committed, the committed numbers of a key are exactly ``1..n``.
3. Reserving again for the same owner while its reservation is active returns the same number.
4. A reservation that is not committed within its lease (default 30 minutes, renewable) expires;
   a process that dies leaves no lock behind (the database releases it with the connection) and
   no half-written state (a transaction commits whole or not at all).
5. Committing is idempotent: committing the same number to the same run again changes nothing;
   committing it to another run is an error.
6. The run index maps ``(tracking_uri, run_key_hash)`` to one MLflow run; entries of different
   tracking URIs never see each other. Timestamps are UTC.
7. The metadata index holds one row per output folder (keyed by its path): upserting a folder
   again updates its row, never adds a second one, and an entry older (by ``updated_at``) than
   the stored one does not replace it. Finds return the newest update first.
"""

from __future__ import annotations

import abc
import datetime as _dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar

from mlinfra.errors import add_note

__all__ = [
    "DEFAULT_LEASE",
    "OUTPUT_FILTERS",
    "Allocation",
    "OutputEntry",
    "Reservation",
    "RunIndexEntry",
    "RunRegistry",
    "VersionStatus",
]

DEFAULT_LEASE = _dt.timedelta(minutes=30)
_R = TypeVar("_R", bound="RunRegistry")
VersionStatus = Literal["reserved", "committed", "released", "expired"]


@dataclass(frozen=True)
class RunIndexEntry:
    """One run of the index: the MLflow run a run key resolves to, under one tracking URI."""

    run_key_hash: str
    run_id: str
    experiment_id: str
    tracking_uri: str
    run_name: str | None = None
    stage: str | None = None
    created_at: _dt.datetime | None = None
    updated_at: _dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (timestamps as ISO-8601 UTC)."""
        from mlinfra.core.timeutil import format_utc

        out: dict[str, Any] = dict(self.__dict__)
        for key in ("created_at", "updated_at"):
            out[key] = format_utc(out[key]) if out[key] is not None else None
        return out


#: The fields :meth:`RunRegistry.find_outputs` filters on.
OUTPUT_FILTERS: tuple[str, ...] = (
    "path",
    "process_type",
    "model",
    "environment",
    "spec_fp",
    "exec_fp",
    "conv_fp",
    "variant",
    "trial_id",
    "parent_training_id",
    "run_id",
)


@dataclass(frozen=True)
class OutputEntry:
    """One output folder of the metadata index, as its ``metadata.json`` describes it.

    Attributes:
        path: The folder: a POSIX path relative to the project root when inside it, else
            absolute. The key of the index: one entry per folder.
        process_type: ``hpo``, ``final_training``, ``conversion``, ... (the stage's type).
        status: The ``status`` block of the metadata (stage → fields).
        run_id: The MLflow run id from the metadata's ``mlflow`` block.
        created_at, updated_at: The metadata's ``created_at`` and ``last_updated`` (UTC).
    """

    path: str
    process_type: str | None = None
    model: str | None = None
    environment: str | None = None
    spec_fp: str | None = None
    exec_fp: str | None = None
    conv_fp: str | None = None
    variant: int | None = None
    trial_id: str | None = None
    parent_training_id: str | None = None
    status: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    created_at: _dt.datetime | None = None
    updated_at: _dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (timestamps as ISO-8601 UTC); ``last_updated`` repeats
        ``updated_at`` under the name the specification's index entries used."""
        from mlinfra.core.timeutil import format_utc

        out: dict[str, Any] = dict(self.__dict__)
        out["status"] = dict(self.status)
        for key in ("created_at", "updated_at"):
            out[key] = format_utc(out[key]) if out[key] is not None else None
        out["last_updated"] = out["updated_at"]
        return out


@dataclass(frozen=True)
class Allocation:
    """One version number of a counter key and what became of it."""

    counter_key: str
    version: int
    owner: str
    status: VersionStatus
    run_id: str | None
    reserved_at: _dt.datetime
    expires_at: _dt.datetime
    committed_at: _dt.datetime | None = None


class RunRegistry(abc.ABC):
    """Abstract registry; see the module docstring for the rules every backend keeps."""

    #: Where the registry lives, for messages (a file path or a URL without password).
    location: str

    # ---- run index -----------------------------------------------------------------------

    @abc.abstractmethod
    def upsert_run(self, entry: RunIndexEntry) -> RunIndexEntry:
        """Insert or update the index entry of ``(entry.tracking_uri, entry.run_key_hash)``."""

    @abc.abstractmethod
    def find_run(self, run_key_hash: str, tracking_uri: str) -> RunIndexEntry | None:
        """The entry for a run key under a tracking URI, or ``None``."""

    @abc.abstractmethod
    def list_runs(
        self, *, stage: str | None = None, tracking_uri: str | None = None
    ) -> list[RunIndexEntry]:
        """Entries, newest update first, optionally of one stage or tracking URI."""

    @abc.abstractmethod
    def remove_run(self, run_key_hash: str, tracking_uri: str) -> bool:
        """Forget an entry (for example when its MLflow run was deleted); True if it existed."""

    # ---- metadata index (output folders) --------------------------------------------------

    @abc.abstractmethod
    def upsert_output(self, entry: OutputEntry) -> OutputEntry:
        """Insert or update the entry of ``entry.path`` (rule 7); return the stored entry.

        Without ``updated_at`` the entry is stamped now; without ``created_at`` it keeps the
        stored one (or takes ``updated_at`` when new).
        """

    @abc.abstractmethod
    def find_outputs(self, *, limit: int | None = None, **filters: Any) -> list[OutputEntry]:
        """Entries matching every given filter (equality), newest update first.

        Args:
            limit: At most this many entries.
            **filters: Any of :data:`OUTPUT_FILTERS`; ``None`` values are ignored.

        Raises:
            RegistryError: an unknown filter name.
        """

    @abc.abstractmethod
    def remove_output(self, path: str) -> bool:
        """Forget the entry of a folder; True if it existed."""

    def get_output(self, path: str) -> OutputEntry | None:
        """The entry of one folder (its index key), or ``None``."""
        found = self.find_outputs(path=path, limit=1)
        return found[0] if found else None

    # ---- versions ------------------------------------------------------------------------

    @abc.abstractmethod
    def reserve_version(
        self, counter_key: str, owner: str, *, lease: _dt.timedelta = DEFAULT_LEASE
    ) -> int:
        """Reserve the next version of ``counter_key`` for ``owner`` (rules 2-4)."""

    @abc.abstractmethod
    def commit_version(self, counter_key: str, version: int, run_id: str) -> None:
        """Mark a reserved version as used by ``run_id`` (rule 5).

        Raises:
            RegistryError: the version was never reserved, or is committed to another run.
        """

    @abc.abstractmethod
    def release_version(self, counter_key: str, version: int, owner: str) -> None:
        """Give up a reservation that will not be used; its number is not reused."""

    @abc.abstractmethod
    def renew_version(
        self, counter_key: str, version: int, owner: str, *, lease: _dt.timedelta = DEFAULT_LEASE
    ) -> _dt.datetime:
        """Extend an active reservation's lease for a long run; return the new expiry.

        Raises:
            RegistryError: the reservation is not active (committed, released or expired).
        """

    @abc.abstractmethod
    def expire_stale(self, *, now: _dt.datetime | None = None) -> int:
        """Mark reservations whose lease has passed as expired; return how many."""

    @abc.abstractmethod
    def expire_reserved_before(self, moment: _dt.datetime) -> int:
        """Expire reservations made before ``moment``, whatever their lease; return how many."""

    @abc.abstractmethod
    def allocations(self, counter_key: str | None = None) -> list[Allocation]:
        """Every version handed out (of one counter key, or all), oldest first."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    # ---- conveniences written in terms of the above --------------------------------------

    @contextmanager
    def reserve(
        self, counter_key: str, *, owner: str, lease: _dt.timedelta = DEFAULT_LEASE
    ) -> Iterator[Reservation]:
        """Reserve a version for the block: commit it with ``r.commit(run_id)`` inside; an
        exception releases it (the number is not reused), and the exception propagates.

        Example:
            >>> with registry.reserve("proj:hpo:abc:local", owner="worker-1") as r:
            ...     run = create_run(name=f"trial_{r.version}")
            ...     r.commit(run.info.run_id)
        """
        reservation = Reservation(
            self, counter_key, owner, self.reserve_version(counter_key, owner, lease=lease)
        )
        try:
            yield reservation
        except BaseException as exc:
            if not reservation.committed:
                try:
                    reservation.release()
                except Exception as release_error:  # the block's own error matters more
                    note = (
                        f"(releasing version {reservation.version} of {counter_key!r} also failed: "
                        f"{release_error}; it expires with its lease)"
                    )
                    add_note(exc, note)
            raise

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class Reservation:
    """A reserved version (see :meth:`RunRegistry.reserve`)."""

    registry: RunRegistry
    counter_key: str
    owner: str
    version: int
    committed: bool = False
    released: bool = False

    def commit(self, run_id: str) -> None:
        """Record that ``run_id`` uses this version (idempotent)."""
        self.registry.commit_version(self.counter_key, self.version, run_id)
        self.committed = True

    def release(self) -> None:
        """Give the reservation up; the number is not reused."""
        if not self.released and not self.committed:
            self.registry.release_version(self.counter_key, self.version, self.owner)
            self.released = True

    def renew(self, lease: _dt.timedelta = DEFAULT_LEASE) -> _dt.datetime:
        """Extend the lease for a long run; return the new expiry."""
        return self.registry.renew_version(self.counter_key, self.version, self.owner, lease=lease)
