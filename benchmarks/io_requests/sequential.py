"""One keep-alive http.client connection, one request at a time (n // 50 requests)."""
from _http import close_connections, page_urls, serve
from io_requests._common import fetch, per_second


def run(n: int, runs: int) -> float:
    count = max(1, n // 50)
    with serve() as base:
        urls = page_urls(base, count)
        try:
            return per_second(lambda: [fetch(url) for url in urls], count, runs)
        finally:
            close_connections()
