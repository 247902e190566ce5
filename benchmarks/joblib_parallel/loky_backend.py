"""Parallel under "loky", joblib's default backend."""
from joblib_parallel._common import run as _run


def run(n: int, runs: int) -> float:
    return _run(n, runs, "loky")
