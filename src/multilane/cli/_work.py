"""The showdown's tasks, in an importable module so that every pool can pickle them:
counting (holds the GIL), fetching a page (waits), and scoring a page (holds the GIL)."""

from __future__ import annotations

import asyncio
import http.client
import threading
from urllib.parse import urlsplit

__all__ = ["close_connections", "countdown", "fetch", "fetch_async", "fetch_and_score",
           "score"]


def countdown(n: int) -> int:
    """Pure-Python busy work that holds the GIL the whole time."""
    while n > 0:
        n -= 1
    return n


# ------------------------------------------------------------------ waiting

_local = threading.local()
_opened: list[http.client.HTTPConnection] = []
_opened_lock = threading.Lock()


def fetch(url: str) -> bytes:
    """The body of ``url``, fetched on this thread's keep-alive connection (the standard
    library's blocking client); raises unless the status is 200."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    conn = getattr(_local, "conn", None)
    if conn is None or (conn.host, conn.port) != (host, parts.port):
        conn = _local.conn = http.client.HTTPConnection(host, parts.port)
        with _opened_lock:
            _opened.append(conn)
    conn.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path)
    response = conn.getresponse()
    body = response.read()
    _check(url, response.status)
    return body


def close_connections() -> None:
    """Closes the connections ``fetch`` opened in this process, on every thread (before a
    fork, so that no child shares a socket with its parent)."""
    with _opened_lock:
        for conn in _opened:
            conn.close()
        _opened.clear()
    _local.__dict__.clear()


async def fetch_async(url: str) -> bytes:
    """The body of ``url``, on a connection of its own, with asyncio's streams: a minimal
    HTTP/1.1 client for the showdown's server (``Connection: close``, then read to the
    end), so that the showdown needs no HTTP library."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                     "Connection: close\r\n\r\n".encode())
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1] if head.startswith(b"HTTP/") else b"?"
    _check(url, int(status) if status.isdigit() else 0)
    return body


def _check(url: str, status: int) -> None:
    if status != 200:
        raise RuntimeError(f"GET {url}: HTTP {status}")


# ------------------------------------------------------------------ computing on pages

_VOWELS = frozenset("aeiouy")


def score(page: bytes) -> tuple[int, float]:
    """Parses a page and scores it, in pure Python (the GIL held throughout): strips the
    tags character by character, then counts the words and their syllables. Returns the
    number of words and the mean syllables per word."""
    text, inside = [], False
    for ch in page.decode():
        if ch == "<":
            inside = True
        elif ch == ">":
            inside = False
            text.append(" ")
        elif not inside:
            text.append(ch)
    counts: dict[str, int] = {}
    for word in "".join(text).lower().split():
        counts[word] = counts.get(word, 0) + 1
    words = syllables = 0
    for word, n in counts.items():
        groups, before = 0, False
        for ch in word:
            vowel = ch in _VOWELS
            groups += vowel and not before
            before = vowel
        words += n
        syllables += n * max(1, groups)
    return words, syllables / max(1, words)


def fetch_and_score(url: str) -> tuple[int, float]:
    """A page fetched, then scored: the mixed work, as one call."""
    return score(fetch(url))
