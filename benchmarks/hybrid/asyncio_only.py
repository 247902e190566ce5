"""asyncio + aiohttp, 64 fetches at a time, each page parsed on the loop after its fetch."""
import asyncio
import time

import aiohttp
from _http import get_async, page_urls, run_loop, serve
from hybrid._common import DELAY_MS, parse


async def fetch_and_parse(session: aiohttp.ClientSession, limit: asyncio.Semaphore,
                          url: str) -> int:
    async with limit:
        html = await get_async(session, url)
    return parse(html)


async def _pages_per_second(urls: list[str], runs: int) -> float:
    limit = asyncio.Semaphore(64)
    async with aiohttp.ClientSession() as session:
        async def once() -> float:
            start = time.perf_counter()
            await asyncio.gather(*(fetch_and_parse(session, limit, url) for url in urls))
            return time.perf_counter() - start
        await once()  # warm: one full round, discarded, as for every competitor
        return len(urls) / min([await once() for _ in range(runs)])


def run(n: int, runs: int) -> float:
    with serve(DELAY_MS) as base:
        return run_loop(_pages_per_second(page_urls(base, n), runs))
