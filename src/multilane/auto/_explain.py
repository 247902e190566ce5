"""What the auto lane tells a person: ``explain(fn)`` (the evidence and the decision per
argument size) and ``report()`` (what ran where)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._profile import Profile

__all__ = ["Explanation", "evidence", "nbytes", "report", "us"]


@dataclass(frozen=True)
class Explanation:
    """The evidence about a function and what the auto lane decided, per argument size."""

    function: str
    profiles: tuple[dict[str, Any], ...]
    # The cost model's parameters for this machine (``_machine.Machine``), and whether
    # they were calibrated here or are the reference machine's.
    machine: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"auto lane: {self.function}"]
        if not self.profiles:
            return lines[0] + ": no calls seen yet"
        if self.machine:
            m = self.machine
            lines.append(f"  this machine ({'calibrated' if m['calibrated'] else 'defaults'}): "
                         f"{m['cores']} cores, a call to a thread {us(m['thread_call_s'])}, "
                         f"a round trip to a process {us(m['process_trip_s'])}, "
                         f"{m['ship_byte_s'] * 1e9:.2f} ns a byte shipped")
            if m.get("cluster_slots"):
                trip = m.get("cluster_trip_s")
                lines.append(f"  the cluster joined: {m['cluster_slots']} slots, a round trip "
                             f"{us(trip) if trip is not None else 'not probed yet'}")
        for p in self.profiles:
            size = ("arguments of any size" if p["argument_bytes"] == 0 else
                    f"arguments of {nbytes(p['argument_bytes'])} or more")
            at_once = f", up to {p['concurrency']} at once" if p["concurrency"] else ""
            if p["spread"]:
                at_once += f"; spread over {p['spread']} worker processes (the GIL held them)"
            lines.append(f"  {size}: {p['calls']} calls -> {p['lane'] or 'deciding'}{at_once} "
                         f"({p['verdict']})")
            transport = (us(p["transport_s"]) if p["transport_s"] is not None else
                         "not probed (the call is long: the machine's round trip is "
                         "estimate enough)" if p["lane"] == "process" else "?")
            lines.append(f"    alone on a thread: wall {us(p['solo_wall_s'])}, "
                         f"CPU {us(p['solo_cpu_s'])}; transport to a process {transport}")
            if p["no_process"] and p["no_process"] not in p["verdict"]:
                lines.append(f"    no process: {p['no_process']}")
            if p["setup_s"]:
                lines.append(f"    one-time set-up in a worker (loading the function): "
                             f"{us(p['setup_s'])}")
            if p["cluster_work_s"] is not None:
                lines.append(f"    on the cluster: {us(p['cluster_work_s'])} a call in a worker")
            if p["run"]:
                lines.append(f"    in a run of {p['run'][0]} calls: {us(p['run'][1])} a call")
            held, released, longest = p["gil_probes"]
            if held or released:
                lines.append(f"    GIL-wait probes: {held} found the GIL held, {released} "
                             f"released (longest wait {us(longest)}); pairs of threads: "
                             f"{p['pairs'][0]} tried")
            estimates = ", ".join(f"{lane} {us(t)}" for lane, t in p["estimated_s"].items())
            lines.append(f"    estimated per call: {estimates or 'not yet'}")
        return "\n".join(lines)


def nbytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n} {unit}"
        n //= 1024
    return f"{n} TiB"


def us(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "?"
    if seconds < 1e-5:  # a fraction of a µs (a tiny call in a run): two significant digits
        return f"{seconds * 1e6:.2g} µs"
    return f"{seconds * 1e6:,.0f} µs" if seconds < 0.1 else f"{seconds:.2f} s"


def evidence(p: Profile, estimates: dict[str, float]) -> dict[str, Any]:
    """One profile's evidence and decision, as ``Explanation.profiles`` holds it, with the
    cost model's ``estimates`` of a call's time per lane."""
    return {
        "argument_bytes": p.argument_bytes,
        "calls": p.calls, "lane": p.lane, "verdict": p.verdict,
        "concurrency": min(p.concurrency, p.calls) if p.lane == "thread" else 0,  # at once
        "spread": p.spread if p.lane == "thread" else 0,  # worker processes, see _spread
        "solo_wall_s": p.solo[0] if p.solo else None,
        "solo_cpu_s": p.solo[1] if p.solo else None,
        "run": (p.basis_calls, p.basis) if p.basis_calls > 1 else None,  # calls, s each
        "transport_s": p.transport,
        "setup_s": p.setup_seen,  # a worker's one-time loading of the function
        "cluster_work_s": p.cluster_work,  # a cluster worker's time for a call, if probed
        "no_process": p.unpicklable,  # why no process can take it, if none can
        "pairs": (p.pair_tries, p.pairs_judged, p.pairs_contended),  # tried, counted, robbed
        "gil": p.gil,  # as the GIL-wait probes found it: "held", "released" or None
        "gil_probes": (p.gil_held, p.gil_released, p.gil_longest),  # held, released, longest
        "lanes": {lane: (t.calls, t.mean_wall, t.mean_cpu) for lane, t in p.lanes.items()},
        "estimated_s": estimates,
    }


def report(profiles: list[Profile]) -> str:
    """Per function: calls, lanes used and time spent (a Markdown table)."""
    rows: dict[str, dict[str, list[float]]] = {}  # name -> lane -> [calls, wall]
    for p in profiles:
        lanes = rows.setdefault(p.name, {})
        for lane, t in p.lanes.items():
            into = lanes.setdefault(lane, [0, 0.0])
            into[0] += t.calls
            into[1] += t.wall
    lines = ["| function | calls | lanes (calls) | time spent |", "| --- | --- | --- | --- |"]
    for name, lanes in sorted(rows.items()):
        calls = sum(int(t[0]) for t in lanes.values())
        used = ", ".join(f"{lane} ({int(t[0])})" for lane, t in lanes.items())
        spent = sum(t[1] for t in lanes.values())
        lines.append(f"| {name} | {calls} | {used} | {spent:.3f} s |")
    return "\n".join(lines)
