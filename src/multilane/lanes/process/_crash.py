"""Why a worker ended, in words: the error each of its tasks fails with."""

from __future__ import annotations

import signal
from concurrent.futures import CancelledError

from ...errors import TaskTimeout, WorkerCrashed
from ._records import Task, Worker

__all__ = ["BROKEN", "how_it_ended", "note_oom_kills", "task_crash"]


BROKEN = -1  # completion kind for futures failed by the parent itself


def task_crash(task: Task, worker: Worker, exitcode: int, signum: int) -> tuple:
    if task.fate == "timeout":
        return (task, BROKEN, TaskTimeout(
            f"{task.name()} ran longer than its timeout of {task.timeout:g} s; the pool "
            f"killed its worker (pid {worker.pid}) and replaced it"))
    if task.fate == "cancelled":
        return (task, BROKEN, CancelledError())
    how = how_it_ended(exitcode, signum)
    if worker.killed:
        how += " by the pool, to stop another call it was running (a timeout or a cancel)"
    error = WorkerCrashed(
        f"the worker process (pid {worker.pid}) running {task.name()} {how}; "
        "the pool replaced it",
        pid=worker.pid, exitcode=None if signum else exitcode, signal=signum or None)
    return (task, BROKEN, error)


def how_it_ended(exitcode: int, signum: int) -> str:
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return f"was killed by {name}{_likely_cause(signum)}"
    return f"exited with code {exitcode}"


_oom_kills_seen = [-1]  # the count when last looked at (at pool start, then per crash)


def _oom_kills() -> int:
    """The kernel's count of processes its OOM killer has killed (/proc/vmstat), or -1."""
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1


def _likely_cause(signum: int) -> str:
    kills, before = _oom_kills(), _oom_kills_seen[0]
    _oom_kills_seen[0] = kills
    if signum == signal.SIGKILL:
        if before >= 0 and kills > before:
            return " (the kernel's OOM killer: the machine ran out of memory)"
        return " (kill -9, or the kernel's OOM killer if memory ran out)"
    return _CAUSES.get(signum, "")


_CAUSES = {
    signal.SIGSEGV.value: " (a segmentation fault: a bug in native code, or a stack overflow)",
    signal.SIGTERM.value: " (asked to terminate from outside the pool)",
    signal.SIGABRT.value: " (abort(): a failed assertion in native code)",
    signal.SIGBUS.value: " (a bus error: memory that vanished, e.g. a truncated file mapping)",
}


def note_oom_kills() -> None:
    """Remembers the kernel's OOM-kill count, so that a later SIGKILL can be told from one."""
    _oom_kills_seen[0] = _oom_kills()
