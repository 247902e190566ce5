"""multilane's hybrid lane: one process per core, each running many fetches on threads."""
from _http import page_urls, serve
from hybrid._common import DELAY_MS, fetch_and_parse, per_second

import multilane


def run(n: int, runs: int) -> float:
    with serve(DELAY_MS) as base, multilane.Executor() as ex:
        urls = page_urls(base, n)
        hybrid = ex.options(lane="hybrid")
        return per_second(lambda: list(hybrid.map(fetch_and_parse, urls)), n, runs)
