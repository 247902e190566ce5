"""Time until a new concurrent.futures pool of 2 is ready."""
from concurrent.futures import ProcessPoolExecutor

from startup._common import seconds_until_ready


def run(n: int, runs: int) -> float:
    return seconds_until_ready(lambda: ProcessPoolExecutor(2), runs)
