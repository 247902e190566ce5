"""auto_eval's statistics, targets and Markdown, from the rows ``auto_eval.measure`` made.

A ratio is the auto lane's time over the best fixed lane's (the fastest of inline,
thread, process and hybrid at each concurrency, for that workload; never the sequential
loop, which is compared on its own). p50 and p90 are nearest-rank percentiles of the
ratios; total is the sum of the auto lane's times over the sum of the best lanes'.
"""

from __future__ import annotations

import math
from typing import Any

# The targets, on the held-out half: from nothing (no stored profiles), and with
# the profiles one earlier run stored.
TOTAL, P90, WORST, STORED_TOTAL = 1.15, 1.3, 2.0, 1.05
SEQUENTIAL_SLACK, SEQUENTIAL_FLOOR_S = 1.05, 100e-6


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def slower_than_sequential(row: dict[str, Any], key: str = "auto") -> bool:
    return row[key] > SEQUENTIAL_SLACK * row["sequential"] + SEQUENTIAL_FLOOR_S


def summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The figures of one half (None if no workload of it ran)."""
    done = [r for r in rows if "error" not in r]
    if not done:
        return None
    ratios = [r["auto"] / r["best"] for r in done]
    stored = [r for r in done if "stored" in r]
    return {
        "workloads": len(done), "failed": [f"{r['id']}: {r['error']}" for r in rows
                                           if "error" in r],
        "total": sum(r["auto"] for r in done) / sum(r["best"] for r in done),
        "p50": _percentile(ratios, 0.5), "p90": _percentile(ratios, 0.9),
        "worst": max(ratios), "worst_id": done[ratios.index(max(ratios))]["id"],
        "slower": [f"{r['id']} {r['auto'] / r['sequential']:.2f}x" for r in done
                   if slower_than_sequential(r)],
        "stored_total": (sum(r["stored"] for r in stored) / sum(r["best"] for r in stored)
                         if stored else None),
        "sequential_total": sum(r["auto"] for r in done) / sum(r["sequential"] for r in done),
    }


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the issue's targets, on the held-out half; the same
    from nothing for the busy-core run when there is one."""
    out = []
    runs = [("", results["halves"].get("heldout"))]
    if results.get("busy") is not None and results.get("busy_half") == "heldout":
        runs.append((", one core busy", results["busy"]))
    for note, rows in runs:
        s = summary(rows) if rows is not None else None
        if s is None:
            continue
        name = f"auto eval (held-out{note})"
        out += [
            (f"{name}: total within {TOTAL}x of the best fixed lane", f"{s['total']:.2f}x",
             s["total"] <= TOTAL),
            (f"{name}: p90 within {P90}x of the best fixed lane", f"{s['p90']:.2f}x",
             s["p90"] <= P90),
            (f"{name}: worst within {WORST:g}x of the best fixed lane",
             f"{s['worst']:.2f}x ({s['worst_id']})", s["worst"] <= WORST),
            (f"{name}: never slower than sequential by more than 5% + 100 µs",
             "slower on: " + ", ".join(s["slower"]) if s["slower"] else "never slower",
             not s["slower"]),
        ]
        if s["failed"]:
            out.append((f"{name}: every workload runs", f"{len(s['failed'])} failed", False))
        if s["stored_total"] is not None:
            out.append((f"{name}: with stored profiles, total within {STORED_TOTAL}x of the "
                        "best fixed lane", f"{s['stored_total']:.2f}x",
                        s["stored_total"] <= STORED_TOTAL))
    return out


def seconds(value: float) -> str:
    return f"{value:.3f}" if value >= 0.01 else f"{value:.5f}" if value >= 0.001 else (
        f"{value:.6f}")


def _parameters(row: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in row["params"].items())


def _how(row: dict[str, Any]) -> str:
    slow = row["slow_import"]["kind"]
    return f"{row['mode']}, {row['home']}" + (f" ({slow} import)" if slow != "none" else "")


def _summary_rows(name: str, rows: list[dict[str, Any]] | None) -> list[str]:
    s = summary(rows) if rows else None
    if s is None:
        return []
    stored = f"{s['stored_total']:.2f}x" if s["stored_total"] is not None else ""
    slower = ", ".join(s["slower"]) or "none"
    failed = f" ({len(s['failed'])} failed)" if s["failed"] else ""
    return [f"| {name} | {s['workloads']}{failed} | {s['total']:.2f}x | {s['p50']:.2f}x | "
            f"{s['p90']:.2f}x | {s['worst']:.2f}x ({s['worst_id']}) | {stored} | "
            f"{s['sequential_total']:.2f}x | {slower} |"]


def workload_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| workload | family | parameters | calls | how | sequential | best fixed lane | "
             "auto | auto chose | auto / best | auto / sequential |",
             "| --- " * 11 + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['id']} | {r['family']} | {_parameters(r)} | {r['calls']} | "
                         f"{_how(r)} | failed: {r['error']} | | | | | |")
            continue
        lines.append(f"| {r['id']} | {r['family']} | {_parameters(r)} | {r['calls']} | "
                     f"{_how(r)} | {seconds(r['sequential'])} | {r['best_lane']} "
                     f"{seconds(r['best'])} | {seconds(r['auto'])} | "
                     f"{', '.join(r['auto_lanes'])} | {r['auto'] / r['best']:.2f}x | "
                     f"{r['auto'] / r['sequential']:.2f}x |")
    return lines


def render(results: dict[str, Any], console: bool = False) -> list[str]:
    """Markdown for BENCHMARKS.md: the method, a summary per half (and the busy run), and
    the held-out workloads one by one. The tune half's workloads are listed only with
    ``console`` (``--half tune``): they are for tuning, not for reports."""
    halves = results["halves"]
    sizes = ", ".join(f"{len(rows)} {name}" for name, rows in halves.items())
    lines = ["## auto_eval", "",
             f"Workloads generated from parameterised families (`benchmarks/"
             f"_eval_families.py`), seed {results['seed']}: {sizes}, split by a hash of "
             "their ids; the auto lane is tuned on the tune half only. Each workload runs in "
             "a fresh Python process; each timing has a new `multilane.Executor()` (a "
             "process per core) whose pools are started before the timer by calls that do "
             "not touch the workload, and the best of "
             f"{results['runs']} rounds counts. sequential is a plain loop with no "
             "executor; the best fixed lane is the fastest of inline, thread, process and "
             "hybrid at concurrency 4, 16 and 64. auto starts from nothing (stored profiles "
             "off), its exploration and its workers' first import of the function's module "
             "included; \"stored\" is auto in a new process with the profiles one earlier "
             "run stored, after an untimed sequential loop warms that process as the other "
             "timings warm theirs. Ratios are auto over the best fixed lane (p50, p90: "
             "nearest rank); slower than sequential means by more than 5% + 100 µs.", "",
             "| run | workloads | total | p50 | p90 | worst | total, stored profiles | "
             "auto / sequential, total | slower than sequential |",
             "| --- " * 9 + "|"]
    for name, rows in halves.items():
        lines += _summary_rows(name, rows)
    if results.get("busy") is not None:
        lines += _summary_rows(f"{results['busy_half']}, one core busy", results["busy"])
    if results.get("skipped"):
        lines += ["", f"Skipped (NumPy not installed): {', '.join(results['skipped'])}."]
    for name, rows in halves.items():
        if name == "heldout" or console:
            lines += ["", f"### {name} half", ""] + workload_table(rows)
    if results.get("busy") and (results["busy_half"] == "heldout" or console):
        lines += ["", f"### {results['busy_half']} half, one core busy", ""] + workload_table(
            results["busy"])
    return lines + [""]
