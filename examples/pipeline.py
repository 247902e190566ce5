"""The article's pipeline end to end: fetch pages (async), parse and score them (processes),
write the results to files (threads), each stage on its own lane, joined by bounded queues.

Runs against a small HTTP server it starts on 127.0.0.1 (each page answered after 20 ms)
and stops at the end; the files go to a temporary directory that is removed after.

    python examples/pipeline.py
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import tempfile
import threading
import time
from collections import Counter

import multilane

WORDS = "lane thread process loop queue future worker ring stage batch".split()
PAGES = 200


class Pages(http.server.BaseHTTPRequestHandler):
    """Page N is 3,000 words chosen deterministically from N, sent after 20 ms."""

    def do_GET(self) -> None:  # noqa: N802 -- the http.server API
        n = int(self.path.rsplit("/", 1)[-1] or 0)
        body = " ".join(WORDS[(n * i + i // 7) % len(WORDS)] for i in range(3000)).encode()
        time.sleep(0.02)  # a slow server: waiting dominates the fetch
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True


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
    server = Server(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    urls = [f"http://127.0.0.1:{server.server_address[1]}/p/{n}" for n in range(PAGES)]
    try:
        with multilane.Executor() as ex, tempfile.TemporaryDirectory() as folder:
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
            for name in written:
                os.remove(name)
            sequential = [write(score(asyncio.run(fetch(url))), folder) for url in urls[:20]]
            per_page = (time.perf_counter() - start) / len(sequential)
            print(f"one page at a time: {per_page * 1000:.0f} ms a page, so "
                  f"{per_page * PAGES:.1f} s for all {PAGES}")
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
