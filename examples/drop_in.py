"""Swap concurrent.futures for multilane: same code, cheaper tasks, and a pool that survives
a killed worker.

    python examples/drop_in.py
"""

import os
import signal
import time

import multilane
from multilane import ProcessPoolExecutor  # was: from concurrent.futures import ...


def slow_square(x):
    time.sleep(0.01)
    return x * x


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def main():
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as ex:
        ex.submit(abs, 0).result()  # the workers are fresh interpreters: wait for one
        print(f"pool ready: {(time.perf_counter() - start) * 1e3:.0f} ms")

        # Tiny tasks: a round trip costs microseconds, not a tenth of a millisecond.
        start = time.perf_counter()
        for i in range(1000):
            ex.submit(abs, -i).result()
        print(f"one round trip: {(time.perf_counter() - start) * 1e3:.0f} µs on average")

        # Lambdas work (the standard executor cannot pickle them).
        print("lambda:", ex.submit(lambda x: x + 1, 41).result())

        # A worker killed mid-task fails only that task; the pool carries on.
        doomed = ex.submit(die)
        others = [ex.submit(slow_square, i) for i in range(8)]
        try:
            doomed.result()
        except multilane.WorkerCrashed as exc:
            print("crashed as expected:", exc)
        print("the other tasks:", [f.result() for f in others])
        print("statistics:", ex.statistics())


if __name__ == "__main__":
    main()
