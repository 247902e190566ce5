"""The benchmarks' local HTTP server (``multilane.cli._pageserver``, which the showdown
uses too) and the client calls the competitors share."""

from __future__ import annotations

from typing import Any

from multilane.cli._pageserver import page, run_loop, serve
from multilane.cli._work import close_connections
from multilane.cli._work import fetch as get

__all__ = ["close_connections", "get", "get_async", "page", "page_urls", "run_loop", "serve"]


def page_urls(base: str, n: int) -> list[str]:
    return [f"{base}p/{i}" for i in range(n)]


async def get_async(session: Any, url: str) -> bytes:
    """The body of ``url``, fetched with an ``aiohttp.ClientSession``; raises unless 200."""
    async with session.get(url) as response:
        body = await response.read()
    _check(url, response.status)
    return body


def _check(url: str, status: int) -> None:
    if status != 200:
        raise RuntimeError(f"GET {url}: HTTP {status}")


