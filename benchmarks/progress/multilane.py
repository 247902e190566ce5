"""map(identity, range(n)) on multilane.Executor (the auto lane), no progress bar (timed in turns
with multilane_progress: see _common)."""
from progress._common import measure


def run(n: int, runs: int) -> float:
    return measure(n, runs)[0]
