"""Shared fixtures: the deadlock bound, and a teardown that fails on anything leaked."""

from __future__ import annotations

import asyncio
import os
import select
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
# Every test starts from nothing: what the auto lane learned in an earlier test (or an
# earlier run of the suite) must not decide for it. test_auto_lasting.py turns the store
# on, in a directory of its own.
os.environ.setdefault("MULTILANE_PROFILES", "off")

TIMEOUT = 30  # seconds: any wait longer than this in a test is a deadlock


def wait_until(predicate, timeout: float = TIMEOUT, message: str = "the condition never held"):
    """Polls ``predicate`` (every 2 ms) until it returns something true, and returns that;
    fails the test with ``message`` if it has not within ``timeout`` seconds. Every polling
    loop of the tests goes through here."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"{message} (waited {timeout} s)")
        time.sleep(0.002)
    return value


def wait_for_file(path: str) -> int:
    """Bounded wait for a task to announce itself (the task writes its pid atomically)."""
    wait_until(lambda: os.path.exists(path), message=f"{path} never appeared")
    with open(path) as f:
        return int(f.read())


def gone_within(pid: int, seconds: float = TIMEOUT) -> bool:
    """True if process ``pid`` exits within ``seconds`` (waits on its pidfd: no polling).
    An exited process has closed its descriptors, reaped or not."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], seconds)
        return bool(ready)
    finally:
        os.close(fd)


def children() -> set[int]:
    """Our live child processes (multiprocessing's resource tracker aside)."""
    return _children()


def _children() -> set[int]:
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z" and not _is_stdlib_helper(entry):
            found.add(int(entry))
    return found


def _is_stdlib_helper(pid: str) -> bool:
    """multiprocessing's resource tracker lives for the session once the stdlib oracle ran."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"resource_tracker" in f.read()
    except OSError:
        return False


def _fds() -> set[str]:
    fds = set(os.listdir("/proc/self/fd"))
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    tracker_fd = getattr(getattr(tracker, "_resource_tracker", None), "_fd", None)
    return fds - {str(tracker_fd)}


def _shm() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if "multilane" in name}


def _settled_tasks(before: set[str], bound: float = 2.0) -> set[str]:
    """Native threads beyond ``before``. Thread.join() returns a moment before the OS
    thread has finished exiting, so a thread that is on its way out gets ``bound``
    seconds to leave /proc; one that stays is a leak."""
    deadline = time.monotonic() + bound
    while True:
        extra = set(os.listdir("/proc/self/task")) - before
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.001)


@pytest.fixture(scope="session", autouse=True)
def _process_wide_singletons():
    """libuv (under uvloop) opens one pipe per process, for signals, the first time a loop
    runs in a thread, and keeps it for the life of the process. Open it before any test
    counts descriptors, so it is not mistaken for a leak of the first async lane."""
    try:
        import uvloop
    except ImportError:
        return

    def run():
        loop = uvloop.new_event_loop()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(TIMEOUT)


# Threads a library keeps for the life of the process once used, by name: Dask's executor
# for callbacks and its executor for work off its event loop (distributed.utils), never
# shut down by Dask itself.
PROCESS_WIDE_THREADS = ("Dask-Offload", "Dask-Callback-Thread")


def _process_wide(thread: threading.Thread) -> bool:
    return thread.name.startswith(PROCESS_WIDE_THREADS)


@pytest.fixture
def no_leaks():
    """Fails the test if it leaves child processes, descriptors, threads or shm names."""
    before_children, before_fds = _children(), _fds()
    before_threads = {t.ident for t in threading.enumerate()}
    before_tasks = set(os.listdir("/proc/self/task"))
    yield
    leaked_children = _children() - before_children
    leaked_fds = {fd for fd in _fds() - before_fds if os.path.exists(f"/proc/self/fd/{fd}")}
    leaked_threads = [t.name for t in threading.enumerate()
                      if t.ident not in before_threads and not _process_wide(t)]
    leaked_tasks = _settled_tasks(before_tasks | {
        str(t.native_id) for t in threading.enumerate() if _process_wide(t)})
    assert not leaked_children, f"leaked child processes: {leaked_children}"
    targets = [os.readlink(f"/proc/self/fd/{fd}") for fd in leaked_fds
               if os.path.exists(f"/proc/self/fd/{fd}")]
    assert not leaked_fds, f"leaked descriptors: {targets}"
    assert not leaked_threads, f"leaked Python threads: {leaked_threads}"
    assert not leaked_tasks, f"leaked native threads: {leaked_tasks}"
    assert not _shm(), f"names left in /dev/shm: {_shm()}"
