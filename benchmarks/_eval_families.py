"""auto_eval's workloads: parameterised families, a seeded generator and the split.

``generate(seed, count)`` draws workloads from the families below, each from a random
stream of its own (``Random(f"{seed}/{family}")``), so a larger ``count`` only adds
workloads and a family's draws do not depend on which other families are chosen.
``half(workload)`` puts a workload in the ``"tune"`` or the ``"heldout"`` half by a hash
of its id: the same on every run and every Python. The generator keeps drawing from each
family until both halves hold their share of it, so every family is in both.

A workload is plain data (JSON-able): what its function ``work(x)`` calls (a kernel of
``_eval_kernels`` and its keyword arguments), how the items are built, how many calls,
how they are made (one ``map``, or ``submit`` of each then waiting for all: users do
both), and where ``work`` is defined (``_eval_homes``). The number of calls follows from
the family's nominal cost per call, so that the plain sequential loop takes a time drawn
log-uniformly from the scale's range; the costs were measured on the 2-core VM the
benchmark is run on and only choose sizes: the figures compare lanes on the same calls.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

MIN_CALLS, MAX_CALLS = 10, 1_000_000
SUBMIT_MAX_CALLS = 20_000  # beyond this only maps: a future per call is the user's choice
MEMORY = 1 << 30  # bytes of items and results a large-argument workload may hold
PHI = (1 + 5 ** 0.5) / 2


@dataclass(frozen=True)
class Scale:
    """The range of the sequential loop's time, and the largest argument."""

    seconds: tuple[float, float]
    max_bytes: int


DEFAULT = Scale((0.005, 1.0), 100 << 20)
QUICK = Scale((0.005, 0.04), 4 << 20)


@dataclass(frozen=True)
class Workload:
    id: str
    family: str
    params: dict[str, Any]  # the draws, as the tables show them
    kernel: str  # a function of _eval_kernels: work(x) returns kernel(x, **args)
    args: dict[str, Any]
    items: dict[str, Any]  # how _eval_kernels.build_items makes the items
    calls: int
    mode: str  # "map" or "submit"
    home: str  # "module", "main" or "closure"
    slow_import: dict[str, Any]  # what importing the home module costs (module, closure)
    nominal_s: float  # the sequential loop's time by the nominal costs
    needs: tuple[str, ...] = field(default=())  # "numpy", "http"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def half(workload: Workload) -> str:
    """``"tune"`` or ``"heldout"``, by a hash of the workload's id."""
    return "tune" if hashlib.sha256(f"half:{workload.id}".encode()).digest()[0] % 2 else "heldout"


# ------------------------------------------------------------------ the families
# Each draws (params, kernel, args, items, cost per call in seconds, calls allowed by
# memory, needs) from its random stream.

Draw = tuple[dict[str, Any], str, dict[str, Any], dict[str, Any], float, int, tuple[str, ...]]


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _seed(rng: random.Random) -> int:
    return rng.randrange(1 << 31)


def py_cpu(rng: random.Random, scale: Scale) -> Draw:
    """Pure-Python CPU, 1 µs to 100 ms a call: a loop, fib, a regex, JSON, a sort."""
    variant = rng.choice(("loop", "fib", "regex", "json", "sort"))
    cost = _log_uniform(rng, 1e-6, 0.1)
    if variant == "loop":
        n = max(1, round((cost - 0.15e-6) / 43e-9))
        return {"kind": "loop", "n": n}, "loop", {}, {"kind": "const", "value": n}, cost, \
            MAX_CALLS, ()
    if variant == "fib":
        n = min(32, max(3, round(20 + math.log(cost / 0.7e-3, PHI))))
        cost = 0.7e-3 * PHI ** (n - 20) + 0.2e-6
        return {"kind": "fib", "n": n}, "fib", {}, {"kind": "const", "value": n}, cost, \
            MAX_CALLS, ()
    if variant == "regex":
        chars = max(8, round(cost / 22e-9))
        items = {"kind": "text", "chars": chars, "seed": _seed(rng)}
        return {"kind": "regex", "chars": chars}, "regex", {}, items, cost, \
            MEMORY // (2 * chars), ()  # a str of ASCII: a byte a char, twice for the copy
    if variant == "json":
        records = max(1, round(cost / 1.84e-6))
        items = {"kind": "json", "records": records}
        return {"kind": "json", "records": records}, "json_round_trip", {}, items, cost, \
            MEMORY // (60 * records), ()
    n = max(2, round(cost / 127e-9))
    items = {"kind": "floats", "n": n, "seed": _seed(rng)}
    return {"kind": "sort", "n": n}, "sort", {}, items, cost, MEMORY // (8 * n), ()


def c_release(rng: random.Random, scale: Scale) -> Draw:
    """C work that releases the GIL: hashlib, zlib, NumPy (skipped without NumPy)."""
    variant = rng.choice(("sha256", "blake2b", "zlib", "numpy_sum", "numpy_sort",
                          "numpy_matmul"))
    cost = _log_uniform(rng, 10e-6, 0.05)
    cap = min(scale.max_bytes, 32 << 20)
    items = {"kind": "range"}
    if variant in ("sha256", "blake2b"):
        size = min(cap, round(cost / (0.62e-9 if variant == "sha256" else 1.07e-9)))
        return {"kind": variant, "bytes": size}, "digest", {"algorithm": variant, "size": size}, \
            items, size * (0.62e-9 if variant == "sha256" else 1.07e-9) + 1e-6, MAX_CALLS, ()
    if variant == "zlib":
        level = rng.choice((1, 6))
        per_byte = 1.45e-9 if level == 1 else 2.8e-9
        size = min(cap, round(cost / per_byte))
        return {"kind": "zlib", "level": level, "bytes": size}, "compress", \
            {"size": size, "level": level}, items, size * per_byte + 1e-6, MAX_CALLS, ()
    if variant == "numpy_matmul":
        side = max(8, round(200 * (cost / 0.17e-3) ** (1 / 3)))
        return {"kind": "matmul", "side": side}, "numpy_op", {"op": "matmul", "n": side}, \
            items, 0.17e-3 * (side / 200) ** 3 + 2e-6, MAX_CALLS, ("numpy",)
    op = variant.removeprefix("numpy_")
    per = 0.3e-9 if op == "sum" else 7e-9
    n = min(cap // 8, max(16, round(cost / per)))
    return {"kind": op, "floats": n}, "numpy_op", {"op": op, "n": n}, items, \
        n * per + 2e-6, MAX_CALLS, ("numpy",)


def sleep(rng: random.Random, scale: Scale) -> Draw:
    """``time.sleep`` of 0.1 to 100 ms."""
    ms = round(_log_uniform(rng, 0.1, 100), 3)
    return {"ms": ms}, "sleep", {}, {"kind": "const", "value": ms}, ms / 1000 + 70e-6, \
        MAX_CALLS, ()


def socket_wait(rng: random.Random, scale: Scale) -> Draw:
    """A GET on a loopback HTTP server that answers after 0.1 to 100 ms."""
    ms = round(_log_uniform(rng, 0.1, 100), 3)
    return {"delay_ms": ms}, "http_get", {}, {"kind": "urls", "delay_ms": ms}, \
        ms / 1000 + 150e-6, MAX_CALLS, ("http",)


def file_io(rng: random.Random, scale: Scale) -> Draw:
    """Writes a temporary file of 1 KB to 8 MB and reads it back."""
    size = round(_log_uniform(rng, 1 << 10, min(scale.max_bytes, 8 << 20)))
    return {"bytes": size}, "file_round_trip", {"size": size}, {"kind": "range"}, \
        15e-6 + 0.26e-9 * size, MAX_CALLS, ()


def subprocess_run(rng: random.Random, scale: Scale) -> Draw:
    """``subprocess.run`` of ``true`` or of ``python -S -c pass``."""
    program = rng.choice(("true", "python"))
    return {"program": program}, "spawn", {"program": program}, {"kind": "range"}, \
        0.9e-3 if program == "true" else 7e-3, MAX_CALLS, ()


def wait_compute(rng: random.Random, scale: Scale) -> Draw:
    """A sleep, then a loop, in one call: 0.5 to 100 ms, 10% to 90% of it waiting."""
    cost = _log_uniform(rng, 0.5e-3, 0.1)
    waiting = round(rng.uniform(0.1, 0.9), 2)
    wait_ms = round(cost * waiting * 1000, 3)
    n = max(1, round(cost * (1 - waiting) / 43e-9))
    return {"ms": round(cost * 1000, 2), "waiting": waiting}, "wait_then_compute", \
        {"wait_ms": wait_ms, "n": n}, {"kind": "range"}, cost + 70e-6, MAX_CALLS, ()


def large_args(rng: random.Random, scale: Scale) -> Draw:
    """Arguments or results (or both) of 100 B to 100 MB: bytes, bytearray, NumPy. At most
    SUBMIT_MAX_CALLS calls: the family is about sizes (maps of microsecond calls are
    py_cpu's), and 380,000 small arrays took the lanes that pickle them 80 s in all."""
    direction = rng.choice(("in", "out", "both"))
    kind = rng.choice(("bytes", "bytearray", "numpy"))
    copies = 2 if direction == "both" else 1
    size = round(_log_uniform(rng, 100, scale.max_bytes // copies))
    size = max(8, size - size % 8)
    needs = ("numpy",) if kind == "numpy" else ()
    params = {"direction": direction, "type": kind, "bytes": size}
    limit = min(SUBMIT_MAX_CALLS, MEMORY // (copies * size))
    if direction == "out":
        return params, "produce", {"kind": kind}, {"kind": "const", "value": size}, \
            (2e-6 if needs else 0.3e-6) + 0.04e-9 * size, limit, needs
    blobs = {"kind": "blob", "type": kind, "size": size}
    if direction == "both":
        return params, "transform", {}, blobs, (2e-6 if needs else 0.3e-6) + (
            0.07e-9 if needs else 0.3e-9) * size, limit, needs
    how = rng.choice(("count", "crc32"))
    per_byte = 0.2e-9 if how == "crc32" else 0.0 if kind == "numpy" else 0.32e-9
    return {**params, "reads": how}, "consume", {"how": how}, blobs, \
        (2e-6 if needs else 0.3e-6) + per_byte * size, limit, needs


def varying(rng: random.Random, scale: Scale) -> Draw:
    """Costs that change with the argument, by up to 100x: spread log-uniformly, or a
    bimodal mix of small and large items; of a loop, a sleep or a regex (whose arguments
    grow with the cost, so they fall into different argument-size buckets)."""
    base = rng.choice(("loop", "sleep", "regex"))
    shape = rng.choice(("spread", "bimodal"))
    ratio = _log_uniform(rng, 3, 100)
    low_s = _log_uniform(rng, 5e-6, 1e-3) if base != "sleep" else _log_uniform(rng, 1e-4, 5e-3)
    large = round(rng.uniform(0.05, 0.5), 2)
    mean_s = (low_s * (ratio - 1) / math.log(ratio) if shape == "spread"
              else low_s * (1 - large + large * ratio))
    unit = {"loop": 43e-9, "sleep": 1e-3, "regex": 22e-9}[base]
    items = {"kind": shape, "low": low_s / unit, "high": low_s * ratio / unit, "large": large,
             "as": {"loop": "int", "sleep": "float", "regex": "text"}[base], "seed": _seed(rng)}
    params = {"kind": base, "shape": shape, "low_us": round(low_s * 1e6, 1),
              "ratio": round(ratio, 1), **({"large": large} if shape == "bimodal" else {})}
    limit = MEMORY // (2 * round(low_s * ratio / unit)) if base == "regex" else MAX_CALLS
    return params, base, {}, items, mean_s + (70e-6 if base == "sleep" else 0.2e-6), limit, ()


FAMILIES: dict[str, Callable[[random.Random, Scale], Draw]] = {
    "py_cpu": py_cpu, "c_release": c_release, "sleep": sleep, "socket": socket_wait,
    "file": file_io, "subprocess": subprocess_run, "wait_compute": wait_compute,
    "large_args": large_args, "varying": varying,
}

# ------------------------------------------------------------------ the generator

HOMES = (("module", 0.5), ("main", 0.25), ("closure", 0.25))
STDLIB_IMPORTS = ("urllib.request", "email.mime.multipart", "decimal", "xml.etree.ElementTree",
                  "asyncio")


def _slow_import(rng: random.Random) -> dict[str, Any]:
    """What importing a workload's module costs: nothing much, building a table for 50 to
    300 ms, heavy standard-library modules, or NumPy (when installed)."""
    kind = rng.choices(("none", "table", "stdlib", "numpy"), (0.4, 0.2, 0.3, 0.1))[0]
    if kind == "table":
        return {"kind": kind, "ms": round(_log_uniform(rng, 50, 300))}
    if kind == "stdlib":
        return {"kind": kind, "modules": sorted(rng.sample(STDLIB_IMPORTS, rng.randint(1, 4)))}
    return {"kind": kind}


def _draw(family: str, rng: random.Random, scale: Scale) -> Workload:
    params, kernel, args, items, cost, limit, needs = FAMILIES[family](rng, scale)
    target = _log_uniform(rng, *scale.seconds)
    calls = max(MIN_CALLS, min(MAX_CALLS, limit, round(target / cost)))
    mode = "submit" if calls <= SUBMIT_MAX_CALLS and rng.random() < 0.5 else "map"
    home = rng.choices([h for h, _ in HOMES], [p for _, p in HOMES])[0]
    slow = _slow_import(rng) if home != "main" else {"kind": "none"}
    body = {"family": family, "params": params, "kernel": kernel, "args": args, "items": items,
            "calls": calls, "mode": mode, "home": home, "slow_import": slow}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return Workload(id=f"{family}-{digest[:4]}", nominal_s=round(calls * cost, 4),
                    needs=needs, **body)


def generate(seed: int, count: int, families: list[str] | None = None,
             scale: Scale = DEFAULT) -> list[Workload]:
    """About ``count`` workloads (at least one per family and half): the same number of
    each family in each half, in an order that takes the families in turn."""
    names = families or list(FAMILIES)
    unknown = set(names) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown families: {', '.join(sorted(unknown))}")
    share = max(1, math.ceil(count / (2 * len(names))))
    per_family = []
    for family in names:
        rng = random.Random(f"{seed}/{family}")
        chosen: dict[str, list[Workload]] = {"tune": [], "heldout": []}
        seen: set[str] = set()
        while min(len(v) for v in chosen.values()) < share:
            workload = _draw(family, rng, scale)
            side = chosen[half(workload)]
            if workload.id not in seen and len(side) < share:
                side.append(workload)
            seen.add(workload.id)
        per_family.append([w for pair in zip(chosen["tune"], chosen["heldout"], strict=True)
                           for w in pair])
    return [w for group in zip(*per_family, strict=True) for w in group]
