"""Profiles that last: what the auto lane learned of a function, kept on disk per machine
so that the next run starts decided. The storage only: the lane says what a record holds.

    save() (any thread) --> pending {key: JSON text} --flush(): owner, 2 s timer, atexit--+
                                                                                          v
    load() <-- records {key: dict} <-- one SELECT of this machine's rows <----- SQLite (WAL)

A key is (function fingerprint, argument-size bucket), stored per machine fingerprint.
Nothing here fails a call: an error is logged at debug level on "multilane.auto", and
the store goes on without the write, or disabled for the rest of the process."""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._fingerprints import SCHEMA, machine_fingerprint

if TYPE_CHECKING:
    import sqlite3

try:
    import fcntl
except ImportError:  # Windows: a corrupt file stays where it is
    fcntl = None  # type: ignore[assignment]

__all__ = ["ProfileStore", "default_path", "shared"]

MAX_RECORDS = 5000  # rows of one machine kept: a flush deletes the oldest beyond
FLUSH_DELAY_S = 2.0  # a save is written this long after, unless flushed before
BUSY_TIMEOUT_S = 0.2  # a write that waits longer for another process's lock is dropped
_OFF = {"0", "off", "false", "no"}  # values of MULTILANE_PROFILES that turn the store off
_TRANSIENT = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED: this write is dropped, the store goes on
_CORRUPT = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_LOCK_BYTES = (0x40000000, 512)  # SQLite's lock bytes in a database file (unix VFS)
_log = logging.getLogger("multilane.auto")


def default_path() -> Path:
    """$MULTILANE_CACHE_DIR, else $XDG_CACHE_HOME/multilane, else ~/.cache/multilane. The
    schema is in the file's name: two versions installed side by side keep a file each
    instead of dropping each other's table in turn."""
    folder = os.environ.get("MULTILANE_CACHE_DIR")
    if not folder:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(cache, "multilane")
    return Path(folder) / f"profiles-v{SCHEMA}.sqlite3"


_SHARED: dict[Path, ProfileStore] = {}  # the stores at default locations (see shared)


def shared() -> ProfileStore:
    """The process's store at ``default_path()``: one per location (the environment can
    move it between executors); disabled as ``ProfileStore.open`` says."""
    if os.environ.get("MULTILANE_PROFILES", "").strip().lower() in _OFF:
        return ProfileStore.disabled()
    path = default_path()
    store = _SHARED.get(path)
    if store is None:  # one disabled by an error stays so for the rest of the process
        store = _SHARED[path] = ProfileStore.open(path)
    return store


_OPEN: weakref.WeakSet[ProfileStore] = weakref.WeakSet()  # for atexit and os.fork's hooks
_OPEN_LOCK = threading.Lock()  # taken before a store's lock, never after


class ProfileStore:
    """Small JSON records keyed by (function fingerprint, bucket) for this machine, in one
    SQLite file that many processes share. ``load`` reads memory: the first use reads every
    row of this machine in one query. ``save`` only queues, so a thread that must not wait
    on the disk may call it; ``flush`` writes the queue in one transaction. A record that
    ``load`` returns is the store's: the caller must not change it.

    >>> store = ProfileStore.disabled()
    >>> store.save("f", 0, {"lane": "thread"}); store.load("f", 0) is None
    True
    """

    def __init__(self, path: Path | None, enabled: bool) -> None:
        self._path, self._enabled, self._closed = path, enabled, False
        self._machine = machine_fingerprint() if enabled else ""
        self._lock = threading.Lock()  # guards all below; load reads _records without it
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._records: dict[tuple[str, int], dict] | None = None if enabled else {}
        self._pending: dict[tuple[str, int], str] = {}
        self._timer: threading.Timer | None = None  # the latest, for close() to join
        self._due = False  # a timer will flush

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> ProfileStore:
        """The store at ``path`` (None: ``default_path()``), opened on first use; a disabled
        one if the environment variable MULTILANE_PROFILES is 0, off, false or no."""
        if os.environ.get("MULTILANE_PROFILES", "").strip().lower() in _OFF:
            return cls.disabled()
        store = cls(Path(path) if path is not None else default_path(), True)
        with _OPEN_LOCK:
            _OPEN.add(store)
        return store

    @classmethod
    def disabled(cls) -> ProfileStore:
        """A store that keeps nothing: ``load`` returns None, the rest does nothing."""
        return cls(None, False)

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def enabled(self) -> bool:
        """False if turned off, closed, or disabled by an error for the rest of the process."""
        return self._enabled and not self._closed

    def prefetch(self) -> None:
        """Reads the file on a thread of its own: importing sqlite3 and reading the rows
        take some milliseconds (~8 here, the import most of it), which the first call of a
        function would wait for otherwise."""
        if self._records is None and self.enabled:
            threading.Thread(target=self._fill, name="multilane-profiles-read",
                             daemon=True).start()

    def load(self, function: str, bucket: int) -> dict | None:
        """The record saved for the key, by this process or an earlier one on this machine."""
        records = self._records
        if records is None:
            records = self._fill()
        return records.get((function, bucket))

    def save(self, function: str, bucket: int, record: dict) -> None:
        """Queues ``record`` for the next flush; one that JSON cannot hold is dropped."""
        try:
            text = json.dumps(record, allow_nan=False, separators=(",", ":"))
            value = json.loads(text)  # what the next run loads, not the caller's object
            with self._lock:
                if not self.enabled or not isinstance(value, dict):
                    return
                self._pending[function, bucket] = text
                if self._records is not None:
                    self._records[function, bucket] = value
                if not self._due:
                    timer = threading.Timer(FLUSH_DELAY_S, _call_weak,
                                            (weakref.WeakMethod(self._flush_later),))
                    timer.name, timer.daemon = "multilane-profiles", True
                    timer.start()  # fails at shutdown: then the atexit flush writes it
                    self._timer, self._due = timer, True
        except Exception as e:  # not JSON-able (dropped), or no thread may start
            _log.debug("profile store: save of %s: %r", function, e)

    def flush(self) -> bool:
        """Writes the queued records in one transaction, and deletes the oldest rows of this
        machine beyond MAX_RECORDS. False if the records were dropped instead (an error, or
        another process held the file past BUSY_TIMEOUT_S): a write is not retried."""
        with self._lock:
            written = self._write() if self._pending else True
            timer, self._timer, self._due = self._timer, None, False
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()  # nothing left for it: its thread ends now, not 2 s from now
            timer.join(1.0)
        return written

    def forget(self, function: str | None = None) -> None:
        """Deletes what is stored of one function fingerprint, or of all, on this machine."""
        with self._lock:
            if not self.enabled:
                return

            def kept(items: Any) -> dict:
                return {k: v for k, v in items if function is not None and k[0] != function}

            self._pending = kept(self._pending.items())
            if self._records is not None:
                self._records = kept(self._records.items())
            query, args = "DELETE FROM profiles WHERE machine = ?", [self._machine]
            if function is not None:
                query, args = query + " AND function = ?", [self._machine, function]
            self._transaction(lambda conn: conn.execute(query, args), "forget")

    def close(self) -> None:
        """Flushes, stops the timer and closes the file; the calls after do nothing."""
        with self._lock:
            closed, self._closed = self._closed, True
            timer, self._timer = self._timer, None
        if closed:
            return
        if timer is not None:
            timer.cancel()
            timer.join(5.0)  # if it is writing: within BUSY_TIMEOUT_S and the write
        with self._lock:
            self._write()
            self._disconnect()
        with _OPEN_LOCK:
            _OPEN.discard(self)

    def _fill(self) -> dict[tuple[str, int], dict]:
        with self._lock:
            if self._records is None:
                rows = []
                try:
                    if not self._closed:
                        rows = self._connection().execute(
                            "SELECT function, bucket, record FROM profiles WHERE machine = ?",
                            (self._machine,)).fetchall()
                except Exception as e:
                    self._failed(e, "load")
                records: dict[tuple[str, int], dict] = {}
                for function, bucket, text in rows:
                    try:
                        value = json.loads(text)
                    except Exception:  # not JSON (or nested past the recursion limit)
                        continue
                    if isinstance(value, dict):
                        records[function, bucket] = value
                records.update((key, json.loads(text)) for key, text in self._pending.items())
                self._records = records
            return self._records

    def _write(self) -> bool:
        pending, self._pending = self._pending, {}
        if not pending or not self._enabled:
            return not pending
        rows = [(self._machine, f, b, text, time.time()) for (f, b), text in pending.items()]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR REPLACE INTO profiles VALUES (?, ?, ?, ?, ?)", rows)
            (count,) = conn.execute("SELECT count(*) FROM profiles WHERE machine = ?",
                                    (self._machine,)).fetchone()
            if count > MAX_RECORDS:
                conn.execute("DELETE FROM profiles WHERE rowid IN (SELECT rowid FROM profiles"
                             " WHERE machine = ? ORDER BY updated DESC LIMIT -1 OFFSET ?)",
                             (self._machine, MAX_RECORDS))

        return self._transaction(write, "flush")

    def _transaction(self, body: Callable[[sqlite3.Connection], Any], doing: str) -> bool:
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")  # the write lock now, or BUSY after the timeout
            try:
                body(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return True
        except Exception as e:
            self._failed(e, doing)
            return False

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked past os.fork's hooks: the parent's, untouched
            _INHERITED.append(self._conn)
            self._conn, self._pid = None, os.getpid()
        if self._conn is None:
            if not self._enabled or self._path is None:
                raise RuntimeError("the profile store is disabled")
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            import sqlite3  # here, not at import: ~6 ms, for a program that may keep nothing

            conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
                    conn.execute("BEGIN IMMEDIATE")  # and look again: another may have won
                    if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
                        conn.execute("DROP TABLE IF EXISTS profiles")
                        conn.execute("CREATE TABLE profiles (machine TEXT, function TEXT, "
                                     "bucket INTEGER, record TEXT, updated REAL, "
                                     "PRIMARY KEY (machine, function, bucket))")
                        conn.execute(f"PRAGMA user_version = {SCHEMA}")
                    conn.execute("COMMIT")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                conn.close()
        except Exception as e:
            _log.debug("profile store %s: close failed: %r", self._path, e)

    def _failed(self, error: BaseException, doing: str) -> None:
        """A busy file costs this write only; any other error disables the store for the
        rest of the process, and a corrupt file is moved aside for the next run."""
        code = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF
        _log.debug("profile store %s: %s failed: %r", self._path, doing, error)
        if code not in _TRANSIENT:
            self._enabled = False
            self._pending.clear()
            self._disconnect()
            if code in _CORRUPT and self._path is not None:
                _move_aside(self._path)

    def _flush_later(self) -> None:
        with self._lock:
            self._due = False  # a save from now on sets another timer
            if not self._closed:
                self._write()

    def _forking(self, child: bool | None) -> None:
        """Around os.fork: no connection crosses it (SQLite forbids that), nor a held lock.
        The child leaves the parent's queue to the parent, and has none of its threads."""
        if child is None:
            self._lock.acquire()
            self._disconnect()
            return
        if child:
            self._pending.clear()
            self._timer, self._due, self._pid = None, False, os.getpid()
        self._lock.release()


def _move_aside(path: Path) -> None:
    """Renames a corrupt database and its -wal and -shm to ``*.corrupt``, so the next run
    starts afresh; only under SQLite's own lock bytes, which every connection in WAL mode
    holds shared: a file that another process uses, or a fresh one that replaced it, stays.
    Nor if a store of this process has it open (our close would drop its locks)."""
    try:
        if fcntl is None or any(s.path == path and s.enabled for s in list(_OPEN)):
            return
        fd = os.open(path, os.O_RDWR)
    except (OSError, RuntimeError):  # RuntimeError: _OPEN changed while being read
        return
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, _LOCK_BYTES[1], _LOCK_BYTES[0])
        here, now = os.fstat(fd), os.stat(path)
        if (here.st_dev, here.st_ino) == (now.st_dev, now.st_ino):
            for suffix in ("-wal", "-shm", ""):  # the main file last: its lock guards them
                if os.path.exists(f"{path}{suffix}"):
                    os.replace(f"{path}{suffix}", f"{path}.corrupt{suffix}")
    except OSError:
        pass
    finally:
        os.close(fd)


_INHERITED: list[Any] = []  # a parent's connections: closing them could drop its locks
_FORKING: list[ProfileStore] = []


def _call_weak(method: weakref.WeakMethod) -> None:
    """The timer's target: it does not keep the store alive."""
    if (bound := method()) is not None:
        bound()


def _close_all() -> None:
    """At exit, after the lanes shut down (in threading's exit hooks): flush and close."""
    with _OPEN_LOCK:
        stores = list(_OPEN)
    for store in stores:
        store.close()


def _at_fork(child: bool | None) -> None:
    if child is None:
        _OPEN_LOCK.acquire()
        _FORKING[:] = list(_OPEN)
    for store in _FORKING:
        store._forking(child)  # noqa: SLF001
    if child is not None:
        _FORKING.clear()
        _OPEN_LOCK.release()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=lambda: _at_fork(None), after_in_parent=lambda: _at_fork(False),
                        after_in_child=lambda: _at_fork(True))
