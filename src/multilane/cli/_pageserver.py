"""A local HTTP server with latency, for the showdown and the benchmarks.

``serve()`` runs the server in a process of its own, so that it does not compete for the
measuring process's GIL: asyncio (uvloop when installed), HTTP/1.1 keep-alive, pipelining,
and every ``GET`` answered after ``delay_ms`` (or the delay its URL asks for, as in
``/p/3?delay_ms=20``) with a deterministic HTML page (``/p/N`` is page N, of the size
``?bytes=N`` asks for, else the server's). Run as
``python -m multilane.cli._pageserver``, this module is that server: it prints its port,
then serves until its parent closes its stdin or terminates it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import os
import resource
import select
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

READY_TIMEOUT = 10.0
MAX_HEAD = 64 * 1024
BACKLOG = 4096  # the showdown opens thousands of connections at once


@contextmanager
def serve(delay_ms: float = 3.0, page_bytes: int = 2048) -> Iterator[str]:
    """Starts the server process; yields its base URL (``http://127.0.0.1:PORT/``)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", __name__, "--delay-ms", str(delay_ms),
         "--page-bytes", str(page_bytes)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{_read_port(proc)}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def _read_port(proc: subprocess.Popen[bytes]) -> int:
    assert proc.stdout is not None
    fd, line = proc.stdout.fileno(), b""
    deadline = time.monotonic() + READY_TIMEOUT
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError(f"the local HTTP server did not report its port within "
                               f"{READY_TIMEOUT:.0f} s")
        chunk = os.read(fd, 64)
        if not chunk:
            raise RuntimeError("the local HTTP server exited before reporting its port")
        line += chunk
    return int(line)


def run_loop(main: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run(main)``, on uvloop when it is installed, as a user would."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def raise_open_files_limit() -> int:
    """Raises this process's limit on open descriptors to the most it may have (a soft
    limit of 1,024 is common); returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = 1 << 16 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


# ------------------------------------------------------------------ the server's side

_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "du", "fe", "gi")
_WORDS = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in ("", *_SYLLABLES)]
_TEXT = [_WORDS[(i * 2654435761) % len(_WORDS)] for i in range(8192)]


@functools.lru_cache(maxsize=4096)
def page(number: int, size: int) -> bytes:
    """Page ``number``: links to other pages, then paragraphs of words, ~``size`` bytes."""
    start = number * 7919
    parts = [f"<!doctype html><html><head><title>Page {number}</title></head><body>"
             f"<h1>Page {number}</h1><ul>"]
    for k in range(10):
        target = (number * 31 + k * 97) % 100_000
        parts.append(f'<li><a href="/p/{target}">{_TEXT[target % len(_TEXT)]} {target}</a></li>')
    parts.append("</ul>")
    length, tail = sum(map(len, parts)), "</body></html>\n"
    while length + len(tail) < size:
        words = [_TEXT[(start + i) % len(_TEXT)] for i in range(12)]
        start += 12
        parts.append(f"<p>{' '.join(words).capitalize()}.</p>\n")
        length += len(parts[-1])
    parts.append(tail)
    return "".join(parts).encode()


def _query_number(target: bytes, name: bytes) -> float | None:
    """The number the query parameter ``name`` of ``target`` gives, if it gives one."""
    for pair in target.partition(b"?")[2].split(b"&"):
        key, _, value = pair.partition(b"=")
        if key == name:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _response(status: str, body: bytes, close: bool) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n{connection}\r\n").encode() + body


class _HTTP(asyncio.Protocol):
    """One connection: parses requests as bytes arrive, answers them in order."""

    def __init__(self, delay: float, page_bytes: int) -> None:
        self._delay = delay
        self._page_bytes = page_bytes
        self._buffer = bytearray()
        self._pending: collections.deque[list[Any]] = collections.deque()  # [bytes, ready]
        self._closing = False  # a request asked to close: read no further
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._pending.clear()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._buffer += data
        while not self._closing:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    self._answer("431 Request Header Fields Too Large", True, 0)
                return
            request = self._parse(bytes(self._buffer[:end]))
            if request is None:
                self._answer("400 Bad Request", True, 0)
                return
            method, target, close, body_length = request
            if len(self._buffer) < end + 4 + body_length:
                return  # the request's body has not all arrived
            del self._buffer[:end + 4 + body_length]
            if method != b"GET":
                self._answer("405 Method Not Allowed", True, 0)
            else:
                self._answer("200 OK", close, self._delay_of(target), self._page(target))

    @staticmethod
    def _parse(head: bytes) -> tuple[bytes, bytes, bool, int] | None:
        lines = head.split(b"\r\n")
        request_line = lines[0].split()
        if len(request_line) != 3 or not request_line[2].startswith(b"HTTP/1."):
            return None
        method, target, version = request_line
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                return None
            headers[name.strip().lower()] = value.strip().lower()
        body_length = headers.get(b"content-length", b"0")
        if b"transfer-encoding" in headers or not body_length.isdigit():
            return None  # request bodies are only accepted with a Content-Length
        connection = headers.get(b"connection", b"")
        close = connection == b"close" if version == b"HTTP/1.1" else connection != b"keep-alive"
        return method, target, close, int(body_length)

    def _delay_of(self, target: bytes) -> float:
        """The delay ``?delay_ms=N`` in the target asks for, else the server's own."""
        delay_ms = _query_number(target, b"delay_ms")
        return self._delay if delay_ms is None else max(0.0, delay_ms) / 1000

    def _page(self, target: bytes) -> bytes:
        """The page ``/p/N`` names, of the size ``?bytes=N`` asks for, else the server's."""
        path = target.partition(b"?")[0]
        number = int(path[3:]) if path.startswith(b"/p/") and path[3:].isdigit() else 0
        size = _query_number(target, b"bytes")
        return page(number, self._page_bytes if size is None else max(0, int(size)))

    def _answer(self, status: str, close: bool, delay: float, body: bytes = b"") -> None:
        """Queues a response, sent after ``delay`` and after every earlier one."""
        entry = [_response(status, body, close), False]
        self._pending.append(entry)
        self._closing = close
        if delay:
            asyncio.get_running_loop().call_later(delay, self._ready, entry)
        else:
            self._ready(entry)

    def _ready(self, entry: list[Any]) -> None:
        entry[1] = True
        while self._transport is not None and self._pending and self._pending[0][1]:
            self._transport.write(self._pending.popleft()[0])
            if self._closing and not self._pending:
                self._transport.close()


class _ParentWatch(asyncio.Protocol):
    """Reads the server's stdin: when the parent closes it (or dies), the server stops."""

    def __init__(self, gone: asyncio.Future[None]) -> None:
        self._gone = gone

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._gone.done():
            self._gone.set_result(None)


async def _serve_forever(delay_ms: float, page_bytes: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _HTTP(delay_ms / 1000, page_bytes),
                                      "127.0.0.1", 0, backlog=BACKLOG)
    gone: asyncio.Future[None] = loop.create_future()
    await loop.connect_read_pipe(lambda: _ParentWatch(gone), sys.stdin)
    async with server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await gone


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a local HTTP server with latency")
    parser.add_argument("--delay-ms", type=float, default=3.0)
    parser.add_argument("--page-bytes", type=int, default=2048)
    args = parser.parse_args(argv)
    raise_open_files_limit()
    run_loop(_serve_forever(args.delay_ms, args.page_bytes))


if __name__ == "__main__":
    main()

