"""GET n pages from the local server (3 ms per request): requests per second (shared)."""
import asyncio
from collections.abc import Callable
from typing import Any

from _harness import timed
from _http import get, get_async

_sessions: dict[asyncio.AbstractEventLoop, Any] = {}  # aiohttp sessions, by event loop


def per_second(once: Callable[[], object], count: int, runs: int) -> float:
    once()  # warm: one full round, discarded, as for every competitor
    return count / min(timed(once) for _ in range(runs))


def fetch(url: str) -> int:
    """Blocking: the page on this thread's keep-alive connection."""
    return len(get(url))


async def fetch_async(url: str) -> int:
    """The page with this event loop's aiohttp session (made on first use)."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None:
        import aiohttp
        session = _sessions[loop] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100))
    return len(await get_async(session, url))


async def close_session() -> None:
    """Closes this event loop's session, if ``fetch_async`` made one."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()
