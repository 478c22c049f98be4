"""The state directory: one SQLite database (WAL) holding the command journal, and snapshot files.

The journal is the truth: every request that may change a tenant is a row, committed before
its reply is sent. Snapshots are a cache that makes restarts fast; one is used only when the
code that wrote it is the code reading it (same fingerprint), otherwise the journal is replayed
from the start, so an upgrade re-derives the state through the new code instead of misreading
objects pickled by the old one.

Writes happen on one thread of their own: everything queued while a commit runs goes into the
next transaction (group commit), so the event loop never waits on the disk, and a burst of
concurrent requests costs one fsync instead of one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

FORMAT_VERSION = 1
DB_NAME = "amps-sim-state.sqlite3"
SNAPSHOT_PREFIX = "snapshot-"


def _snapshot_seq(path: Path) -> int | None:
    digits = path.name[len(SNAPSHOT_PREFIX) :].split("-", 1)[0]
    return int(digits) if digits.isdigit() else None


class StateDirError(RuntimeError):
    """The state directory cannot be used (wrong version, not ours); the message says why."""


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    at: float  # the request's time (epoch seconds) as the tenant clocks saw it
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


_BARRIER = JournalEntry(-1, 0.0, "BARRIER", "", {}, b"")  # queued to learn when the queue ahead is committed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY, at REAL NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    headers TEXT NOT NULL, body BLOB NOT NULL);
"""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk (fsync'd) when it returns, so an acknowledged request survives
    # a power cut as well as kill -9.
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / DB_NAME
        foreign = [p.name for p in directory.iterdir() if not p.name.startswith((DB_NAME, SNAPSHOT_PREFIX))]
        if foreign and not self.path.exists():
            raise StateDirError(f"{directory} holds other files ({', '.join(sorted(foreign)[:3])}); give amps-sim an empty or its own directory")
        self._conn = _connect(self.path)
        self._conn.executescript(_SCHEMA)
        version = self.meta("format_version")
        if version is None:
            self.set_meta("format_version", str(FORMAT_VERSION))
        elif version != str(FORMAT_VERSION):
            raise StateDirError(
                f"{directory} was written in state format {version}; this amps-sim reads format {FORMAT_VERSION}. "
                "Run the amps-sim version that wrote it, or start on a new directory."
            )
        self._queue: queue.SimpleQueue[tuple[JournalEntry | None, asyncio.Future[None] | None, asyncio.AbstractEventLoop | None]] = (
            queue.SimpleQueue()
        )
        self._writer: threading.Thread | None = None
        self._read_conn: sqlite3.Connection | None = None
        self.last_seq = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0]

    # ------------------------------------------------------------------ reading (startup only)
    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ snapshot files
    # `snapshot-<seq>-<fingerprint>.pickle`, written to a temporary name, fsync'd, then renamed:
    # a file under its final name is whole.
    def latest_snapshot(self, fingerprint: str) -> tuple[int, Path] | None:
        """The newest whole snapshot file written by this code that the committed journal covers."""
        best: tuple[int, Path] | None = None
        for path in self.directory.glob(f"{SNAPSHOT_PREFIX}*-{fingerprint}.pickle"):
            seq = _snapshot_seq(path)
            if seq is not None and seq <= self.last_seq and (best is None or seq > best[0]):
                best = (seq, path)
        return best

    def snapshot_path(self, seq: int, fingerprint: str) -> Path:
        return self.directory / f"{SNAPSHOT_PREFIX}{seq}-{fingerprint}.pickle"

    def write_snapshot(self, seq: int, fingerprint: str, write: Callable[[BinaryIO], None]) -> Path:
        """Write a snapshot file durably through `write(handle)` (callable from a forked child:
        no SQLite here); returns its final path."""
        final = self.snapshot_path(seq, fingerprint)
        temporary = final.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return final

    def prune_snapshots(self, keep_seq: int) -> None:
        """One snapshot is enough (the journal stays whole, see the module doc)."""
        for path in self.directory.glob(f"{SNAPSHOT_PREFIX}*"):
            seq = _snapshot_seq(path)
            if path.suffix == ".tmp" or (seq is not None and seq < keep_seq):
                path.unlink(missing_ok=True)

    def entries_after(self, seq: int) -> Iterator[JournalEntry]:
        cursor = self._reader().execute("SELECT seq, at, method, path, headers, body FROM journal WHERE seq > ? ORDER BY seq", (seq,))
        for row in cursor:
            yield JournalEntry(row[0], row[1], row[2], row[3], json.loads(row[4]), bytes(row[5]))

    def entries(self, seqs: Iterable[int]) -> list[JournalEntry]:
        """The entries with these numbers, in journal order (a dormant tenant's, when it wakes)."""
        wanted = sorted(set(seqs))
        found: list[JournalEntry] = []
        for start in range(0, len(wanted), 500):  # SQLite's limit on bound parameters
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._reader().execute(
                f"SELECT seq, at, method, path, headers, body FROM journal WHERE seq IN ({marks}) ORDER BY seq", chunk
            )
            found += [JournalEntry(r[0], r[1], r[2], r[3], json.loads(r[4]), bytes(r[5])) for r in rows]
        return found

    def _reader(self) -> sqlite3.Connection:
        # Reads run on the event loop's thread while the writer thread commits on its own
        # connection; WAL lets a second connection read the committed journal meanwhile.
        if self._read_conn is None:
            self._read_conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        return self._read_conn

    # ------------------------------------------------------------------ writing (group commit)
    def start_writer(self) -> None:
        self._writer = threading.Thread(target=self._write_loop, name="amps-sim-journal", daemon=True)
        self._writer.start()

    def append(self, at: float, method: str, path: str, headers: dict[str, str], body: bytes) -> asyncio.Future[None]:
        """Queue one entry; the future resolves once it is committed. Order is append order."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.last_seq += 1
        entry = JournalEntry(self.last_seq, at, method, path, headers, body)
        self._queue.put((entry, future, loop))
        return future

    def committed(self) -> asyncio.Future[None]:
        """Resolves once everything appended so far is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put((_BARRIER, future, loop))
        return future

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put((None, None, None))
            self._writer.join()
            self._writer = None
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None
        self._conn.close()

    def _write_loop(self) -> None:
        conn = self._conn
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done: list[tuple[asyncio.Future[None], asyncio.AbstractEventLoop]] = []
            error: BaseException | None = None
            try:
                conn.execute("BEGIN")
                for item, future, loop in batch:
                    if item is None:
                        stop = True
                        continue
                    if item is not _BARRIER:
                        conn.execute(
                            "INSERT INTO journal (seq, at, method, path, headers, body) VALUES (?, ?, ?, ?, ?, ?)",
                            (item.seq, item.at, item.method, item.path, json.dumps(item.headers), item.body),
                        )
                    if future is not None and loop is not None:
                        done.append((future, loop))
                conn.execute("COMMIT")
            except BaseException as exc:  # the disk failed: nothing in this batch is acknowledged
                error = exc
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            for future, loop in done:
                loop.call_soon_threadsafe(_settle, future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
