"""The auto lane's model parameters, in one place: every threshold its probes and its
verdict use, each with what it means. Chosen from measurements (see docs/architecture.md
and the commit history); a change here is a change of the model."""

from __future__ import annotations

__all__ = [
    "CALLER_SLICE_S", "CHUNKS_MIN_S", "CLEARLY_WAITING_INTERVALS", "CLUSTER_BYTE_S",
    "CLUSTER_TRIP_S", "COMPUTED_ALL_ALONG",
    "CONTENDED", "CROWDED", "DRIFT", "EARLY_CPU", "EARLY_PROCESS_CPU", "EARLY_S",
    "EXACT_OTHERS_S", "EXPLORE_BUDGET", "GIL_HELD", "GIL_RELEASED", "GIL_SAMPLES", "HEAD",
    "KNOWN_TRIPS",
    "MAX_THREADS", "MEASURED_CALLS", "MEASURED_RUN_S", "MIN_GAIN", "PAIRS", "PAIR_TRIES",
    "PAIR_WAIT_S", "PARALLEL_CORES", "PICKLE_TIMED_BYTES", "PROCESS_OUTLIER", "PROCESS_PROBES",
    "PROCESS_START_S",
    "PROCESS_TRIP_S", "REFERENCE_HANDOFF_S", "REFERENCE_PICKLE_CALL_S",
    "REFERENCE_SHIP_BYTE_S", "REFERENCE_THREAD_START_S", "SAMPLE", "SEGMENTS_PER_CORE",
    "SETUP_S", "SHIP_BYTE_S", "SLOWER_TOGETHER", "SMALL_ARGUMENTS", "SOLO_PATIENCE_S",
    "SOLO_RUNS", "SPREAD_CALL_S",
    "SPREAD_MIN_GAIN_S", "STOLEN", "THREAD_CALL_S", "THREAD_SPEEDUP", "THREAD_START_S",
    "TINY_S", "TRANSPORT_OUTLIER", "WAITING", "WAIT_SLOWED",
]


TINY_S = 30e-6  # below this a call runs inline
SOLO_RUNS = 2  # calls timed alone on a thread before judging
# A submit whose call went out as a solo probe on a thread waits this long for it to end,
# so that its own next submits do not share the GIL with the call being timed (see
# AutoLane.submit): a call of tens of µs takes about 100 µs on a thread woken for it,
# and a long one delays the submit by no more than this.
SOLO_PATIENCE_S = 0.0005
SAMPLE = 8  # once decided, one call in this many is timed
# Pairs of calls run together, none of them robbed of its core, before concluding that
# the GIL is held (one showing it released is enough).
PAIRS = 1
PAIR_TRIES = 3
PAIR_WAIT_S = 0.02  # the first call of a pair waits this long for the second to be ready
# A pair over which tasks of the machine waited for a core this much of its span is taken
# as robbed of a core (only evidence that the GIL is released, never that it is held).
CONTENDED = 0.3
THREAD_SPEEDUP = 1.2  # two at once on threads must beat two in a row by this much
CHUNKS_MIN_S = 0.005  # an inline backlog with this much work goes to processes in chunks
# Seconds per byte a call's arguments and result cost in process chunks, paid serially
# here (pickling, copying into the ring and out): 1.2-1.4 ns measured on the 2-core VM
# (5,712 calls of 6.7 KB in and out, 8,502 calls of 64 KB in: the process lane's time
# over the caller's, per byte). Chunks go only where the work shared by the cores gains
# more than that.
SHIP_BYTE_S = 1.3e-9
# Arguments and results up to this many bytes are pickled once, timed: beyond its bytes,
# an object can cost far more to pickle than SHIP_BYTE_S says (a NumPy array of 3.6 KB:
# 11 µs here, 4.7 µs by the byte, and 20,000 of them sent to process chunks took 0.3 s
# where a loop took 0.04 s). Above it, the bytes dominate, and timing would cost a copy.
PICKLE_TIMED_BYTES = 1 << 20
# A tiny call timed alone is mostly the timer's cost and a cold call's: it reads many times
# what the call costs in a run of calls. Before a map's calls go to processes in chunks on
# such a figure, a head of the map runs in its caller, this much work by that figure (and
# this many calls at least), and the decision takes its time per call from there.
MEASURED_RUN_S = 0.00025
MEASURED_CALLS = 32
WAITING = 0.5  # CPU / wall below this: the call mostly waits
# Two calls at once used at least this many cores between them: the GIL was released (with
# the GIL held they cannot exceed one core, however idle the machine).
PARALLEL_CORES = 1.1
# While the warm-up probe is out (a worker may take long to load the function: a module
# that is slow to import), the calls waiting for the decision run here, this much work at
# a time: the decision then waits for one slice at most.
CALLER_SLICE_S = 0.002
HEAD = 12  # a map's first calls go one by one: enough for every probe; the rest in segments
SEGMENTS_PER_CORE = 4
DRIFT = 4.0  # re-explore when the work per call moves this far from the decision's basis
# Argument-size buckets: one below 64 KiB (there the transport is mostly a fixed cost),
# then a new profile per 16x more bytes.
SMALL_ARGUMENTS = 1 << 16
# One exploring call that barely used the CPU for this many GIL switch intervals (5 ms
# each) is waiting: no second look. A shorter gap can be a wait for the GIL held by
# another thread, which is asked to let go after one interval. (Nor for one this long
# that computed holding the GIL: see ``Profile.solo_wanted``.)
CLEARLY_WAITING_INTERVALS = 2
# Two calls at once on threads that take this much of the time of two in a row (or less)
# settle the pair question in one go: threads lose (NumPy's BLAS, whose own threads already
# fill every core, falls far below it).
SLOWER_TOGETHER = 0.75
# A worker this much slower than a call here is looked at again, up to this many times.
PROCESS_OUTLIER = 1.5
PROCESS_PROBES = 2
# A process probe's round trip this many times the machine's for its bytes is looked at
# again (within PROCESS_PROBES): its reply can wait for this process's GIL, held by a
# caller running the map meanwhile (a 10 ms call read 11.7 ms of transport so).
TRANSPORT_OUTLIER = 4.0
STOLEN = 0.2  # a probe that never blocked yet ran this much less than its wall time
CROWDED = 0.8  # other threads of the process used this much of every other core
EXACT_OTHERS_S = 0.0005  # a second solo after one this long reads other threads' CPU exactly
# While a blocking map's first call runs in its caller, a native watcher (WaitWatch, in
# the C++ core) looks at it every EARLY_S: once it has used under EARLY_CPU of a core over
# the last look's span, it waits, and the rest of the map goes to threads at once instead
# of after it (after it, the map would take one more round of that call's whole wait). A
# call the scheduler keeps from a core is not waiting (the watcher asks the kernel; a first
# look EARLY_S / 8 in only takes its counts, so a wait is seen EARLY_S * 9 / 8 in). The
# call's full measurement then confirms that or not.
EARLY_S = 0.002
EARLY_CPU = 0.1
# ...and the whole process under this many cores: a call whose own threads compute (NumPy's
# BLAS: the calling thread waits while its threads work, and on a first call while they
# start) is not waiting.
EARLY_PROCESS_CPU = 0.5
# The GIL-wait probe: while a solo probe computes, the watcher's thread asks for the GIL
# and times the wait (the binding does, on the native thread). A call holding the GIL is
# asked to let go only after a switch interval, so the wait is about one; a call that
# released it (hashlib, zlib, NumPy) lets the watcher in at once. Waiting this many
# intervals or more: held; this few or less: released; in between says nothing. Held, no
# pair of threads need show it (two calls on one core, for 2x a call's time); released,
# a pair must still show that two at once gain (see ``_verdict_locked``).
GIL_HELD = 0.5
GIL_RELEASED = 0.1
GIL_SAMPLES = 2  # per watched call: each held one makes the call switch threads once
COMPUTED_ALL_ALONG = 0.8  # CPU / wall of a solo probe that never waited
# How many calls that mostly wait run at once on threads (``waiting_concurrency``): a
# call holds the GIL for its CPU time, and at least THREAD_CALL_S of a thread lane's own
# work (its queue, its future); starting a thread costs THREAD_START_S (measured here:
# 140 µs each for 200). Never past MAX_THREADS, nor past the threads a user gave.
THREAD_CALL_S = 20e-6
THREAD_START_S = 140e-6
MAX_THREADS = 256
# Sampled calls on threads taking this many times their time alone: they slow each other
# (a server at its limit, the GIL): more at once would not raise the throughput.
WAIT_SLOWED = 2.0
# Waiting calls that would keep this process's GIL busy on threads are spread over the
# process lane's workers, many at once in each (``spread_gain``), if that gains
# SPREAD_MIN_GAIN_S or more: enough to cover what is not known before (a worker's first
# load of the function). Each call spread costs this process SPREAD_CALL_S to send
# (pickling it and its result's unpickling, ~10 µs here) besides its bytes.
SPREAD_CALL_S = 10e-6
SPREAD_MIN_GAIN_S = 0.02
# Starting the process lane's workers, when they are not up yet (two workers, from the
# first submit to its result: 0.19-0.21 s here): spreading must gain that too, and so
# must processes over a profile's calls before its first process probe starts them.
PROCESS_START_S = 0.2

# The choice (``_verdict.choose``): a lane replaces a simpler one (inline, then thread, then
# process) only if its estimate is this much lower: estimates from one or two calls are no
# closer than that.
MIN_GAIN = 0.05
# Exploration: a lane is probed only while its optimistic estimate beats the current choice
# by MIN_GAIN, and only if the probe is expected to cost at most this share of the time
# the profile's calls are estimated to take (its calls so far, as many again to come).
EXPLORE_BUDGET = 0.05
# What the workers' first load of a function (its one-time set-up) is taken to cost before
# one is measured, in the process probe's cost above: the least seen here (3-11 ms for a
# function by value from __main__ or a module without heavy imports; NumPy or a module
# that builds tables at import: 50-300 ms). While the workers load it, the calls run here
# on fewer free cores: 4,600 NumPy sums of 20 µs took 50 µs each while two workers
# imported NumPy.
SETUP_S = 0.003
# A call this many times longer than its round trip to a process (the machine's trip and
# its bytes shipped) is estimated there without a process probe once the workers have
# loaded its function (their set-up measured): a probe would only add its own small
# overheads, and cost a short map of such calls a whole call's time. 4 countdowns of
# 0.12 s took 0.52 s with the probe (3 here, 1 in a worker), against 0.48 s in a row.
# Calls DRIFT times slower in a worker than here are explored again, as any decided call.
KNOWN_TRIPS = 200
# A round trip to a worker process for a call of a few bytes, until a process probe of
# this machine measures a cheaper one (``Machine.saw_trip``): ~13 µs median on the 2-core
# VM, more for a probe's first call of a function.
PROCESS_TRIP_S = 30e-6
# A cluster lane (issue 17), weighed only when the executor joined a cluster (one it
# started here shares this machine's cores, so it can only lose to the process lane).
# Before a cluster probe has measured one, a round trip to it is taken to cost
# CLUSTER_TRIP_S in the probe's cost (a Dask LocalCluster or local Ray here: 1-4 ms per
# no-op from submit to result), and nothing in its optimistic estimate. A call's bytes
# travel to it at CLUSTER_BYTE_S each, there and back (a 10 Gb/s network, about; not
# measured: the cluster's own machines say).
CLUSTER_TRIP_S = 0.004
CLUSTER_BYTE_S = 1e-9
# The reference timings of the primitives ``_machine.calibrate`` times: the parameters
# above are scaled by how much slower or faster each runs on another machine. Timed idle,
# best of 5, on the project's 2-core AMD EPYC VM (2026-12-07); most parameters above were
# measured on its 2-core Intel Xeon VM in earlier sessions, so the two VMs stand as one
# reference here, an approximation (their round trips and thread costs were close).
REFERENCE_THREAD_START_S = 95e-6  # start and join a thread
REFERENCE_HANDOFF_S = 18e-6  # an object to another thread and back, through queues
# Copy 4 MiB into fresh shared memory and read it back, per byte: 0.41-0.44 ns at rest,
# best of 5, on the 2-core Intel Xeon VM (2026-12-07). Its timing is named
# ship_shared_byte: a record of the older primitive, an in-process pickle of a MiB, is not
# read as this one.
REFERENCE_SHIP_BYTE_S = 0.42e-9
REFERENCE_PICKLE_CALL_S = 6e-6  # pickle and unpickle a small call
