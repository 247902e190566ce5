"""Hand-written asyncio + aiohttp: one ClientSession (limit 100), gather of every fetch."""
import asyncio
import time

import aiohttp
from _http import get_async, page_urls, run_loop, serve


async def fetch(session: aiohttp.ClientSession, url: str) -> int:
    return len(await get_async(session, url))


async def _requests_per_second(urls: list[str], runs: int) -> float:
    async with aiohttp.ClientSession() as session:
        async def once() -> float:
            start = time.perf_counter()
            await asyncio.gather(*(fetch(session, url) for url in urls))
            return time.perf_counter() - start
        await once()  # warm: one full round, discarded, as for every competitor
        return len(urls) / min([await once() for _ in range(runs)])


def run(n: int, runs: int) -> float:
    with serve() as base:
        return run_loop(_requests_per_second(page_urls(base, n), runs))
