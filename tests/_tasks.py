"""Importable task functions for the tests (workers must be able to import them)."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

import multilane


def identity(x):
    return x


def add(a, b=0):
    return a + b


def square(x):
    return x * x


def raise_value_error(message):
    raise ValueError(message)


def get_pid(_=None):
    return os.getpid()


def kill_self(sig=signal.SIGKILL):
    os.kill(os.getpid(), sig)
    time.sleep(10)  # not reached: the signal kills the worker


def exit_now(code):
    os._exit(code)


def segfault():
    ctypes.string_at(0)


def block_until_file(path, timeout=30.0):
    """Blocks until ``path`` exists (tests create it to release the task)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.005)
    return os.getpid()


def announce_and_block(path, timeout=30.0):
    """Writes this worker's pid to ``path`` then sleeps, so a test can kill it mid-task."""
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    time.sleep(timeout)


def countdown(n):
    while n > 0:
        n -= 1
    return n


def thread_count(_=None):
    return threading.active_count()


class Unpicklable:
    def __reduce__(self):
        raise TypeError("Unpicklable refuses to be pickled")


def return_unpicklable():
    return threading.Lock()


class CustomError(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def raise_custom(code):
    raise CustomError(code, "custom detail")


def init_set_global(value):
    global INITIALIZED
    INITIALIZED = value


def read_global(_=None):
    return globals().get("INITIALIZED")


def init_fail():
    raise RuntimeError("initializer exploded")


def big_bytes(n):
    return bytes(range(256)) * (n // 256)


def length(data):
    return len(data)


# ---------------------------------------------------------------- for multilane.Executor

_barriers: dict[int, threading.Barrier] = {}
_barriers_lock = threading.Lock()


def meet(n, timeout=30.0):
    """Returns once ``n`` calls are inside this function at the same time in this process:
    proof that they run concurrently. Raises BrokenBarrierError otherwise."""
    with _barriers_lock:
        barrier = _barriers.setdefault(n, threading.Barrier(n))
    barrier.wait(timeout)
    return os.getpid()


_arrived: dict[int, list] = {}


async def meet_async(n, timeout=30.0):
    """The coroutine form of ``meet``: ``n`` coroutines waiting together on one loop."""
    import asyncio

    arrived, event = _arrived.setdefault(n, [0, asyncio.Event()])
    _arrived[n][0] = arrived + 1
    if arrived + 1 == n:
        event.set()
    await asyncio.wait_for(event.wait(), timeout)
    return os.getpid()


async def double_async(x):
    import asyncio

    await asyncio.sleep(0)
    return 2 * x


async def raise_async(message):
    raise ValueError(message)


async def where_async(_=None):
    """(pid, thread name, loop class) of the loop this coroutine runs on."""
    import asyncio

    return os.getpid(), threading.current_thread().name, type(asyncio.get_running_loop()).__name__


def where(_=None):
    return os.getpid(), threading.current_thread().name


@multilane.task(lane="process")
def cube_in_process(x):
    """A @task function: workers find it by module and name."""
    return x ** 3


@multilane.task(lane="async")
async def triple_async(x):
    return 3 * x


# ---------------------------------------------------------------- large buffers


def describe_bytes(value):
    return type(value).__name__, bytes(value[:8]), len(value)


def make_bytes(kind, n):
    data = bytes(range(256)) * (n // 256)
    return {"bytes": bytes, "bytearray": bytearray, "memoryview": memoryview}[kind](
        bytearray(data) if kind == "memoryview" else data)


def array_sum(array):
    return float(array.sum())


def array_double(array):
    return array * 2


def sum_after_file(array, path):
    block_until_file(path)
    return float(array.sum())


def hold_array_and_announce(array, path):
    """Touches every page of ``array`` (so the worker really maps it), then waits to be
    killed."""
    float(array.sum())
    announce_and_block(path)


_stash = []


def stash(value):
    """Keeps ``value`` alive in the worker (so its buffers stay mapped); returns the pid."""
    _stash.append(value)
    return os.getpid()


def try_to_write(array):
    array[0] = 1.0
    return "written"


def sums(structure):
    """Sum of every array in a dict of arrays and lists of arrays."""
    total = 0.0
    for value in structure.values():
        for array in value if isinstance(value, list) else [value]:
            total += float(array.sum())
    return total


# ---------------------------------------------------------------- reliability


def crash_once(path, value):
    """Kills its own worker the first time (``path`` does not exist yet), then returns."""
    if not os.path.exists(path):
        open(path, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def fail_once(path, value):
    if not os.path.exists(path):
        open(path, "w").close()
        raise ValueError("first attempt fails")
    return value


def allocate_and_keep(megabytes):
    """Grows this worker's memory by ``megabytes`` (kept), returns its pid."""
    _stash.append(bytearray(megabytes * 2**20))
    return os.getpid()


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


async def sleep_async(seconds, value=None):
    import asyncio

    await asyncio.sleep(seconds)
    return value


async def raise_timeout_error():
    raise TimeoutError("the coroutine's own timeout")


# ---------------------------------------------------------------- the auto lane


def tiny(x):
    return x + 1


def python_work(n):
    """Pure-Python CPU work that holds the GIL."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def digest(data):
    """hashlib releases the GIL on large inputs."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


def wait_a_little(seconds):
    time.sleep(seconds)
    return seconds


def slow_when_file(path, x):
    """Tiny until ``path`` exists, then it waits 20 ms per call: its behaviour drifts."""
    if os.path.exists(path):
        time.sleep(0.02)
    return x


def interrupt_on(value, bad):
    """Raises KeyboardInterrupt for ``bad``, as a Ctrl-C landing in the call would."""
    if value == bad:
        raise KeyboardInterrupt
    return value


def fail_on(value, bad):
    if value == bad:
        raise ValueError(f"bad value {value}")
    return value


def work_then_fail_on(value, bad):
    """``fail_on`` after about a microsecond of work: 20,000 calls are worth chunks."""
    sum(range(100))
    return fail_on(value, bad)


def environment(names):
    """The values of these environment variables here (None for those unset)."""
    return {name: os.environ.get(name) for name in names}


def scribble_then_sum(array, every):
    """The sum of ``array`` as received, after writing -1 into every ``every``-th element
    of it (a receiver may write its arguments: the writes stay in this process)."""
    total = float(array.sum())
    array[::every] = -1.0
    return total


def kept_mapped_bytes(_=None):
    """Bytes of received blocks this process keeps mapped for their next delivery."""
    from multilane import _core

    _core.settle_kept_mappings()
    return _core.arena_stats()["kept_mapped_bytes"]



def arena_stats() -> dict:
    """This worker's arena counters (blocks made and reused for what it sends)."""
    from multilane import _core

    return _core.arena_stats()


def slow_in_the_first_worker_call(n, marker, parent):
    """``python_work(n)``, four times over in the first call any worker makes (the one
    that creates ``marker``): an outlier, like a worker faulting in fresh pages."""
    repeat = 1
    if os.getpid() != parent:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            repeat = 4
        except FileExistsError:
            pass
    for _ in range(repeat):
        total = python_work(n)
    return total


company = threading.Event()


def wait_for_company(i, compute=0):
    """Call 0 waits (up to 10 s) until another call of its map has started, then does
    ``python_work(compute)``; the others say they started. True if call 0 had company."""
    if i != 0:
        company.set()
        return True
    had_company = company.wait(10.0)
    python_work(compute)
    return had_company


def allocator_statistics(_=None):
    """multilane's NumPy allocator counters in this worker."""
    return multilane.zero_copy.statistics()


def allocated_by(array):
    """The name of the NumPy allocator that made ``array``'s data (or its base's)."""
    import numpy as np

    try:
        from numpy._core.multiarray import get_handler_name  # NumPy 2
    except ImportError:
        from numpy.core.multiarray import get_handler_name
    owner = array
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    return get_handler_name(owner)


def make_array(megabytes, value):
    """A float64 array of ``megabytes`` MiB filled with ``value``, made here."""
    import numpy as np

    return np.full(megabytes * 2**20 // 8, value, dtype=np.float64)


def keywords(*args, **kwargs):
    """What the call was given: every keyword a caller passes must arrive."""
    return args, kwargs


def set_item(mapping, key, value):
    mapping[key] = value
    return key


def put_pid(queue):
    queue.put(os.getpid())


_active = [0, 0]  # calls of wait_counted running now, the most at once
_active_lock = threading.Lock()


def wait_counted(seconds):
    """Waits ``seconds`` and counts how many of these calls ran at once (``most_at_once``)."""
    with _active_lock:
        _active[0] += 1
        _active[1] = max(_active[1], _active[0])
    time.sleep(seconds)
    with _active_lock:
        _active[0] -= 1
    return seconds


def most_at_once(reset=False):
    with _active_lock:
        most = _active[1]
        if reset:
            _active[:] = [0, 0]
    return most


def wait_then_compute(wait_s, compute_s):
    """Waits, then computes holding the GIL; says which process ran it."""
    time.sleep(wait_s)
    end = time.thread_time() + compute_s
    while time.thread_time() < end:
        pass
    return os.getpid()


def native_threads_seen(_=None):
    """The native thread cap this worker was started with (OMP_NUM_THREADS)."""
    return os.environ.get("OMP_NUM_THREADS")


def nested_squares(n):
    """A joblib Parallel inside a task (joblib's nested backend: threads)."""
    import joblib

    return sum(joblib.Parallel(n_jobs=2)(joblib.delayed(square)(i) for i in range(n)))



def computes_here_sleeps_on_dask(seconds):
    """``seconds`` of Python work (the GIL held), or a sleep as long on a Dask worker: a
    stand-in for a cluster whose every slot is a core of its own (this machine has two,
    and sixteen calls at once on them would each take eight times as long)."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):  # not on a Dask worker
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
    else:
        time.sleep(seconds)
    return seconds
