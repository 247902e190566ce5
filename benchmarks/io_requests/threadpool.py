"""concurrent.futures.ThreadPoolExecutor(64), a keep-alive connection per thread."""
from concurrent.futures import ThreadPoolExecutor

from _http import close_connections, page_urls, serve
from io_requests._common import fetch, per_second


def run(n: int, runs: int) -> float:
    with serve() as base, ThreadPoolExecutor(64) as ex:
        urls = page_urls(base, n)
        try:
            return per_second(lambda: list(ex.map(fetch, urls)), n, runs)
        finally:
            close_connections()
