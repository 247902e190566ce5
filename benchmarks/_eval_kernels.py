"""What auto_eval's workloads do, and the arguments they are called with.

Every workload's function is ``work(x)``: one line that calls a kernel of this module
with the item and the workload's parameters, defined wherever the workload's home says
(a generated module, the ``__main__`` script, a closure). Worker processes import this
module on a workload's first call, so it imports nothing heavy at the top: NumPy and the
HTTP client are imported by the kernels that use them.

``build_items`` makes the items a map runs over, in the measuring process: distinct
objects (a pickle memoises a repeated object, so a chunk of ``[blob] * n`` would carry the
blob once, which no user's data does), built from the workload's seed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import time
import zlib
from typing import Any

_WORD = re.compile(r"\b[a-z]{3,}\b")
_WORDS = ("lane", "thread", "process", "core", "queue", "future", "result", "worker",
          "pickle", "socket", "buffer", "event")

# ------------------------------------------------------------------ pure-Python CPU


def loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def regex(text: str) -> int:
    return len(_WORD.findall(text))


def json_round_trip(document: str) -> int:
    return len(json.dumps(json.loads(document)))


def sort(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


# ------------------------------------------------------------------ GIL-releasing C work


@functools.lru_cache(maxsize=4)
def _data(size: int) -> bytes:
    """``size`` bytes of text-like data, made once per process (compressible, as files are)."""
    line = " ".join(_WORDS).encode() + b"\n"
    return (line * (size // len(line) + 1))[:size]


def digest(_: int, algorithm: str, size: int) -> bytes:
    return hashlib.new(algorithm, _data(size)).digest()


def compress(_: int, size: int, level: int) -> int:
    return len(zlib.compress(_data(size), level))


@functools.lru_cache(maxsize=4)
def _array(n: int) -> Any:
    import numpy as np

    return np.random.default_rng(n).random(n)


def numpy_op(_: int, op: str, n: int) -> float:
    import numpy as np

    if op == "matmul":  # n is the side of the square matrix
        a = _array(n * n).reshape(n, n)
        return float((a @ a)[0, 0])
    a = _array(n)
    return float(a.sum()) if op == "sum" else float(np.sort(a)[n // 2])


# ------------------------------------------------------------------ waiting


def sleep(ms: float) -> float:
    time.sleep(ms / 1000)
    return ms


def http_get(url: str) -> int:
    """A GET on the harness's local server, which answers after the delay the URL asks."""
    from _http import get

    return len(get(url))


def file_round_trip(_: int, size: int) -> int:
    with tempfile.TemporaryFile() as f:
        f.write(_data(size))
        f.seek(0)
        return len(f.read())


def spawn(_: int, program: str) -> int:
    argv = ["true"] if program == "true" else [sys.executable, "-S", "-c", "pass"]
    return subprocess.run(argv, check=True).returncode


def wait_then_compute(_: int, wait_ms: float, n: int) -> int:
    time.sleep(wait_ms / 1000)
    return loop(n)


# ------------------------------------------------------------------ large arguments


def consume(data: Any, how: str) -> int:
    """Reads an argument: a GIL-holding count or a GIL-releasing CRC."""
    if how == "crc32":
        return zlib.crc32(data)
    if hasattr(data, "dtype"):
        return int(data[::4096].sum())
    return data.count(7)


def produce(size: int, kind: str) -> Any:
    if kind == "numpy":
        import numpy as np

        return np.full(size // 8, 7.0)
    return b"\x07" * size if kind == "bytes" else bytearray(b"\x07") * size


def transform(data: Any) -> Any:
    return data * 2.0 if hasattr(data, "dtype") else data[::-1]


# ------------------------------------------------------------------ the items


def build_items(spec: dict[str, Any], calls: int, http_base: str | None = None) -> list[Any]:
    """The ``calls`` items of a workload, from its ``items`` spec (see _eval_families)."""
    kind = spec["kind"]
    rng = random.Random(spec.get("seed", 0))
    if kind == "const":
        return [spec["value"]] * calls  # ints and floats: nothing a pickle memo could share
    if kind == "range":
        return list(range(calls))
    if kind == "text":
        text = _text(spec["chars"], rng)
        return [text + " " * (1 + i % 3) for i in range(calls)]
    if kind == "json":
        document = json.dumps([{"id": i, "name": f"n{i}", "tags": ["a", "b"], "v": i * 0.5}
                               for i in range(spec["records"])])
        return [document + " " * (1 + i % 3) for i in range(calls)]
    if kind == "floats":
        values = [rng.random() for _ in range(spec["n"])]
        return [list(values) for _ in range(calls)]
    if kind == "blob":
        return [produce(spec["size"], spec["type"]) for _ in range(calls)]
    if kind == "urls":
        if http_base is None:
            raise RuntimeError("a socket workload needs the harness's HTTP server")
        return [f"{http_base}p/{i}?delay_ms={spec['delay_ms']}" for i in range(calls)]
    if kind in ("spread", "bimodal"):
        low, high = spec["low"], spec["high"]
        if kind == "spread":
            costs = [low * math.exp(rng.uniform(0, math.log(high / low))) for _ in range(calls)]
        else:
            costs = [high if rng.random() < spec["large"] else low for _ in range(calls)]
        as_int = spec["as"] == "int"
        if spec["as"] == "text":
            text = _text(int(high) + 3, rng)
            return [text[:int(c)] for c in costs]
        return [int(c) if as_int else round(c, 4) for c in costs]
    raise ValueError(f"unknown items kind {kind!r}")


def _text(chars: int, rng: random.Random) -> str:
    words, length = [], 0
    while length < chars:
        words.append(rng.choice(_WORDS) + str(rng.randrange(100)))
        length += len(words[-1]) + 1
    return " ".join(words)[:chars]
