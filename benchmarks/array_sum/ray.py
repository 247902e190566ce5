"""array_sum as a Ray task on a local 2-CPU Ray, the array passed as it is (Ray puts it in
its object store with each call). NaN ("failed") when Ray does not start here."""
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from _work import array_sum
from array_sum._common import Call, array, ms_per_call

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextmanager
def caller() -> Iterator[Call | None]:
    import ray
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False,  # workers import _work from benchmarks/:
                 job_config=ray.job_config.JobConfig(code_search_path=[HERE]))
    except Exception as e:  # any start-up failure is reported, not raised
        print(f"  ray did not start: {e!r}", file=sys.stderr)
        ray.shutdown()
        yield None
        return
    remote: dict[Callable[[np.ndarray], object], Any] = {}  # fn -> its remote function

    def call(fn: Callable[[np.ndarray], object], a: np.ndarray) -> object:
        if fn not in remote:
            remote[fn] = ray.remote(fn)
        return ray.get(remote[fn].remote(a))
    try:
        yield call
    finally:
        ray.shutdown()


def run(n: int, runs: int) -> float:
    with caller() as call:
        return float("nan") if call is None else ms_per_call(call, array_sum, array(n), runs)
