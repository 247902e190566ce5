"""multilane's async lane: aiohttp, one session (limit 100) on the lane's event loop."""
from _http import page_urls, serve
from io_requests._common import close_session, fetch_async, per_second

import multilane


def run(n: int, runs: int) -> float:
    with serve() as base, multilane.Executor() as ex:
        urls = page_urls(base, n)
        try:
            loop = ex.options(lane="async")
            return per_second(lambda: list(loop.map(fetch_async, urls)), n, runs)
        finally:
            ex.options(lane="async").submit(close_session).result()
