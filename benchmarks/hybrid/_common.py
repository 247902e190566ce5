"""Fetch n pages (20 ms per request), then parse each in ~4.5 ms of pure Python: pages/s.

``fetch_and_parse`` is what every competitor runs per page; it lives here, importable by
module name, so that worker processes can unpickle it.
"""
import re
from collections.abc import Callable

from _harness import timed
from _http import get

DELAY_MS = 20.0
ROUNDS = 380  # counting rounds per page: ~4.5 ms on the reference 2-core machine
_TAG = re.compile(rb"<[^>]*>")
_WORD = re.compile(r"[a-z]+")


def per_second(once: Callable[[], object], count: int, runs: int) -> float:
    once()  # warm: one full round, discarded, as for every competitor
    return count / min(timed(once) for _ in range(runs))


def parse(html: bytes) -> int:
    """Word frequencies of the page's text, counted ROUNDS times: a stand-in for a real
    parser's CPU time (the GIL is held throughout)."""
    words = _WORD.findall(_TAG.sub(b" ", html).decode().lower())
    score = 0
    for _ in range(ROUNDS):
        counts: dict[str, int] = {}
        for word in words:
            counts[word] = counts.get(word, 0) + 1
        score += max(counts.values())
    return score


def fetch_and_parse(url: str) -> int:
    """Blocking: the page on this thread's keep-alive connection, then parsed."""
    return parse(get(url))
