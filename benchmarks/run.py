"""Runs every scenario against its peers (best of several runs) and writes BENCHMARKS.md.

Each scenario is a folder with one file per competitor exposing ``run(n, runs) -> float``.
Figures are ratios against peers measured in the same run; targets are checked from the
measured numbers, never typed in.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _harness import have, machine  # noqa: E402

ARRAY_PEERS = ["multilane", "multilane_shared", "multilane_zero_copy", "stdlib", "loky", "joblib",
               "shared_memory", "ray"]
# scenario: (unit, higher is better, n, quick n, competitors in display order)
SCENARIOS = {
    "roundtrip": ("µs per task", False, 5000, 500,
                  ["multilane", "floor", "stdlib", "mp_pool_apply", "loky"]),
    "pipelined_submit": ("tasks/s", True, 100_000, 10_000, ["multilane", "stdlib", "loky"]),
    "map": ("s for the map", False, 1_000_000, 50_000,
            ["multilane", "multilane_buffered", "mp_pool", "stdlib", "joblib", "mpire"]),
    "cpu_scaling": ("s for 4 countdowns", False, 10**7, 10**5,
                    ["sequential", "bare_fork", "multilane"]),
    "startup": ("s until ready", False, 1, 1, ["multilane", "stdlib"]),
    "io_requests": ("requests/s", True, 10_000, 500,
                    ["multilane_async", "multilane_thread", "asyncio_aiohttp", "threadpool",
                     "sequential"]),
    "thread_overhead": ("µs per call", False, 100_000, 10_000, ["multilane", "threadpool"]),
    "pipeline": ("items/s", True, 300_000, 10_000, ["multilane"]),
    "progress": ("s for the map", False, 100_000, 10_000,
                 ["multilane", "multilane_progress"]),
    "joblib_parallel": ("s for Parallel", False, 10_000, 1_000,
                        ["multilane_backend", "loky_backend"]),
    # fetch (20 ms) -> parse (~4.5 ms of Python) -> write, as the article's pipeline
    "pipeline_article": ("pages/s", True, 800, 40, ["multilane", "handwritten"]),
    # 800 pages: long enough that a round's start and tail do not dominate (at 400 they
    # cost ~10% of the hybrid lane's time, which alone uses both cores).
    "hybrid": ("pages/s", True, 800, 40,
               ["multilane_hybrid", "threads", "processes", "asyncio_only"]),
    # n MB of float64 to one task (and back, for array_double)
    "array_sum": ("ms per call", False, 256, 8, [*ARRAY_PEERS, "joblib_multilane"]),
    "array_double": ("ms per call", False, 256, 8, ARRAY_PEERS),
    "array_memory": ("MB peak extra", False, 1024, 16,
                     [who for who in ARRAY_PEERS if who != "shared_memory"]),
}
PEER_MODULES = {"loky": "loky", "joblib": "joblib", "mpire": "mpire",
                "joblib_multilane": "joblib", "multilane_backend": "joblib",
                "loky_backend": "joblib",
                "asyncio_aiohttp": "aiohttp", "multilane_async": "aiohttp",
                "asyncio_only": "aiohttp", "ray": "ray"}
QUICK_SKIP = {"ray"}  # seconds to start and stop: not for a smoke test


ROUNDS = 3  # the competitors take turns, this many times each (see ``measure``)


def measure(scenario: str, n: int, runs: int, quick: bool = False) -> dict[str, float | None]:
    """Each competitor's figure: None if its library is not installed, NaN if it failed.

    The competitors take turns, ``ROUNDS`` times (``runs`` timed runs in all, each turn
    the best of its share), and each keeps its best turn: a spell of a shared machine
    running slow then lands on every competitor, not on one. Run one after another, a
    thread-pool target flipped between 0.84x and 1.44x on the same code."""
    higher_better = SCENARIOS[scenario][1]
    rounds, share = turns(runs, quick)
    results: dict[str, float | None] = {}
    for turn in range(rounds):
        for competitor in SCENARIOS[scenario][4]:
            if quick and competitor in QUICK_SKIP:
                continue
            if competitor in PEER_MODULES and not have(PEER_MODULES[competitor]):
                results[competitor] = None
                continue
            module = importlib.import_module(f"{scenario}.{competitor}")
            print(f"  {scenario}/{competitor} ({turn + 1}/{rounds}) ...", file=sys.stderr,
                  flush=True)
            results[competitor] = better(results.get(competitor), module.run(n, share),
                                         higher_better)
    return results


def turns(runs: int, quick: bool = False) -> tuple[int, int]:
    """(turns each competitor takes, timed runs in each) for ``runs`` runs in all: at
    least ``runs``, a turn's share rounded up (5 runs: 3 turns of 2)."""
    rounds = 1 if quick else max(1, min(ROUNDS, runs))
    return rounds, math.ceil(runs / rounds)


def better(best: float | None, value: float, higher_better: bool) -> float:
    """The better of a competitor's figures so far and a new one (NaN: failed, only if
    every turn failed)."""
    if best is None or math.isnan(best):
        return value
    if math.isnan(value):
        return best
    return max(best, value) if higher_better else min(best, value)


def targets(all_results: dict[str, dict[str, float | None]],
            quick: bool = False) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each of the issue's targets that was measured."""
    out = []

    def get(scenario: str, who: str) -> float | None:
        value = all_results.get(scenario, {}).get(who)
        return None if value is None or math.isnan(value) else value

    rt, rt_std, rt_pool = get("roundtrip", "multilane"), get("roundtrip", "stdlib"), get(
        "roundtrip", "mp_pool_apply")
    if rt and rt_std and rt_pool:
        out.append(("round trip >= 10x faster than stdlib", f"{rt_std / rt:.1f}x",
                    rt_std / rt >= 10))
        out.append(("round trip faster than Pool.apply", f"{rt_pool / rt:.1f}x", rt < rt_pool))
    ps, ps_std = get("pipelined_submit", "multilane"), get("pipelined_submit", "stdlib")
    if ps and ps_std:
        out.append(("pipelined submit >= 8x stdlib tasks/s", f"{ps / ps_std:.1f}x",
                    ps / ps_std >= 8))
    mp, mp_pool, mp_std = get("map", "multilane"), get("map", "mp_pool"), get("map", "stdlib")
    if mp and mp_pool and mp_std:
        out.append(("map at least as fast as Pool.map", f"{mp_pool / mp:.2f}x", mp <= mp_pool))
        out.append(("map >= 10x stdlib map (chunksize=1)", f"{mp_std / mp:.0f}x",
                    mp_std / mp >= 10))
    ours, loky = get("joblib_parallel", "multilane_backend"), get("joblib_parallel",
                                                                   "loky_backend")
    if ours and loky:
        out.append(("joblib Parallel of 10,000 tiny calls: multilane backend >= 5x loky",
                    f"{loky / ours:.1f}x", loky >= 5 * ours))
    ours, theirs = get("array_sum", "joblib_multilane"), get("array_sum", "joblib")
    if ours and theirs:
        out.append(("joblib Parallel, 256 MB argument: multilane backend >= 5x joblib's "
                    "memmapping", f"{theirs / ours:.1f}x", theirs >= 5 * ours))
    plain, with_bar = get("progress", "multilane"), get("progress", "multilane_progress")
    if plain and with_bar:
        out.append(("progress=True adds under 2% to a 10^5-item map",
                    f"{with_bar / plain - 1:+.1%}", with_bar <= 1.02 * plain))
    buffered = get("map", "multilane_buffered")
    if mp and buffered:
        out.append(("map with buffersize=10,000 within 1.5x of the unbounded map",
                    f"{buffered / mp:.2f}x", buffered <= 1.5 * mp))
    pl = get("pipeline", "multilane")
    if pl:
        out.append(("3-stage pipeline of tiny functions >= 100,000 items/s", f"{pl:,.0f}/s",
                    pl >= 100_000))
    pa, pa_hand = get("pipeline_article", "multilane"), get("pipeline_article", "handwritten")
    if pa and pa_hand:
        out.append(("fetch -> parse -> write Pipeline within 10% of asyncio + "
                    "ProcessPoolExecutor + threads by hand", f"{pa / pa_hand:.2f}x",
                    pa >= 0.9 * pa_hand))
    cs, cs_fork = get("cpu_scaling", "multilane"), get("cpu_scaling", "bare_fork")
    if cs and cs_fork:
        out.append(("countdown x 4 within 5% of bare fork", f"{(cs / cs_fork - 1) * 100:+.1f}%",
                    cs <= cs_fork * 1.05))
    su = get("startup", "multilane")
    if su:
        out.append(("pool of 2 ready in < 150 ms", f"{su * 1000:.0f} ms", su < 0.150))
    io_async = get("io_requests", "multilane_async")
    io_aiohttp = get("io_requests", "asyncio_aiohttp")
    if io_async and io_aiohttp:
        out.append(("async lane >= 0.8x asyncio + aiohttp", f"{io_async / io_aiohttp:.2f}x",
                    io_async / io_aiohttp >= 0.8))
    io_thread, io_pool = get("io_requests", "multilane_thread"), get("io_requests", "threadpool")
    if io_thread and io_pool:
        out.append(("thread lane >= ThreadPoolExecutor(64)", f"{io_thread / io_pool:.2f}x",
                    io_thread >= io_pool))
    th, th_pool = get("thread_overhead", "multilane"), get("thread_overhead", "threadpool")
    if th and th_pool:
        out.append(("thread lane per tiny call <= ThreadPoolExecutor's", f"{th_pool / th:.2f}x",
                    th <= th_pool))
    hy = get("hybrid", "multilane_hybrid")
    singles = [get("hybrid", who) for who in ("threads", "processes", "asyncio_only")]
    if hy and all(singles):
        best = max(singles)
        out.append(("hybrid >= 1.6x the best single model", f"{hy / best:.2f}x",
                    hy / best >= 1.6))
    for scenario, what in (("array_sum", "to a task"), ("array_double", "to a task and back")):
        ours, std = get(scenario, "multilane"), get(scenario, "stdlib")
        if ours and std:
            out.append((f"256 MB {what} >= 10x faster than stdlib", f"{std / ours:.1f}x",
                        std / ours >= 10))
        peers = [(value, who) for who in ("loky", "joblib", "shared_memory", "ray")
                 if (value := get(scenario, who))]
        # The plain array (NumPy's allocator: one copy, as Ray's put), and one made under
        # multilane.zero_copy() (no copy at all).
        for who, how in (("multilane", ""), ("multilane_zero_copy", " (made under zero_copy)")):
            mine = get(scenario, who)
            if mine and peers:
                fastest, peer = min(peers)
                out.append((f"256 MB {what}{how}: faster than every other peer",
                            f"{fastest / mine:.2f}x ({peer}, the closest)", fastest > mine))
    size = SCENARIOS["array_memory"][3 if quick else 2]
    for who, name in (("multilane_shared", "placed with multilane.shared"),
                      ("multilane_zero_copy", "made under multilane.zero_copy()")):
        mb = get("array_memory", who)
        if mb is not None:
            out.append((f"1 GB argument {name}: peak extra memory < 10% of the array",
                        f"{mb:.0f} MB ({mb / size:.0%})", mb < 0.1 * size))
    return out


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "not installed"
    if math.isnan(value):
        return "failed"
    if unit.endswith("/s"):  # a rate
        return f"{value:,.0f}"
    return f"{value:.1f}" if unit.startswith(("µs", "ms", "MB")) else f"{value:.3f}"


# Not competitor scenarios: each has its own tables and targets.
EXTRAS = ("soak", "auto_eval", "overhead_matrix", "latency", "cpu_cost")
PLOT = os.path.join("docs", "overhead_matrix.png")  # beside the output, as the README links it


def run_extras(names: list[str], quick: bool, runs: int) -> dict[str, object]:
    out: dict[str, object] = {}
    if "soak" in names:
        import soak

        print("  soak ...", file=sys.stderr, flush=True)
        out["soak"] = soak.run(20_000 if quick else 1_000_000, 20 if quick else 1_000)
    if "overhead_matrix" in names:
        import overhead_matrix

        out["overhead_matrix"] = overhead_matrix.measure(quick, 1 if quick else min(runs, 3))
    if "latency" in names:
        import latency

        print("  latency ...", file=sys.stderr, flush=True)
        out["latency"] = latency.measure(quick)
    if "cpu_cost" in names:
        import cpu_cost

        print("  cpu_cost ...", file=sys.stderr, flush=True)
        out["cpu_cost"] = cpu_cost.measure(quick, 1 if quick else min(runs, 3))
    if "auto_eval" in names:
        import auto_eval

        print("  auto_eval ...", file=sys.stderr, flush=True)
        out["auto_eval"] = auto_eval.measure(quick, 1 if quick else min(runs, 3),
                                             busy=not quick)
    return out


def soak_targets(figures: dict) -> list[tuple[str, str, bool]]:
    start, *later = figures.values()
    out = []
    for metric, limit in (("descriptors", 0), ("threads", 0), ("child processes", 0),
                          ("resident MB", 20)):
        growth = max(f[metric] for f in later) - start[metric]
        shown = f"{growth:+.1f}" if isinstance(growth, float) else f"{growth:+d}"
        out.append((f"soak: {metric} grow by at most {limit}", shown, growth <= limit))
    return out


def render_soak(figures: dict) -> list[str]:
    metrics = list(next(iter(figures.values())))
    lines = ["## soak", "", "This process, after a warm-up, after a million tiny tasks and "
             "after a thousand executors created, used and shut down:", "",
             "| | " + " | ".join(figures) + " |", "| --- " * (len(figures) + 1) + "|"]
    for metric in metrics:
        lines.append(f"| {metric} | " + " | ".join(f"{f[metric]:g}" if isinstance(
            f[metric], int) else f"{f[metric]:.1f}" for f in figures.values()) + " |")
    return lines + [""]


def render(all_results, info, runs: int, quick: bool, extras: dict | None = None,
           plot_path: str | None = None) -> str:
    """BENCHMARKS.md's text; ``plot_path`` is the overhead matrix's plot, if drawn."""
    extras = extras or {}
    rounds, share = turns(runs, quick)
    lines = ["# Benchmarks", "",
             "Written by `make bench` (`benchmarks/run.py`). Every figure is the best of "
             f"{rounds * share} runs; ratios compare competitors measured in the same run, "
             f"the competitors of a scenario taking turns ({rounds} turns of {share} runs "
             "each).", "",
             f"- machine: {info['cpu']}, {info['cores']} cores, {info['memory']}",
             f"- Python {info['python']}, {info['os']}",
             f"- date: {info['date']}",
             f"- packages: {info['packages']}",
             *([f"- **quick mode**: small sizes, for a smoke test only (skipped: "
                f"{', '.join(sorted(QUICK_SKIP))})"] if quick else []), ""]
    lines += ["## Targets", "", "| target | measured | |", "| --- | --- | --- |"]
    extra_targets = []
    if "soak" in extras:
        extra_targets += soak_targets(extras["soak"])
    if "overhead_matrix" in extras:
        import overhead_matrix

        extra_targets += overhead_matrix.targets(extras["overhead_matrix"])
    if "latency" in extras:
        import latency

        extra_targets += latency.targets(extras["latency"])
    if "auto_eval" in extras:
        import auto_eval

        extra_targets += auto_eval.targets(extras["auto_eval"])
    for name, measured, met in targets(all_results, quick) + extra_targets:
        lines.append(f"| {name} | {measured} | {'PASS' if met else 'MISS'} |")
    lines.append("")
    for scenario, results in all_results.items():
        unit, higher_better = SCENARIOS[scenario][0], SCENARIOS[scenario][1]
        better, worse = ("less", "more") if unit.startswith("MB") else ("faster", "slower")
        # the first multilane competitor against every peer
        name = next((who for who in results if who.startswith("multilane")), "multilane")
        ours = results.get(name)
        lines += [f"## {scenario}", "", f"| competitor | {unit} | {name} vs it |",
                  "| --- | --- | --- |"]
        for who, value in results.items():
            ratio = ""
            peer = not who.startswith("multilane") and who != "floor"  # floor: not a peer
            if ours and value and peer and not math.isnan(value):
                r = ours / value if higher_better else value / ours
                ratio = f"{r:.2f}x {better if r >= 1 else worse}"
            lines.append(f"| {who} | {fmt(value, unit)} | {ratio} |")
        lines.append("")
    if "soak" in extras:
        lines += render_soak(extras["soak"])
    if "overhead_matrix" in extras:
        import overhead_matrix

        lines += overhead_matrix.render(extras["overhead_matrix"], plot_path)
    if "latency" in extras:
        import latency

        lines += latency.render(extras["latency"])
    if "cpu_cost" in extras:
        import cpu_cost

        lines += cpu_cost.render(extras["cpu_cost"])
    if "auto_eval" in extras:
        import auto_eval

        lines += auto_eval.render(extras["auto_eval"])
    floor, rt = all_results.get("roundtrip", {}).get("floor"), all_results.get(
        "roundtrip", {}).get("multilane")
    if floor and rt:
        lines += [f"Round-trip floor: `roundtrip/floor` ({floor:.1f} µs) is the Python work a "
                  "round trip cannot avoid (a future, pickling both ways, the call), done in "
                  f"one thread. multilane's {rt:.1f} µs is {rt / floor:.1f}x that: the rest is "
                  "two interpreters handing the frame over (ring copies, the worker's loop, the "
                  "caller draining the reply). No futex wake-up is on the path while both "
                  "sides spin (the worker 10 µs, the caller 150 µs).", ""]
    lines += ["Notes: the stdlib round trip, pipelined and map figures use fewer items (the "
              "per-item cost is what is compared; stdlib `map` with chunksize=1 is timed on "
              "n/50 items and joblib on n/10, both scaled). `cpu_scaling/bare_fork` is this "
              "machine's ceiling: two cores do not always give 2x on a shared VM. "
              "`io_requests/sequential` is timed on n/50 requests and `hybrid/processes` on "
              "n/4 pages (scaled); the I/O scenarios fetch from a local HTTP server "
              "(`_http.py`) in a process of its own, which shares the machine's cores. "
              "The array scenarios send n MB of float64 to one task (`array_double`: and get "
              "the doubled array back); `multilane_shared` placed it with `multilane.shared` "
              "once, untimed, as `ray.put` would; `multilane_zero_copy` made it under "
              "`multilane.zero_copy()`, so it lives in shared memory from the start and is "
              "never copied (its workers make their results that way too); every other "
              "competitor sends it with each "
              "call (joblib gets a new view each time: for the same array object it resends "
              "the file it dumped first, even if the array changed since). `array_memory` is "
              "the peak, over a baseline taken on a warm pool just before the call, of the PSS "
              "of the benchmark and all its descendants (a shared page counts once; a file in "
              "/dev/shm only while mapped); each run is on a fresh pool.", ""]
    return "\n".join(lines)


def draw_plot(extras: dict, info: dict[str, str], output: str) -> str | None:
    """The overhead matrix's plot in docs/ beside ``output``; its path relative to
    ``output``'s folder, or None when there is nothing to draw or no matplotlib."""
    if "overhead_matrix" not in extras:
        return None
    if not have("matplotlib"):
        print("*** matplotlib is not installed: no plot of the overhead matrix ***",
              file=sys.stderr)
        return None
    import overhead_matrix

    path = os.path.join(os.path.dirname(os.path.abspath(output)), PLOT)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    overhead_matrix.plot(extras["overhead_matrix"], path,
                         f"µs per task: {info['cpu']}, {info['cores']} cores, "
                         f"Python {info['python']}, {info['date']}")
    return PLOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, one run: a smoke test")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS) + list(EXTRAS),
                        help="run only these (the extras run by default unless "
                             "--quick or --scenario is given)")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--output", default=os.path.join(HERE, "..", "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)
    started = time.monotonic()
    all_results = {}
    chosen = args.scenario or list(SCENARIOS) + ([] if args.quick else list(EXTRAS))
    for scenario in chosen:
        if scenario in EXTRAS:
            continue
        n = SCENARIOS[scenario][3 if args.quick else 2]
        all_results[scenario] = measure(scenario, n, runs, args.quick)
    extras = run_extras([name for name in chosen if name in EXTRAS], args.quick, runs)
    info = machine()
    plot_path = draw_plot(extras, info, args.output)
    text = render(all_results, info, runs, args.quick, extras, plot_path)
    with open(args.output, "w") as f:
        f.write(text)
    print(text)
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
