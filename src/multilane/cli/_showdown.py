"""``multilane showdown``: the article's experiments, measured on this machine.

Runs the four experiments of ``_experiments`` (computing, waiting, high-volume waiting,
mixed), best of a few runs with the contenders interleaved, and prints a table with a bar
and a sentence per row; ``--json`` prints the figures instead, ``--plot`` draws them.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, replace
from typing import Any

from .._cores import usable_cores
from ._experiments import CONTENDERS, Experiment, Sizes, Timing, experiments
from ._pageserver import raise_open_files_limit, serve
from ._work import countdown

FULL = Sizes(countdown=0, tasks=0, waits=100, wait_ms=20, many=2000, many_ms=100,
             pages=100, page_ms=20, page_bytes=64 * 1024, sample_s=1.0)
QUICK = replace(FULL, waits=40, many=1000, pages=40, sample_s=0.3)
COUNTDOWN_S = {False: 0.5, True: 0.1}  # seconds a countdown takes, full and --quick
SPARE_FILES = 256  # descriptors kept free beside the high-volume experiment's sockets
BAR = 30


class PlotUnavailable(RuntimeError):
    """``--plot`` was asked for and matplotlib is not installed."""


def run(*, quick: bool = False, n: int | None = None, tasks: int | None = None,
        workers: int | None = None, repeat: int | None = None, scale: float = 1.0,
        only: list[str] | None = None, as_json: bool = False, plot: str | None = None) -> int:
    if plot is not None:
        _check_matplotlib()  # before minutes of measuring, not after
    workers = workers or usable_cores()
    repeat = repeat or (1 if quick else 3)
    sizes = _sizes(quick, n, tasks, workers, scale)
    started = time.perf_counter()
    with serve(page_bytes=sizes.page_bytes) as base_url:
        chosen = [e for e in experiments(sizes, base_url, workers)
                  if only is None or e.key in only]
        results = [(e, _best_of(e, repeat)) for e in chosen]
    figures = _figures(results, sizes, workers, repeat, time.perf_counter() - started)
    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        _print_table(figures)
    if plot is not None:
        from ._plot import plot as draw

        draw(figures, plot)
        if not as_json:
            print(f"\nplot written to {plot}")
    return 0


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401 -- only whether it is there
    except ImportError:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'multilane[plot]'") \
            from None


def _sizes(quick: bool, n: int | None, tasks: int | None, workers: int,
           scale: float) -> Sizes:
    base = QUICK if quick else FULL
    open_files = raise_open_files_limit()

    def scaled(count: int) -> int:
        return max(1, round(count * scale))

    return replace(base, countdown=n or _calibrate(COUNTDOWN_S[quick] * scale),
                   tasks=tasks or 2 * workers, waits=scaled(base.waits),
                   many=min(scaled(base.many), max(1, open_files - SPARE_FILES)),
                   pages=scaled(base.pages))


def _calibrate(target_s: float) -> int:
    """A countdown length that takes about ``target_s`` on this machine."""
    n, best = 300_000, float("inf")
    for _ in range(3):  # the best of three: the first run is often the slowest
        start = time.perf_counter()
        countdown(n)
        best = min(best, time.perf_counter() - start)
    return max(1_000, int(n * target_s / max(best, 1e-6)))


def _best_of(experiment: Experiment, repeat: int) -> dict[str, Timing]:
    """Each contender's best run of ``repeat``, contenders interleaved: a shared machine
    drifts, and the best run is the one the rest of the machine disturbed least."""
    best: dict[str, Timing] = {}
    experiment.prepare()
    for _ in range(repeat):
        for name, contender in experiment.contenders.items():
            timing = contender()
            if name not in best or timing.total < best[name].total:
                best[name] = timing
    return best


def _figures(results: list[tuple[Experiment, dict[str, Timing]]], sizes: Sizes,
             workers: int, repeat: int, elapsed: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "machine": {"cpus": usable_cores(), "workers": workers, "python":
                    platform.python_version(), "implementation": sys.implementation.name},
        "sizes": asdict(sizes), "repeat": repeat, "seconds": elapsed, "experiments": {}}
    for experiment, timings in results:
        why = experiment.explain(timings)
        base = timings["sequential"].total
        rows = {}
        for name in CONTENDERS:
            timing = timings.get(name)
            rows[name] = {"why": why[name]} if timing is None else {
                "seconds": timing.total, "speedup": base / timing.total,
                "estimated": timing.share < 1, "why": why[name], **timing.details}
        out["experiments"][experiment.key] = {"title": experiment.title,
                                              "what": experiment.what, "rows": rows}
    return out


def _print_table(figures: dict[str, Any]) -> None:
    m = figures["machine"]
    print(f"The showdown on this machine: {m['cpus']} CPUs, {m['workers']} workers, Python "
          f"{m['python']}, best of {figures['repeat']} "
          f"{'run' if figures['repeat'] == 1 else 'runs'}; pools include their start-up.")
    block = "\u2588" if (sys.stdout.encoding or "").lower().startswith("utf") else "#"
    estimated = False
    for number, experiment in enumerate(figures["experiments"].values(), 1):
        print(f"\n{number}. {experiment['title']}: {experiment['what']}")
        rows = experiment["rows"]
        longest = max(r["seconds"] for r in rows.values() if "seconds" in r)
        fastest = min(r["seconds"] for r in rows.values() if "seconds" in r)
        for name, row in rows.items():
            if "seconds" not in row:
                print(f"   {name:<11} {'-':>8} {'':>7}  {'':<{BAR}}  {row['why']}")
                continue
            mark = "~" if row["estimated"] else " "
            estimated |= row["estimated"]
            bar = block * max(1, round(BAR * row["seconds"] / longest))
            best = " <- fastest" if row["seconds"] == fastest else ""
            print(f"   {name:<11} {mark}{_seconds(row['seconds']):>7} "
                  f"{row['speedup']:>6.1f}x  {bar:<{BAR}}{best}")
            print(f"   {'':<11} {'':>8} {'':>7}  {row['why']}")
    print("\nShorter bars are faster; the speedups are over sequential code.")
    if estimated:
        print("~ timed on a sample of the requests and scaled up: every request waits the "
              "same, and all of them would take minutes.")
    print(f"({figures['seconds']:.0f} s in all.)")


def _seconds(s: float) -> str:
    return f"{s:.2f}s" if s < 100 else f"{s:.0f}s"
