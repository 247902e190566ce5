"""One executor, every lane: download pages with threads or coroutines, count words in
processes, or do both per page in the hybrid lane.

Runs against a small HTTP server it starts on 127.0.0.1 and stops at the end.

    python examples/lanes.py
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections import Counter

from _pages import serving

import multilane

WORDS = "lane thread process loop queue future worker ring".split()


def page(n: int) -> str:
    """Page N is 2,000 words, chosen deterministically from N."""
    return " ".join(WORDS[(n * i) % len(WORDS)] for i in range(2000))


def download(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


async def download_async(url: str) -> str:
    # The standard library has no asyncio HTTP client: a thread does the blocking part.
    # With aiohttp installed you would await session.get(url) here instead.
    return await asyncio.to_thread(download, url)


def top_word(text: str) -> str:
    """Pure-Python CPU work: it holds the GIL, so it belongs in a process."""
    counts = Counter(re.findall(r"\w+", text))
    return counts.most_common(1)[0][0]


def download_and_count(url: str) -> str:
    return top_word(download(url))


@multilane.task(lane="thread")
def fetch_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


def main() -> None:
    with serving(page, delay_s=0.01) as base:  # a slow server: waiting dominates
        urls = [f"{base}{n}" for n in range(40)]
        with multilane.Executor(threads=16) as ex:
            start = time.perf_counter()
            pages = list(ex.options(lane="thread").map(download, urls))
            print(f"thread lane: {len(pages)} pages in {time.perf_counter() - start:.2f} s")

            start = time.perf_counter()
            words = list(ex.options(lane="process").map(top_word, pages))
            print(f"process lane: top words {Counter(words).most_common(2)} "
                  f"in {time.perf_counter() - start:.2f} s")

            async def from_a_loop() -> list[str]:
                return [page async for page in ex.map_async(download_async, urls[:5])]

            print(f"async lane: {len(asyncio.run(from_a_loop()))} pages from a coroutine")

            start = time.perf_counter()
            both = list(ex.options(lane="hybrid").map(download_and_count, urls))
            print(f"hybrid lane: {len(both)} pages downloaded and counted "
                  f"in {time.perf_counter() - start:.2f} s")
            print(f"lanes started: {', '.join(ex.lanes())}")
        print(f"@multilane.task: status {fetch_status.submit(urls[0]).result()}, "
              f"plain call {fetch_status(urls[1])}")


if __name__ == "__main__":
    main()
