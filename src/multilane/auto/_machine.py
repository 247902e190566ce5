"""The model's per-machine parameters: what a thread, a hand-off, a byte shipped and a
round trip to a worker cost here.

The defaults in ``_params`` were measured on the project's 2-core VMs (see the reference
timings there). Elsewhere they are scaled: ``calibrate`` times a few primitives (starting a thread,
handing an object to another thread and back, pickling bytes, pickling a small call), and
each parameter is its default times how much slower or faster its primitive runs here
than there, within [1/4, 4] (a reading taken while the machine was busy must not move
the model far). A calibration takes some milliseconds; it is done once per machine and
kept in the profile store, keyed by the machine's fingerprint (``_store``): the first run
of a program on a machine takes it as it exits, later runs start with it. With the store
off, the defaults hold.

The process round trip is not timed here: every process probe measures one for its own
function, and the cheapest of those is the machine's (``Machine.saw_trip``)."""

from __future__ import annotations

import math
import mmap
import pickle
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from ._params import (
    PROCESS_TRIP_S,
    REFERENCE_HANDOFF_S,
    REFERENCE_PICKLE_CALL_S,
    REFERENCE_SHIP_BYTE_S,
    REFERENCE_THREAD_START_S,
    SHIP_BYTE_S,
    SPREAD_CALL_S,
    THREAD_CALL_S,
    THREAD_START_S,
)

if TYPE_CHECKING:
    from ._store import ProfileStore

__all__ = ["MACHINE_RECORD", "Machine", "calibrate", "remember", "remembered", "timings"]

MACHINE_RECORD = "<machine>"  # its key in the profile store (no function fingerprint is)
_SCALE_LIMIT = 4.0
_REPEATS = 5  # each primitive is timed this many times: the fastest counts
_SHIPPED_BYTES = 4 << 20  # what the shipping primitive copies
_shipped: bytes | None = None


class Machine(NamedTuple):
    """What costs what here: the cost model's per-machine side (its per-function side is
    the profile)."""

    cores: int  # usable by this process
    free_threaded: bool = False  # this CPython runs without a GIL
    thread_call_s: float = THREAD_CALL_S  # a thread lane call's own work, GIL held
    thread_start_s: float = THREAD_START_S  # starting one more thread
    ship_byte_s: float = SHIP_BYTE_S  # a byte to a process and back, paid here
    spread_call_s: float = SPREAD_CALL_S  # sending one call to a worker, besides its bytes
    process_trip_s: float = PROCESS_TRIP_S  # the cheapest round trip to a worker seen
    calibrated: bool = False  # scaled from timings taken on this machine
    # The cluster the executor joined, once connected: calls it runs at once (0: none to
    # weigh), and the cheapest round trip a cluster probe saw, less the call's work
    # (None: not measured yet). Not stored: the next run may join another cluster.
    cluster_slots: int = 0
    cluster_trip_s: float | None = None

    def scaled(self, here: dict[str, float]) -> Machine:
        """The defaults scaled by ``here`` (``timings()``, taken on this machine) over the
        reference machine's timings of the same primitives."""
        def scale(name: str, reference: float) -> float:
            ratio = here.get(name, reference) / reference
            if not math.isfinite(ratio) or ratio <= 0:
                return 1.0
            return min(_SCALE_LIMIT, max(1 / _SCALE_LIMIT, ratio))

        return self._replace(
            thread_start_s=THREAD_START_S * scale("thread_start", REFERENCE_THREAD_START_S),
            thread_call_s=THREAD_CALL_S * scale("handoff", REFERENCE_HANDOFF_S),
            ship_byte_s=SHIP_BYTE_S * scale("ship_shared_byte", REFERENCE_SHIP_BYTE_S),
            spread_call_s=SPREAD_CALL_S * scale("pickle_call", REFERENCE_PICKLE_CALL_S),
            calibrated=True)

    def saw_trip(self, trip: float) -> Machine:
        """With ``trip``, a round trip a process probe measured, if cheaper."""
        if 0 < trip < self.process_trip_s:
            return self._replace(process_trip_s=trip)
        return self

    def saw_cluster_trip(self, trip: float) -> Machine:
        """With ``trip``, a round trip to the cluster a cluster probe measured (less the
        call's work there), if cheaper."""
        if trip >= 0 and (self.cluster_trip_s is None or trip < self.cluster_trip_s):
            return self._replace(cluster_trip_s=trip)
        return self

    def to_record(self, here: dict[str, float]) -> dict[str, Any]:
        return {"timings": here, "process_trip": self.process_trip_s}

    def restore(self, record: Any) -> Machine:
        """Scaled as a stored record says (``to_record``); unchanged if it is unsound."""
        try:
            here = {str(k): float(v) for k, v in record["timings"].items()}
            trip = float(record["process_trip"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return self
        if not all(math.isfinite(v) and v > 0 for v in here.values()):
            return self
        return self.scaled(here).saw_trip(trip)


def _best(measure: Any, repeats: int = _REPEATS) -> float:
    return min(measure() for _ in range(repeats))


def _thread_start() -> float:
    threads = [threading.Thread(target=int) for _ in range(8)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - start) / len(threads)


def _handoff() -> float:
    there: queue.SimpleQueue = queue.SimpleQueue()
    back: queue.SimpleQueue = queue.SimpleQueue()

    def echo() -> None:
        while (item := there.get()) is not None:
            back.put(item)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    rounds = 50
    try:
        start = time.perf_counter()
        for i in range(rounds):
            there.put(i)
            back.get()
        return (time.perf_counter() - start) / rounds
    finally:
        there.put(None)
        thread.join()


def _ship_byte() -> float:
    """Per byte: copying into a fresh block of shared memory (its pages faulted in as they
    are written) and reading it back, as a large argument travels to a worker. An
    in-process pickle of a MiB, timed before, ran in cache: it varied 4x from run to run
    and read 0.16-0.6 ns a byte where shipping 70 MiB to a worker cost 0.8-1.3."""
    global _shipped
    if _shipped is None:  # made at the first calibration, not at import
        _shipped = bytes(_SHIPPED_BYTES)
    data = _shipped
    start = time.perf_counter()
    with mmap.mmap(-1, len(data)) as block:
        block.write(data)
        block.find(b"\1")
    return (time.perf_counter() - start) / len(data)


def _pickle_call() -> float:
    call = (time.sleep, (0.001,), {"x": 1.5})
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        pickle.loads(pickle.dumps(call, protocol=5))
    return (time.perf_counter() - start) / rounds


def timings() -> dict[str, float]:
    """Times the primitives the parameters scale by, here and now (~10 ms): the fastest
    of a few tries each."""
    return {"thread_start": _best(_thread_start), "handoff": _best(_handoff),
            "ship_shared_byte": _best(_ship_byte), "pickle_call": _best(_pickle_call)}


def calibrate(cores: int, free_threaded: bool = False) -> tuple[Machine, dict[str, float]]:
    """This machine's parameters, from timings taken now, and those timings."""
    here = timings()
    return Machine(cores, free_threaded).scaled(here), here


def remembered(machine: Machine, store: ProfileStore) -> Machine:
    """``machine`` as the store's calibration of this machine scales it, if it holds one."""
    if not store.enabled:
        return machine
    return machine.restore(store.load(MACHINE_RECORD, 0))


def remember(machine: Machine, store: ProfileStore) -> None:
    """Keeps this machine's calibration in ``store`` for the runs after this one: timed
    now if the store holds none (at shutdown, where a few milliseconds disturb no call),
    or with a cheaper round trip if ``machine`` saw one. Never fails."""
    if not store.enabled:
        return
    try:
        stored = store.load(MACHINE_RECORD, 0)
        known = machine.restore(stored)
        if not known.calibrated:
            known, here = calibrate(machine.cores, machine.free_threaded)
        elif known.process_trip_s > machine.process_trip_s and isinstance(stored, dict):
            here = stored["timings"]
        else:
            return
        store.save(MACHINE_RECORD, 0, known.saw_trip(machine.process_trip_s).to_record(here))
    except Exception:  # (no thread may start at interpreter exit): never a failure
        return
