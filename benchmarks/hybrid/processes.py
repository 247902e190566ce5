"""concurrent.futures.ProcessPoolExecutor() (one worker per core): each waits for its I/O.

Timed on n // 4 pages (scaled): one page at a time per core is slow, and steady.
"""
from concurrent.futures import ProcessPoolExecutor

from _http import page_urls, serve
from hybrid._common import DELAY_MS, fetch_and_parse, per_second


def run(n: int, runs: int) -> float:
    count = max(1, n // 4)
    with serve(DELAY_MS) as base, ProcessPoolExecutor() as ex:
        urls = page_urls(base, count)
        return per_second(lambda: list(ex.map(fetch_and_parse, urls)), count, runs)
