"""multilane's thread lane (64 threads, as the peer), the same blocking fetch."""
from _http import close_connections, page_urls, serve
from io_requests._common import fetch, per_second

import multilane


def run(n: int, runs: int) -> float:
    with serve() as base, multilane.Executor(threads=64) as ex:
        urls = page_urls(base, n)
        try:
            return per_second(lambda: list(ex.options(lane="thread").map(fetch, urls)), n, runs)
        finally:
            close_connections()
