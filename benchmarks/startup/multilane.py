"""Time until a new multilane pool of 2 is ready."""
from startup._common import seconds_until_ready

import multilane


def run(n: int, runs: int) -> float:
    return seconds_until_ready(lambda: multilane.ProcessPoolExecutor(2), runs)
