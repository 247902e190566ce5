"""The showdown's CPU-bound task, in an importable module so every pool can pickle it."""


def countdown(n: int) -> int:
    """Pure-Python busy work that holds the GIL the whole time."""
    while n > 0:
        n -= 1
    return n
