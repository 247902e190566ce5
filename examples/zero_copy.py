"""Large NumPy arrays to process tasks and back without a single copy.

    python examples/zero_copy.py
"""

import time

import numpy as np

import multilane

MB = 256


def checksum(a):
    return float(a[::4096].sum())


def best_ms(fn, runs=5):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main():
    plain = np.ones(MB * 2**20 // 8)
    with multilane.zero_copy():  # arrays of 1 MiB or more made here live in shared memory
        shared = np.ones(MB * 2**20 // 8)

    # Workers make their results in shared memory too.
    with multilane.ProcessPoolExecutor(2, initializer=multilane.zero_copy) as ex:
        ex.submit(checksum, shared).result()  # warm: workers started, the block mapped
        for name, a in (("NumPy's allocator (one copy)", plain),
                        ("made under zero_copy (no copy)", shared)):
            ms = best_ms(lambda a=a: ex.submit(np.sum, a).result())
            print(f"{MB} MB summed in a worker, {name}: {ms:.0f} ms")

        # The task sees the array as it was sent, whatever the sender writes next.
        expected = checksum(shared)
        future = ex.submit(checksum, shared)
        shared[:] = 2  # the pages written are copied on write; the worker's stay as sent
        print("the worker saw the array as sent:", future.result() == expected)
        # Written since, it is copied this once; the result comes back without a copy.
        halves = ex.submit(np.multiply, shared, 0.5).result()
        print("the result is an ordinary array:", type(halves).__name__, halves[:3].tolist())

    stats = multilane.zero_copy.statistics()
    print(f"sent without a copy: {stats.sent_without_copy}, "
          f"copied because written since: {stats.copied_after_write}")


if __name__ == "__main__":
    main()
