"""The article's pipeline end to end: fetch pages (async), parse and score them (processes),
write the results to files (threads), each stage on its own lane, joined by bounded queues.

Runs against a small HTTP server it starts on 127.0.0.1 (``_pages.py``: each page answered
after 20 ms) and stops at the end; the files go to a temporary directory removed after.

    python examples/pipeline.py
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from collections import Counter

from _pages import serving

import multilane

WORDS = "lane thread process loop queue future worker ring stage batch".split()
PAGES = 200


def page(n: int) -> str:
    """Page N is 3,000 words, chosen deterministically from N."""
    return " ".join(WORDS[(n * i + i // 7) % len(WORDS)] for i in range(3000))


async def fetch(url: str) -> tuple[str, str]:
    """Waiting work: an HTTP GET with asyncio's streams (the standard library has no
    asyncio HTTP client; with aiohttp you would await session.get(url) instead)."""
    host, port_path = url.removeprefix("http://").split(":", 1)
    port, path = port_path.split("/", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return url, response.split(b"\r\n\r\n", 1)[1].decode()


def score(page: tuple[str, str]) -> dict:
    """Computing work, pure Python holding the GIL: it belongs in a process."""
    url, text = page
    words = re.findall(r"\w+", text)
    counts = Counter(words)
    pairs = Counter(zip(words, words[1:], strict=False))
    return {"url": url, "words": len(words), "top": counts.most_common(1)[0][0],
            "top_pair": " ".join(pairs.most_common(1)[0][0])}


def write(result: dict, folder: str) -> str:
    """Blocking file I/O: threads."""
    name = os.path.join(folder, result["url"].rsplit("/", 1)[-1] + ".json")
    with open(name, "w") as f:
        json.dump(result, f)
    return name


def main() -> None:
    with serving(page, delay_s=0.02) as base, tempfile.TemporaryDirectory() as folder:
        urls = [f"{base}p/{n}" for n in range(PAGES)]
        with multilane.Executor() as ex:
            pipe = (multilane.Pipeline(ex)
                    .map(fetch, lane="async", concurrency=64)
                    .map(score, lane="process")
                    .map(lambda result: write(result, folder), lane="thread", concurrency=8))
            start = time.perf_counter()
            written = list(pipe.run(urls))
            elapsed = time.perf_counter() - start
            print(f"pipeline: {len(written)} pages fetched, scored and written in "
                  f"{elapsed:.2f} s ({len(written) / elapsed:,.0f} pages/s)")
            with open(written[7]) as f:
                print(f"page 7: {json.load(f)}")

        start = time.perf_counter()
        sequential = [write(score(asyncio.run(fetch(url))), folder) for url in urls[:20]]
        per_page = (time.perf_counter() - start) / len(sequential)
        print(f"one page at a time: {per_page * 1000:.0f} ms a page, so "
              f"{per_page * PAGES:.1f} s for all {PAGES}")


if __name__ == "__main__":
    main()
