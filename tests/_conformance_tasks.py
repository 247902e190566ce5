"""Task functions of the conformance suite: module-level, so every executor can run them.

Process workers import this module by name (the tests' directory is on their sys.path).
Waits here are bounded by ``BOUND`` seconds: a task never outlives a failed test by long.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

from _tasks import CustomError as CustomError  # one definition, shared by both suites
from _tasks import raise_custom as raise_custom

BOUND = 30.0  # the tests' TIMEOUT: a task left blocked by a failed test gives up after it


def identity(x):
    return x


def square(x):
    return x * x


def add(a, b=0):
    return a + b


def echo(*args, **kwargs):
    """The call exactly as the function received it."""
    return args, kwargs


def fail_at(x, bad):
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def raise_value_error(message):
    raise ValueError(message)


def raise_base(name):
    """Raises the BaseException subclass ``name`` (SystemExit, KeyboardInterrupt)."""
    raise {"SystemExit": SystemExit(3), "KeyboardInterrupt": KeyboardInterrupt()}[name]


def block_until(path, value=None):
    """Returns ``value`` once ``path`` exists (the test creates it to release the call).

    It always sleeps before it looks: a call that found its gate open at once would look
    tiny to the auto lane, which would then run the next calls inline, in the caller.
    """
    deadline = time.monotonic() + BOUND
    while True:
        time.sleep(0.002)
        if os.path.exists(path):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")


def queue_behind(path, value=None):
    """``block_until`` under another name, for the calls queued behind a blocked one: the
    auto lane judges each function apart, and these return at once once released."""
    return block_until(path, value)


def announce_and_block(path):
    """Writes this process's pid to ``path`` (atomically), then blocks until killed."""
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    return block_until(path + ".never")


def get_pid(_=None):
    return os.getpid()


def exit_now(code):
    os._exit(code)


def kill_self(sig=signal.SIGKILL):
    os.kill(os.getpid(), sig)
    return block_until(f"/nonexistent/{os.getpid()}")  # not reached: the signal kills us


def touch_when(gate, path):
    """Creates ``path`` once ``gate`` exists."""
    block_until(gate)
    with open(path, "w"):
        pass


# ---------------------------------------------------------------- objects that cross badly


def refuse_to_unpickle(where):
    raise ValueError(f"{where} refuses to be unpickled")


def exit_on_unpickle(code):
    raise SystemExit(code)


class FailsToUnpickle:
    """Pickles; its unpickling raises ValueError."""

    def __reduce__(self):
        return refuse_to_unpickle, ("FailsToUnpickle",)


class ExitsOnUnpickle:
    """Pickles; its unpickling raises SystemExit (a BaseException, not an Exception)."""

    def __reduce__(self):
        return exit_on_unpickle, (7,)


def return_unpicklable():
    return threading.Lock()


def return_fails_to_unpickle():
    return FailsToUnpickle()


def return_exits_on_unpickle():
    return ExitsOnUnpickle()


def raise_exits_on_unpickle():
    error = ValueError("carries an object that cannot come back")
    error.payload = ExitsOnUnpickle()
    raise error


# ---------------------------------------------------------------- coroutine functions


async def double_async(x):
    await asyncio.sleep(0)
    return 2 * x


async def echo_async(*args, **kwargs):
    await asyncio.sleep(0)
    return args, kwargs


async def raise_async(message):
    await asyncio.sleep(0)
    raise ValueError(message)


async def block_until_async(path, value=None):
    deadline = time.monotonic() + BOUND
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        await asyncio.sleep(0.002)
    return value
