"""concurrent.futures.ThreadPoolExecutor(32): I/O overlaps, parsing is serialised by the GIL."""
from concurrent.futures import ThreadPoolExecutor

from _http import close_connections, page_urls, serve
from hybrid._common import DELAY_MS, fetch_and_parse, per_second


def run(n: int, runs: int) -> float:
    with serve(DELAY_MS) as base, ThreadPoolExecutor(32) as ex:
        urls = page_urls(base, n)
        try:
            return per_second(lambda: list(ex.map(fetch_and_parse, urls)), n, runs)
        finally:
            close_connections()
