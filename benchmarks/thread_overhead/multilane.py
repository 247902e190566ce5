"""Tiny calls on multilane's thread lane (64 threads, as the peer)."""
from thread_overhead._common import us_per_call

import multilane


def run(n: int, runs: int) -> float:
    with multilane.Executor(threads=64) as ex:
        threads = ex.options(lane="thread")
        return us_per_call(lambda fn, x: threads.submit(fn, x), n, runs)
