"""Small, fast stand-ins for the names README.md's examples use without defining them.

tests/test_readme.py puts these in the namespace of every README block it runs. They are
module-level functions so that process workers load them by name, as they would a user's
(workers adopt the parent's sys.path, which has tests/ on it). The network is a loopback
HTTP server (:class:`PageServer`) the test starts on 127.0.0.1 and stops after the block;
nothing here connects anywhere else.
"""

from __future__ import annotations

import asyncio
import http.client
import http.server
import urllib.parse

WORDS = "lane thread process loop queue future worker ring".split()


def page(n: int) -> str:
    """Page ``n`` of the loopback server: ``50 + n`` words, chosen from ``n``."""
    return " ".join(WORDS[(n + i) % len(WORDS)] for i in range(50 + n))


class PageHandler(http.server.BaseHTTPRequestHandler):
    """``GET /N`` returns :func:`page` N, then closes the connection (HTTP/1.0)."""

    def do_GET(self) -> None:  # noqa: N802 -- the http.server API
        try:
            n = int(self.path.rsplit("/", 1)[-1] or 0)
        except ValueError:
            self.send_error(404)
            return
        body = page(n).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class PageServer(http.server.ThreadingHTTPServer):
    """One thread per request; ``server_close()`` joins them all, so none outlives a test."""

    request_queue_size = 128  # the default 5 drops connections that 64 threads open at once
    daemon_threads = False
    block_on_close = True


def _split(url: str) -> tuple[str, int, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or parts.port is None:
        raise ValueError(f"the README stand-ins only fetch from the loopback server: {url!r}")
    return parts.hostname, parts.port, parts.path or "/"


def download(url: str) -> str:
    """Blocking download (``http.client``: no proxy settings apply to the loopback)."""
    host, port, path = _split(url)
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise ConnectionError(f"{url}: HTTP {response.status}")
        return body.decode()
    finally:
        connection.close()


async def fetch_async(url: str) -> str:
    """The same download on the running event loop (asyncio streams, no thread)."""
    host, port, path = _split(url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)  # HTTP/1.0: read to the close
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if status.split()[1:2] != [b"200"]:
        raise ConnectionError(f"{url}: {status.decode(errors='replace')}")
    return body.decode()


def count_words(text: str) -> int:
    return len(text.split())


def download_and_count(url: str) -> int:
    return count_words(download(url))


def crunch(values: list[int]) -> int:
    """Pure-Python computing, a few microseconds of it."""
    return sum(v * v for v in values)


def flaky(url: str) -> str:
    """Stands in for a call that may raise ConnectionError; on the loopback it succeeds."""
    return download(url)


def namespace(base_url: str) -> dict[str, object]:
    """The README's undefined names, for one block (fresh objects each time)."""
    urls = [f"{base_url}/{n}" for n in range(8)]
    return {
        "count_words": count_words,
        "crunch": crunch,
        "data": list(range(1000)),
        "download": download,
        "download_and_count": download_and_count,
        "fetch_async": fetch_async,
        "flaky": flaky,
        "items": [list(range(n, n + 100)) for n in range(8)],
        "pages": [page(n) for n in range(8)],
        "text": page(0),
        "url": urls[0],
        "urls": urls,
    }
