"""The auto suite's workloads: importable functions, so worker processes can run them."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
import zlib

from _http import get

_WORD = re.compile(r"\b[a-z]{3,}\b")


def python_loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def regex_words(text: str) -> int:
    return len(_WORD.findall(text))


def json_parse(document: str) -> int:
    return len(json.loads(document))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compress(data: bytes) -> int:
    return len(zlib.compress(data, 6))


def matmul(a):  # noqa: ANN001 -- a NumPy array
    return float((a @ a).sum())


def sleep_ms(ms: float) -> float:
    time.sleep(ms / 1000)
    return ms


async def sleep_async(ms: float) -> float:
    await asyncio.sleep(ms / 1000)
    return ms


def fetch(url: str) -> int:
    return len(get(url))


def fetch_and_parse(url: str) -> int:
    return regex_words(get(url).decode() * 40)


def file_round_trip(size: int) -> int:
    with tempfile.TemporaryFile() as f:
        f.write(os.urandom(size))
        f.seek(0)
        return len(f.read())


def run_true(_: int) -> int:
    return subprocess.run(["true"], check=True).returncode


def sleep_then_loop(n: int) -> int:
    time.sleep(0.002)
    return python_loop(n)


def add_one(x: int) -> int:
    return x + 1


def join_words(n: int) -> str:
    return "-".join(str(i) for i in range(n))


def array_sum(a) -> float:  # noqa: ANN001 -- a NumPy array
    return float(a.sum())


def length(data: bytes) -> int:
    return len(data)
