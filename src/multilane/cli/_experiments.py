"""The showdown's four experiments, each run by every contender that applies.

Computing (countdowns), waiting (requests to a slow local server), high-volume waiting
(thousands of requests at once) and mixed work (fetch a page, then score it), each run
sequentially, on threads, on a process pool, with asyncio where it applies, and through
multilane's auto lane, which is given the functions and nothing else. A contender's time
includes starting and stopping its pool, as a program that uses it once pays it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._executor import Executor  # imported before any timing, as the pools' modules are
from .._pipeline import Pipeline
from ._pageserver import run_loop
from ._work import close_connections, countdown, fetch, fetch_and_score, fetch_async, score

CONTENDERS = ("sequential", "threads", "processes", "asyncio", "multilane")
THREADS = 32  # the standard ThreadPoolExecutor never starts more by default
SMALL_PAGE = 2048  # bytes of a page in the waiting experiments (the mixed one's are larger)
WARM_AT_ONCE = 64  # requests at once when the server builds its pages before the timing


@dataclass(frozen=True)
class Sizes:
    """How much work each experiment does."""

    countdown: int        # the length of one countdown
    tasks: int            # countdowns
    waits: int            # requests in the waiting experiment...
    wait_ms: float        # ...each answered after this delay
    many: int             # requests in the high-volume experiment
    many_ms: float
    pages: int            # pages fetched then scored
    page_ms: float
    page_bytes: int
    sample_s: float       # the most a contender that works one request at a time spends


@dataclass
class Timing:
    """One run of one contender: its time, the share of the work it ran (a contender too
    slow for all of it runs a sample), and what it saw."""

    seconds: float
    share: float = 1.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """The time for all the work (scaled up from a sample)."""
        return self.seconds / self.share


@dataclass
class Experiment:
    key: str
    title: str
    what: str
    contenders: dict[str, Callable[[], Timing]]
    explain: Callable[[dict[str, Timing]], dict[str, str]]
    # The experiment's pages, asked for with no delay: the server builds them before timing.
    warm: list[str] = field(default_factory=list)

    def prepare(self) -> None:
        """Has the server build every page the experiment asks for, untimed: its first
        answer of a page builds it (~3 ms for 64 KiB), which would slow whichever
        contender came first."""
        if not self.warm:
            return

        async def fetch_all() -> None:
            gate = asyncio.Semaphore(WARM_AT_ONCE)

            async def one(url: str) -> None:
                async with gate:
                    await fetch_async(url)

            await asyncio.gather(*(one(url) for url in self.warm))

        run_loop(fetch_all())


def experiments(sizes: Sizes, base_url: str, workers: int) -> list[Experiment]:
    return [_computing(sizes, workers), _waiting(sizes, base_url, workers),
            _many(sizes, base_url, workers), _mixed(sizes, base_url, workers)]


# ------------------------------------------------------------------ running a contender


def _timed(run: Callable[[], Any], share: float = 1.0) -> Timing:
    """Times ``run()``; a dict it returns is what it saw (any other result is the work's)."""
    start = time.perf_counter()
    try:
        seen = run()
    finally:
        close_connections()  # no keep-alive socket outlives a contender (or forks with one)
    return Timing(time.perf_counter() - start, share, seen if isinstance(seen, dict) else {})


def _sample(items: list[str], at_once: int, each_s: float, budget_s: float) -> list[str]:
    """The first items, as many as ``at_once`` lanes get through in about ``budget_s``
    when each takes ``each_s``: all of them if that is enough."""
    n = max(at_once, int(budget_s / max(each_s, 1e-6)) * at_once)
    return items[:n]


def _pool_map(fn: Callable[[Any], Any], items: list[Any], workers: int) -> dict[str, Any]:
    with cf.ProcessPoolExecutor(workers) as pool:
        list(pool.map(fn, items))
    return {"workers": workers}


def _thread_map(fn: Callable[[Any], Any], items: list[Any]) -> dict[str, Any]:
    with cf.ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(fn, items))
    return {"threads": THREADS}


def _auto(work: Callable[[Any], Any], *explained: Callable[..., Any]) -> dict[str, Any]:
    """Runs ``work(executor)`` on a new multilane executor that has learnt nothing (no
    profile kept from an earlier run); returns what the auto lane decided for each of
    ``explained``."""
    with Executor(profiles=False) as ex:
        work(ex)
        return {"auto": [_decision(ex.explain(fn)) for fn in explained]}


def _decision(explanation: Any) -> dict[str, Any]:
    """The auto lane's decision for a function: its busiest profile's lane and evidence."""
    name = explanation.function.split(".")[-1].removesuffix("()")
    if not explanation.profiles:
        return {"function": name, "lane": None, "calls": 0, "wall": None}
    p = max(explanation.profiles, key=lambda p: p["calls"])
    return {"function": name, "lane": p["lane"],
            "verdict": p["verdict"], "calls": p["calls"], "wall": p["solo_wall_s"],
            "cpu": p["solo_cpu_s"], "at_once": p["concurrency"], "spread": p["spread"],
            "lanes": {lane: calls for lane, (calls, _, _) in p["lanes"].items()}}


# ------------------------------------------------------------------ the experiments


def _computing(sizes: Sizes, workers: int) -> Experiment:
    n, tasks = sizes.countdown, sizes.tasks

    def threads() -> None:
        started = [threading.Thread(target=countdown, args=(n,)) for _ in range(tasks)]
        for t in started:
            t.start()
        for t in started:
            t.join()

    contenders = {
        "sequential": lambda: _timed(lambda: [countdown(n) for _ in range(tasks)]),
        "threads": lambda: _timed(threads),
        "processes": lambda: _timed(lambda: _pool_map(countdown, [n] * tasks, workers)),
        "multilane": lambda: _timed(lambda: _auto(
            lambda ex: list(ex.map(countdown, [n] * tasks)), countdown)),
    }
    return Experiment("computing", "Computing",
                      f"{tasks} x countdown({n:,}): pure Python, the GIL held throughout",
                      contenders, explain_computing)


def _pages(base_url: str, count: int, delay_ms: float, size: int = SMALL_PAGE) -> list[str]:
    return [f"{base_url}p/{i}?delay_ms={delay_ms:g}&bytes={size}" for i in range(count)]


def _waiting(sizes: Sizes, base_url: str, workers: int) -> Experiment:
    urls = _pages(base_url, sizes.waits, sizes.wait_ms)
    return Experiment("waiting", "Waiting",
                      f"{len(urls)} requests to a local server that answers each after "
                      f"{sizes.wait_ms:g} ms", _fetching(urls, sizes, workers, fetch),
                      explain_waiting, _pages(base_url, sizes.waits, 0))


def _many(sizes: Sizes, base_url: str, workers: int) -> Experiment:
    urls = _pages(base_url, sizes.many, sizes.many_ms)
    return Experiment("many", "High-volume waiting",
                      f"{len(urls):,} requests at once, each answered after "
                      f"{sizes.many_ms:g} ms (multilane given the async client)",
                      _fetching(urls, sizes, workers, fetch_async), explain_many,
                      _pages(base_url, sizes.many, 0))


def _fetching(urls: list[str], sizes: Sizes, workers: int,
              auto_fn: Callable[[str], Any]) -> dict[str, Callable[[], Timing]]:
    """The contenders of the two waiting experiments. Those that wait for one request at a
    time per lane run a sample when all of it would take long (every request waits the
    same, so the sample's time scales)."""
    each = (sizes.wait_ms if auto_fn is fetch else sizes.many_ms) / 1000

    def sampled(run: Callable[[list[str]], Any], at_once: int) -> Timing:
        sample = _sample(urls, at_once, each, sizes.sample_s)
        return _timed(lambda: run(sample), len(sample) / len(urls))

    async def gather() -> None:
        await asyncio.gather(*(fetch_async(url) for url in urls))

    return {
        "sequential": lambda: sampled(lambda items: [fetch(u) for u in items], 1),
        "threads": lambda: sampled(lambda items: _thread_map(fetch, items), THREADS),
        "processes": lambda: sampled(lambda items: _pool_map(fetch, items, workers), workers),
        "asyncio": lambda: _timed(lambda: run_loop(gather())),
        "multilane": lambda: _timed(lambda: _auto(
            lambda ex: list(ex.map(auto_fn, urls)), auto_fn)),
    }


def _mixed(sizes: Sizes, base_url: str, workers: int) -> Experiment:
    urls = _pages(base_url, sizes.pages, sizes.page_ms, sizes.page_bytes)

    async def hybrid() -> None:
        # The article's hybrid, by hand: asyncio fetches, a process pool scores.
        loop = asyncio.get_running_loop()
        with cf.ProcessPoolExecutor(workers) as pool:
            async def one(url: str) -> Any:
                return await loop.run_in_executor(pool, score, await fetch_async(url))
            await asyncio.gather(*(one(url) for url in urls))

    def pipeline(ex: Any) -> None:
        list(Pipeline(ex).map(fetch).map(score).run(urls))

    contenders = {
        "sequential": lambda: _timed(lambda: [score(fetch(u)) for u in urls]),
        "threads": lambda: _timed(lambda: _thread_map(fetch_and_score, urls)),
        "processes": lambda: _timed(lambda: _pool_map(fetch_and_score, urls, workers)),
        "asyncio": lambda: _timed(lambda: run_loop(hybrid())),
        "multilane": lambda: _timed(lambda: _auto(pipeline, fetch, score)),
    }
    return Experiment("mixed", "Mixed",
                      f"{len(urls)} pages of {sizes.page_bytes // 1024} KiB, each fetched "
                      f"({sizes.page_ms:g} ms) then scored in pure Python", contenders,
                      explain_mixed, _pages(base_url, sizes.pages, 0, sizes.page_bytes))


# ------------------------------------------------------------------ one sentence a row
# Each sentence is made from what was measured: the speedups, the auto lane's decisions.


def _speedups(t: dict[str, Timing]) -> dict[str, float]:
    base = t["sequential"].total
    return {name: base / timing.total for name, timing in t.items()}


def _auto_said(decision: dict[str, Any]) -> str:
    """What the auto lane saw of a function and where it sent the calls."""
    name, lane = decision["function"], decision["lane"]
    if lane is None:
        return (f"auto was still measuring {name} when its {decision['calls']} calls ended "
                "(too few to learn from and still gain)")
    seen = ""
    if decision["wall"]:
        cpu = decision["cpu"] or 0.0
        verdict = decision["verdict"].split(" (")[0]  # the words, without the figures
        seen = f" ({_ms(cpu)} of CPU in {_ms(decision['wall'])} a call: {verdict})"
    where = {"process": "to worker processes", "thread": "to threads",
             "async": "to its event loop", "inline": "to the calling thread"}.get(lane, lane)
    if lane == "thread" and decision["at_once"] > 1:
        where += f", {decision['at_once']} at once"
    if decision["spread"]:
        where += f", spread over {decision['spread']} processes"
    return f"auto sent {name} {where}{seen}"


def gil_enabled() -> bool:
    """Whether this interpreter runs with the GIL (a free-threaded 3.13+ build may not)."""
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_enabled is None else bool(is_enabled())


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def explain_computing(t: dict[str, Timing]) -> dict[str, str]:
    x = _speedups(t)
    workers = t["processes"].details["workers"]
    if gil_enabled():
        threads = "the GIL lets one thread count at a time: no faster than sequential"
        if x["threads"] > 1.1:
            threads += " (the difference is the machine's noise)"
    else:
        threads = "this Python has no GIL: the threads counted in parallel"
    return {
        "sequential": "one countdown after another on one core: the baseline",
        "threads": threads,
        "processes": f"{workers} processes, a GIL each: {x['processes']:.1f}x, "
                     "pool start-up included",
        "asyncio": "does not apply: there is nothing to wait for, and a coroutine counts "
                   "on the loop's one thread",
        "multilane": _auto_line(t["multilane"], x["multilane"]),
    }


def _sentences(templates: dict[str, str], prefix: str = "",
               ) -> Callable[[dict[str, Timing]], dict[str, str]]:
    """An experiment's sentences: ``templates`` filled in with the pool sizes, and the
    auto lane's decisions for multilane's row (after ``prefix``)."""
    def explain(t: dict[str, Timing]) -> dict[str, str]:
        facts = {"workers": t["processes"].details["workers"], "threads": THREADS}
        why = {name: text.format(**facts) for name, text in templates.items()}
        why["multilane"] = _auto_line(t["multilane"], _speedups(t)["multilane"], prefix)
        return why
    return explain


explain_waiting = _sentences({
    "sequential": "one request at a time: each wait adds up",
    "threads": "{threads} threads wait at once: waiting releases the GIL",
    "processes": "only {workers} processes, so {workers} requests at a time, and a pool to "
                 "start",
    "asyncio": "one thread, every request in flight at once",
})
explain_many = _sentences({
    "sequential": "one request at a time",
    "threads": "{threads} threads take the requests {threads} at a time",
    "processes": "{workers} requests at a time",
    "asyncio": "one event loop keeps every connection open at once, for little memory",
})
explain_mixed = _sentences({
    "sequential": "fetch, score, fetch, score...",
    "threads": "the fetches overlap, but the scoring holds the GIL: one page at a time",
    "processes": "{workers} processes score in parallel, but each waits for its own fetches",
    "asyncio": "the article's hybrid by hand: asyncio fetches, {workers} processes score",
}, prefix="a Pipeline of two stages; ")


def _auto_line(timing: Timing, speedup: float, prefix: str = "") -> str:
    said = "; ".join(_auto_said(d) for d in timing.details.get("auto", []))
    return f"{prefix}{said}" if said else f"{prefix}{speedup:.1f}x"
