"""Parallel under the "multilane" backend (the auto lane)."""
from joblib_parallel._common import run as _run


def run(n: int, runs: int) -> float:
    import multilane.joblib  # registers the backend

    try:
        return _run(n, runs, "multilane")
    finally:
        multilane.joblib.shutdown()
