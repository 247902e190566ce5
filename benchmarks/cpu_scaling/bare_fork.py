"""The machine's ceiling: two bare os.fork() children doing two countdowns each."""
import os

from _harness import timed
from _work import countdown


def _two_children(n: int) -> None:
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            countdown(n)
            countdown(n)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)


def run(n: int, runs: int) -> float:
    return min(timed(lambda: _two_children(n)) for _ in range(runs))
