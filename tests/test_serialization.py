"""What crosses the process boundary: lambdas, closures, __main__ functions, large payloads,
and clear SerializationErrors for what cannot cross."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
import textwrap
import threading

import _conformance_tasks as crossing
import _tasks
import pytest
from conftest import TIMEOUT

import multilane


@pytest.fixture
def ex(no_leaks):
    with multilane.ProcessPoolExecutor(max_workers=2) as executor:
        yield executor


def test_lambda_and_closure(ex):
    offset = 10
    assert ex.submit(lambda x: x + offset, 5).result(timeout=TIMEOUT) == 15

    def make_adder(n):
        return lambda x: x + n

    assert list(ex.map(make_adder(3), [1, 2])) == [4, 5]


def test_local_class_instances_cross_both_ways(ex):
    class Point:
        def __init__(self, x):
            self.x = x

    result = ex.submit(lambda p: Point(p.x * 2), Point(21)).result(timeout=TIMEOUT)
    assert result.x == 42


def test_functions_defined_in_main_work(tmp_path, no_leaks):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        import multilane

        class Box:
            def __init__(self, v):
                self.v = v

        def triple(box):
            return Box(box.v * 3)

        if __name__ == "__main__":
            with multilane.ProcessPoolExecutor(2) as ex:
                print(ex.submit(triple, Box(5)).result().v, list(ex.map(triple, [Box(1)]))[0].v)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["15", "3"]


def test_serialization_error_is_typed():
    assert issubclass(multilane.SerializationError, multilane.Error)
    assert issubclass(multilane.SerializationError, pickle.PicklingError)
    assert issubclass(multilane.SerializationError, TypeError)


def _generator():
    yield 1


@pytest.mark.parametrize("make, kind", [
    (threading.Lock, "lock"),
    (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), "socket"),
    (_generator, "generator"),
])
def test_unpicklable_argument_is_named(ex, make, kind):
    bad = make()
    try:
        future = ex.submit(_tasks.add, 1, bad)  # as the standard pool: the future fails
        assert future.done()
        with pytest.raises(multilane.SerializationError) as info:
            future.result(timeout=TIMEOUT)
        message = str(info.value)
        assert message.startswith(
            f"cannot pickle argument 1 ({type(bad).__name__}) of _tasks.add(): ")
        assert kind in message or type(bad).__name__ in message
    finally:
        if kind == "socket":
            bad.close()
    # The pool is unaffected.
    assert ex.submit(_tasks.add, 1, 2).result(timeout=TIMEOUT) == 3


def test_unpicklable_keyword_argument_is_named(ex):
    future = ex.submit(_tasks.add, 1, b=threading.Lock())
    with pytest.raises(multilane.SerializationError,
                       match=r"^cannot pickle keyword argument 'b' \(lock\) of _tasks\.add\(\): "):
        future.result(timeout=TIMEOUT)


def test_unpicklable_item_in_map_is_named(ex):
    with pytest.raises(multilane.SerializationError, match="cannot pickle argument 0"):
        list(ex.map(_tasks.identity, [1, threading.Lock()], chunksize=1))


@pytest.mark.parametrize("chunksize", [None, 3])
def test_unpicklable_item_in_chunked_map_is_named_by_its_input_index(ex, chunksize):
    """As in the standard pool, the map fails when its iteration reaches the chunk that
    could not be pickled: the results of the chunks before it come first."""
    items = list(range(10))
    items[7] = threading.Lock()
    got = []
    with pytest.raises(multilane.SerializationError,
                       match=r"^cannot pickle item 7 \(lock\) of the input to "
                             r"map\(_tasks\.identity\(\)\): TypeError: "):
        got.extend(ex.map(_tasks.identity, items, chunksize=chunksize))
    assert got == list(range(len(got))) and len(got) <= 7  # the chunks before it, in order
    if chunksize == 3:
        assert got == [0, 1, 2, 3, 4, 5]
    assert list(ex.map(_tasks.identity, range(5))) == list(range(5))


def test_unpicklable_return_value(ex):
    with pytest.raises(multilane.SerializationError,
                       match=r"^cannot pickle the return value \(lock\): TypeError: "):
        ex.submit(_tasks.return_unpicklable).result(timeout=TIMEOUT)
    assert ex.submit(_tasks.identity, 1).result(timeout=TIMEOUT) == 1


@pytest.mark.parametrize("task, what", [
    (crossing.return_exits_on_unpickle,
     "the return value of _conformance_tasks.return_exits_on_unpickle()"),
    (crossing.raise_exits_on_unpickle, "the exception a task raised")])
def test_what_raises_systemexit_as_it_is_unpickled_fails_its_future_alone(ex, task, what):
    """Unpickling runs the object's own code, which may raise any BaseException: that
    future fails with a SerializationError naming what could not come back, and the pool
    goes on (it once left the future pending for ever and broke the pool)."""
    future = ex.submit(task)
    with pytest.raises(multilane.SerializationError) as info:
        future.result(timeout=TIMEOUT)
    assert str(info.value) == f"cannot unpickle {what}: SystemExit: 7"
    assert isinstance(info.value.__cause__, SystemExit)
    assert [ex.submit(_tasks.identity, i).result(timeout=TIMEOUT) for i in range(4)] == [
        0, 1, 2, 3]


def test_exception_that_does_not_pickle(ex):
    def raise_unpicklable():
        class Local(Exception):
            def __reduce__(self):
                raise TypeError("no")
        raise Local("local failure")

    with pytest.raises(multilane.SerializationError, match="could not be pickled"):
        ex.submit(raise_unpicklable).result(timeout=TIMEOUT)


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, 1 << 20, 5 << 20])
def test_payloads_of_every_size_round_trip(ex, size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert ex.submit(_tasks.identity, data).result(timeout=TIMEOUT) == data


@pytest.mark.parametrize("kind", [bytes, bytearray])
@pytest.mark.parametrize("chunksize", [1, 3])
def test_large_bytes_in_a_chunked_map_travel_out_of_band_and_keep_their_type(ex, kind,
                                                                            chunksize):
    """A chunk's large bytes-like items, and its results, go out of band as a single
    call's do: pickled inline, 12 items of 70 MiB took 3.2 s in chunks of two against
    1.1 s as single calls."""
    from multilane.buffers._serialize import dumps_oob, outband_items

    items = [kind(bytes([i]) * (1 << 17)) for i in range(6)]
    payload, attachments, _ = dumps_oob(outband_items(items))
    assert len(payload) < 4096 and attachments  # the bytes are in the attachment
    pairs = [(item, i) for i, item in enumerate(items)]
    payload, attachments, _ = dumps_oob(outband_items(pairs, single=False))
    assert len(payload) < 4096 and attachments
    assert outband_items([1, kind(1 << 17)]) == [1, kind(1 << 17)]  # the first decides
    results = list(ex.map(_tasks.identity, items, chunksize=chunksize))
    assert results == items and all(type(r) is kind for r in results)
    assert list(ex.map(max, items, items, chunksize=chunksize)) == items


def test_large_result(ex):
    assert len(ex.submit(_tasks.big_bytes, 8 << 20).result(timeout=TIMEOUT)) == 8 << 20


def test_bound_methods_are_pickled_with_current_state(ex):
    class Counter:
        def __init__(self):
            self.n = 0

        def value(self):
            return self.n

    counter = Counter()
    assert ex.submit(counter.value).result(timeout=TIMEOUT) == 0
    counter.n = 5
    assert ex.submit(counter.value).result(timeout=TIMEOUT) == 5


def test_throwaway_functions_are_forgotten(ex):
    """Each new lambda is cached for its lifetime only; workers are told to forget it."""
    import gc
    for i in range(300):
        assert ex.submit(lambda x, i=i: x + i, 1).result(timeout=TIMEOUT) == 1 + i
    gc.collect()
    assert len(ex._functions) < 10  # noqa: SLF001 -- the cache itself is what is tested
    assert ex.submit(_tasks.identity, "still fine").result(timeout=TIMEOUT) == "still fine"
