"""multilane's async lane: aiohttp, one session (limit 100) on the lane's event loop."""
from _http import page_urls, serve
from io_requests._common import close_session, fetch_async, per_second

import multilane


def run(n: int, runs: int) -> float:
    with serve() as base, multilane.Executor() as ex:
        urls = page_urls(base, n)
        try:
            return per_second(lambda: list(ex.map(fetch_async, urls, lane="async")), n, runs)
        finally:
            ex.submit(close_session, lane="async").result()
