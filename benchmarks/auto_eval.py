"""The auto lane on generated workloads, tuned on one half and reported on the other.

Workloads come from parameterised families (``_eval_families``): pure-Python CPU, C
work that releases the GIL, sleeps, socket waits, files, subprocesses, waiting mixed with
computing, large arguments and results, costs that change with the argument; defined in
modules (some slow to import), in ``__main__`` or as closures. A seeded generator draws
them and a hash of each id splits them into a ``tune`` half and a ``heldout`` half. Change
the auto lane looking at the tune half only; the held-out half is what BENCHMARKS.md
reports and what the targets are checked on.

Each workload runs in a fresh process (``_eval_child``), as a user's script does: that is
the only way for the auto lane to start from nothing, for ``__main__`` to be ``__main__``
and for imports to be cold. There it is timed as a plain sequential loop, on every fixed
lane (the hybrid lane at concurrencies 4, 16 and 64) and on the auto lane with stored
profiles off, each timing on a new executor; then the auto lane again, each run in a new
process that finds the profiles one earlier run stored. ``--busy`` runs the held-out
half again while another process keeps one core busy.

``python benchmarks/auto_eval.py [--seed N] [--count N] [--half tune|heldout|both]
[--quick] [--runs N] [--busy] [--only ID,...] [--family NAME,...] [--json out.json]``
prints the report; ``run.py`` puts it in BENCHMARKS.md with the targets.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _eval_homes  # noqa: E402
from _eval_child import FIXED, RESULT  # noqa: E402
from _eval_families import DEFAULT, FAMILIES, QUICK, generate, half  # noqa: E402
from _eval_report import render, summary, targets  # noqa: E402
from _harness import busy_core  # noqa: E402
from _http import serve  # noqa: E402

SEED = 15
COUNT = 54  # workloads, both halves: three of each family in each half
QUICK_COUNT = 18
TIMEOUT_S = 90.0  # per measuring process: past it the workload is reported as failed
__all__ = ["measure", "render", "summary", "targets"]


def _run_child(script: str, spec_path: str, mode: str, runs: int, env: dict[str, str],
               timeout: float) -> dict[str, Any]:
    """Runs one measuring process; its result, or RuntimeError with why it has none. On a
    timeout its whole process group is killed (the workers die with it)."""
    proc = subprocess.Popen([sys.executable, script, spec_path, mode, str(runs)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError(f"no result within {timeout:.0f} s") from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for line in out.splitlines():
        if line.startswith(RESULT) and proc.returncode == 0:
            return json.loads(line[len(RESULT):])
    tail = err.strip().splitlines()[-1:] or [f"exit status {proc.returncode}, no result"]
    raise RuntimeError(tail[0])


def measure_one(workload: dict[str, Any], runs: int, http: str | None, stored: bool,
                timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """One workload's row: every lane's best time, the auto lane's from nothing and, if
    ``stored``, with the profiles of one earlier run; ``error`` if it failed."""
    row = {key: workload[key] for key in ("id", "family", "params", "calls", "mode", "home",
                                          "slow_import")}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="auto_eval-") as tmp:
        spec = os.path.join(tmp, "workload.json")
        with open(spec, "w") as f:
            json.dump(workload, f)
        script = _eval_homes.write(workload, tmp)
        env = {**os.environ, "PYTHONPATH": _eval_homes.python_path(tmp),
               "MULTILANE_PROFILES": "off", **({"AUTO_EVAL_HTTP": http} if http else {})}
        try:
            result = _run_child(script, spec, "lanes", runs, env, timeout)
            times = result["times"]
            best_lane = min(FIXED, key=times.__getitem__)
            row.update(sequential=times["sequential"], times={k: times[k] for k in FIXED},
                       best_lane=best_lane, best=times[best_lane], auto=times["auto"],
                       auto_lanes=result["auto_lanes"], explain=result["explain"],
                       import_s=result["import_s"])
            if stored:
                row.update(_stored(script, spec, runs, env, tmp, timeout))
        except RuntimeError as error:
            row["error"] = str(error)
    row["wall_s"] = time.monotonic() - started
    return row


def _stored(script: str, spec: str, runs: int, env: dict[str, str], tmp: str,
            timeout: float) -> dict[str, Any]:
    """The auto lane's best time with stored profiles: one untimed run stores them, then
    each timed run is a new process with a copy of that store."""
    env = {key: value for key, value in env.items() if key != "MULTILANE_PROFILES"}
    learned = os.path.join(tmp, "profiles")
    os.mkdir(learned)
    _run_child(script, spec, "auto", 1, {**env, "MULTILANE_CACHE_DIR": learned}, timeout)
    best: dict[str, Any] = {}
    for run in range(runs):
        cache = os.path.join(tmp, f"profiles-{run}")
        shutil.copytree(learned, cache)
        result = _run_child(script, spec, "auto", 1, {**env, "MULTILANE_CACHE_DIR": cache},
                            timeout)
        if result["times"]["auto"] < best.get("stored", float("inf")):
            best = {"stored": result["times"]["auto"], "stored_lanes": result["auto_lanes"]}
    return best


def measure(quick: bool = False, runs: int | None = None, busy: bool = False,
            seed: int = SEED, count: int | None = None, halves: tuple[str, ...] = (
                "tune", "heldout"), only: set[str] | None = None,
            families: list[str] | None = None, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Generates the workloads and measures the chosen halves (then, if ``busy``, the
    held-out half again, or the tune half when it is the only one chosen, beside a busy
    core): the results ``targets`` and ``render`` read."""
    runs = runs or (1 if quick else 3)
    count = count or (QUICK_COUNT if quick else COUNT)
    workloads = [w for w in generate(seed, count, families, QUICK if quick else DEFAULT)
                 if half(w) in halves and (not only or w.id in only)]
    missing = set() if importlib.util.find_spec("numpy") else {"numpy"}
    results: dict[str, Any] = {"seed": seed, "count": count, "runs": runs, "quick": quick,
                               "halves": {name: [] for name in halves}, "busy": None,
                               "skipped": [w.id for w in workloads if missing & set(w.needs)]}
    workloads = [w for w in workloads if not missing & set(w.needs)]
    again = "heldout" if "heldout" in halves else "tune"
    needs_http = any("http" in w.needs for w in workloads)
    with serve(0.0) if needs_http else contextlib.nullcontext() as http:
        for w in workloads:
            results["halves"][half(w)].append(_measured(w, runs, http, True, timeout, ""))
        if busy:
            with busy_core():
                results["busy"] = [_measured(w, runs, http, False, timeout, " (busy core)")
                                   for w in workloads if half(w) == again]
            results["busy_half"] = again
    return results


def _measured(w: Any, runs: int, http: str | None, stored: bool, timeout: float,
              note: str) -> dict[str, Any]:
    row = measure_one(w.to_json(), runs, http, stored, timeout)
    row["half"] = half(w)
    if "error" in row:
        shown = f"FAILED: {row['error']}"
    else:
        shown = (f"sequential {row['sequential']:.4f} s, best {row['best_lane']} "
                 f"{row['best']:.4f} s, auto {row['auto']:.4f} s "
                 f"({row['auto'] / row['best']:.2f}x, {', '.join(row['auto_lanes'])})")
    print(f"  auto_eval/{row['half']}/{w.id}{note}: {shown} [{row['wall_s']:.1f} s]",
          file=sys.stderr, flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--count", type=int, help=f"about this many workloads in all "
                        f"(default {COUNT}; {QUICK_COUNT} with --quick)")
    parser.add_argument("--half", choices=("tune", "heldout", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--runs", type=int, help="rounds per lane (default 3; 1 with --quick)")
    parser.add_argument("--busy", action="store_true",
                        help="the held-out half again, beside a busy core")
    parser.add_argument("--only", help="comma-separated workload ids")
    parser.add_argument("--family", help=f"comma-separated: {', '.join(FAMILIES)}")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S,
                        help="seconds per measuring process")
    parser.add_argument("--json", help="write every result to this file")
    args = parser.parse_args(argv)
    halves = ("tune", "heldout") if args.half == "both" else (args.half,)
    started = time.monotonic()
    results = measure(args.quick, args.runs, args.busy, args.seed, args.count, halves,
                      set(args.only.split(",")) if args.only else None,
                      args.family.split(",") if args.family else None, args.timeout)
    results["wall_s"] = time.monotonic() - started
    print("\n".join(render(results, console=args.half == "tune")))
    for name, measured, met in targets(results):
        print(f"{name}: {measured} {'PASS' if met else 'MISS'}")
    print(f"({results['wall_s']:.0f} s)", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
