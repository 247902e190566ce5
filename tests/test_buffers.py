"""Large buffers travel out of band: mapped by the receiver, not copied, both ways."""

from __future__ import annotations

import os
import signal

import _tasks
import numpy as np
import pytest
from conftest import TIMEOUT, wait_for_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import multilane
from multilane.buffers._serialize import OOB_MIN, dumps_oob, loads_oob

BIG = OOB_MIN // 8 * 4  # float64 elements: four times the out-of-band threshold


@pytest.fixture
def pool(no_leaks):
    with multilane.ProcessPoolExecutor(2) as ex:
        yield ex


def _roundtrip(obj):
    data, attachments, _ = dumps_oob(obj)
    return loads_oob(data, attachments), attachments


# ---------------------------------------------------------------- in one process


@pytest.mark.parametrize("array", [
    np.arange(BIG, dtype=np.float64),
    np.arange(BIG, dtype=np.int8).reshape(-1, 64),
    np.asfortranarray(np.arange(BIG, dtype=np.float32).reshape(256, -1)),
    np.zeros((0, 10)),
    np.arange(BIG * 2, dtype=np.int64)[::2],  # not contiguous: pickled inline
    np.array([{"a": 1}, None, "x"] * 1000, dtype=object),  # objects: pickled inline
    np.arange(BIG, dtype=np.complex128).view([("re", "f8"), ("im", "f8")]),
], ids=["f64", "i8-2d", "fortran", "empty", "strided", "object", "structured"])
def test_arrays_round_trip_exactly(array):
    back, attachments = _roundtrip(array)
    assert back.dtype == array.dtype and back.shape == array.shape
    if array.flags.f_contiguous and not array.flags.c_contiguous:
        assert back.flags.f_contiguous  # Fortran order is kept
    assert np.array_equal(back, array) if array.dtype != object else list(back) == list(array)
    contiguous = array.flags.c_contiguous or array.flags.f_contiguous
    big = array.nbytes >= OOB_MIN and array.dtype != object
    assert len(attachments) == (1 if contiguous and big else 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hnp.arrays(dtype=hnp.scalar_dtypes(), shape=hnp.array_shapes(max_dims=3, max_side=300)),
       st.booleans())
def test_any_array_round_trips(array, fortran):
    if fortran:
        array = np.asfortranarray(array)
    back, _ = _roundtrip({"array": array, "tail": [array[::-1]]})
    np.testing.assert_array_equal(back["array"], array)
    np.testing.assert_array_equal(back["tail"][0], array[::-1])


def test_received_arrays_are_writable_and_private():
    array = np.arange(BIG, dtype=np.float64)
    data, attachments, _ = dumps_oob(array)
    first, second = loads_oob(data, attachments), loads_oob(data, attachments)
    first[:] = -1
    assert np.array_equal(second, array)  # a write reaches no other receiver
    assert np.array_equal(loads_oob(data, attachments), array)  # nor the memfd


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_large_bytes_like_arguments_travel_out_of_band(pool, kind):
    value = kind(os.urandom(OOB_MIN * 3))
    assert pool.submit(_tasks.describe_bytes, value).result(TIMEOUT) == (
        kind.__name__, bytes(value)[:8], len(value))
    back = pool.submit(_tasks.make_bytes, kind.__name__, OOB_MIN * 2).result(TIMEOUT)
    assert type(back) is kind and len(back) == OOB_MIN * 2


# ---------------------------------------------------------------- through a pool


@pytest.mark.parametrize("shape", [(BIG,), (BIG // 64, 64), (0,)])
def test_arrays_to_a_worker_and_back(pool, shape):
    array = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    assert pool.submit(_tasks.array_sum, array).result(TIMEOUT) == array.sum()
    doubled = pool.submit(_tasks.array_double, array).result(TIMEOUT)
    assert np.array_equal(doubled, array * 2)
    assert doubled.flags.writeable
    doubled += 1  # the result is the caller's to modify


def test_a_result_outlives_its_pool(no_leaks):
    with multilane.ProcessPoolExecutor(1) as ex:
        result = ex.submit(_tasks.array_double, np.ones(BIG)).result(TIMEOUT)
    assert result.sum() == 2 * BIG  # the mapping stays while the array does
    del result


def test_the_sender_cannot_change_what_the_worker_received(no_leaks, tmp_path):
    """The worker's view is a private mapping of a copy made at submit time."""
    array = np.zeros(BIG)
    gate = str(tmp_path / "gate")
    with multilane.ProcessPoolExecutor(1) as ex:
        future = ex.submit(_tasks.sum_after_file, array, gate)
        array[:] = 5  # after submit: the worker must still see zeros
        open(gate, "w").close()
        assert future.result(TIMEOUT) == 0.0


def test_map_chunks_carry_arrays(pool):
    arrays = [np.full(BIG, i, dtype=np.float64) for i in range(6)]
    assert list(pool.map(_tasks.array_sum, arrays, chunksize=2)) == [BIG * i for i in range(6)]


def test_a_crash_with_a_buffer_in_flight_loses_nothing(no_leaks, tmp_path):
    """The worker dies holding a mapped argument: its future fails, the pool goes on, and
    the memory goes back (no descriptor, no mapping kept: no_leaks and /proc/meminfo)."""
    shmem_before = _shmem_kib()
    with multilane.ProcessPoolExecutor(1) as ex:
        path = str(tmp_path / "pid")
        future = ex.submit(_tasks.hold_array_and_announce, np.ones(BIG * 256), path)
        os.kill(wait_for_file(path), signal.SIGKILL)
        with pytest.raises(multilane.WorkerCrashed):
            future.result(TIMEOUT)
        assert ex.submit(_tasks.array_sum, np.ones(BIG)).result(TIMEOUT) == BIG
    del future
    assert _shmem_kib() - shmem_before < BIG * 256 * 8 // 1024 // 2  # 64 MiB sent


@pytest.mark.heavy
def test_soak_of_10000_large_tasks_keeps_memory_and_descriptors_flat(no_leaks):
    array = np.ones(BIG)  # 256 KiB: out of band, each way
    with multilane.ProcessPoolExecutor(2) as ex:
        for _ in range(3):  # warm: the arenas fill up to what 50 tasks in flight need
            list(ex.map(_tasks.array_double, [array] * 50, chunksize=1))
        rss, shmem, fds = _rss_kib(), _shmem_kib(), len(os.listdir("/proc/self/fd"))
        for _ in range(200):
            results = list(ex.map(_tasks.array_double, [array] * 50, chunksize=1))
            assert all(r[0] == 2.0 and r[-1] == 2.0 for r in results)
            del results
        # 10,000 tasks ran: a leak would hold a descriptor (or 256 KiB) each. The arena may
        # keep up to 64 free blocks, and how many are in flight at once varies a little.
        assert len(os.listdir("/proc/self/fd")) - fds < 32
        assert _rss_kib() - rss < 20 * 1024
        assert _shmem_kib() - shmem < 20 * 1024


def test_without_shared_memory_buffers_are_copied_inline(monkeypatch, no_leaks):
    """If no memfd can be made (memory or descriptors exhausted), calls still work: their
    buffers are pickled inline, as the standard library does."""
    from multilane import _core

    def no_memory(buffers):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(_core, "pack_buffers", no_memory)
    data, attachments, _ = dumps_oob(np.arange(BIG, dtype=np.float64))
    assert attachments == () and len(data) > BIG * 8
    with multilane.ProcessPoolExecutor(1) as ex:
        assert ex.submit(_tasks.array_sum, np.ones(BIG)).result(TIMEOUT) == BIG


@pytest.mark.heavy
@pytest.mark.skipif(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") < 16 * 2**30,
                    reason="needs 16 GiB of memory")
def test_an_array_over_2_gib(no_leaks):
    array = np.ones(2**31 // 8 + 1024, dtype=np.float64)  # 2 GiB + 8 KiB
    with multilane.ProcessPoolExecutor(1) as ex:
        assert ex.submit(_tasks.array_sum, array).result(TIMEOUT * 4) == array.size


def _meminfo_kib(field):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _shmem_kib():
    return _meminfo_kib("Shmem")


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise KeyError("VmRSS")


@pytest.mark.parametrize("ending", ["killed", "shut down"])
def test_blocks_a_worker_never_released_are_closed_when_it_is_gone(no_leaks, ending):
    """A task keeps its argument alive in the worker, so the block is never released; when
    the worker dies (or the pool shuts down) the parent closes the block instead of keeping
    it for reuse (no_leaks checks the descriptor is gone)."""
    with multilane.ProcessPoolExecutor(1) as ex:
        pid = ex.submit(_tasks.stash, np.ones(BIG)).result(TIMEOUT)
        if ending == "killed":
            os.kill(pid, signal.SIGKILL)
            assert ex.submit(_tasks.array_sum, np.ones(BIG)).result(TIMEOUT) == BIG


# ---------------------------------------------------------------- multilane.shared


def test_a_shared_array_is_sent_to_each_worker_once(no_leaks):
    from multilane import _core

    array = multilane.shared(np.arange(BIG * 8, dtype=np.float64))
    assert not array.flags.writeable
    with multilane.ProcessPoolExecutor(2) as ex:
        assert ex.submit(_tasks.array_sum, array).result(TIMEOUT) == array.sum()
        made = _core.arena_stats()["blocks_made"]
        results = list(ex.map(_tasks.array_sum, [array] * 20 + [array[100:BIG]] * 20,
                              chunksize=1))
        assert results == [array.sum()] * 20 + [array[100:BIG].sum()] * 20
        assert _core.arena_stats()["blocks_made"] == made  # no call copied the array
    del array


def test_shared_objects_are_read_only_everywhere(no_leaks):
    array = multilane.shared(np.zeros(BIG))
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 1
    with multilane.ProcessPoolExecutor(1) as ex:
        with pytest.raises(ValueError, match="read-only"):
            ex.submit(_tasks.try_to_write, array).result(TIMEOUT)


def test_shared_structures_keep_their_shape(no_leaks):
    data = multilane.shared({"x": np.ones(BIG), "y": [np.full(BIG, 2.0), np.arange(10.0)]})
    assert data["y"][1].tolist() == list(range(10))
    with multilane.ProcessPoolExecutor(2) as ex:
        assert ex.submit(_tasks.sums, data).result(TIMEOUT) == BIG * 3 + 45
    with multilane.Executor(threads=2) as ex:  # in-process lanes simply use the object
        assert ex.options(lane="thread").submit(_tasks.sums, data).result(TIMEOUT) == BIG * 3 + 45


def test_small_objects_are_not_worth_sharing():
    small = {"a": np.arange(10)}
    assert multilane.shared(small) is small


def test_a_replacement_worker_gets_the_shared_region_again(no_leaks, tmp_path):
    array = multilane.shared(np.ones(BIG))
    with multilane.ProcessPoolExecutor(1) as ex:
        assert ex.submit(_tasks.array_sum, array).result(TIMEOUT) == BIG
        pid = ex.submit(_tasks.get_pid).result(TIMEOUT)
        os.kill(pid, signal.SIGKILL)
        assert ex.submit(_tasks.array_sum, array).result(TIMEOUT) == BIG
        assert ex.submit(_tasks.get_pid).result(TIMEOUT) != pid


def test_a_dropped_shared_object_is_forgotten_and_its_block_reused(no_leaks):
    import gc

    from multilane import _core

    with multilane.ProcessPoolExecutor(1) as ex:
        array = multilane.shared(np.ones(BIG * 4))
        assert ex.submit(_tasks.array_sum, array).result(TIMEOUT) == BIG * 4
        del array
        gc.collect()
        ex.submit(_tasks.identity, 0).result(TIMEOUT)  # the worker has read FORGET_SHARED
        reused = _core.arena_stats()["blocks_reused"]
        again = multilane.shared(np.ones(BIG * 4))  # same size: the freed block fits
        assert _core.arena_stats()["blocks_reused"] == reused + 1
        del again


def test_a_shared_object_can_die_while_its_table_is_locked(no_leaks):
    # The garbage collector runs finalizers wherever it runs, even inside the lock of the
    # shared-region table on this very thread; a finalizer that waited for the lock hung
    # the Python 3.12 suite there once. Dropping the object under the lock does the same.
    from multilane.buffers import _regions as _shared

    forgotten = []

    class Listener:
        def forget_region(self, region_id):
            forgotten.append(region_id)

    listener = Listener()
    _shared.on_forget(listener)
    array = multilane.shared(np.ones(BIG))
    (region, _, _) = _shared.find(array.ctypes.data, array.nbytes)
    with _shared._lock:
        del array  # its finalizer runs here and must not wait
    assert _shared.find(0, 1) is None  # the next user of the table drops the span
    assert region.id in forgotten and not _shared.has_regions()


def test_a_worker_keeps_a_block_mapped_for_its_next_trip(no_leaks):
    # The arena reuses its block for the next large argument and the worker its mapping
    # of it: no page-table work for a block that comes back.
    array = np.ones(BIG * 8)
    with multilane.ProcessPoolExecutor(1) as ex:
        assert ex.submit(_tasks.array_sum, array).result(TIMEOUT) == BIG * 8
        assert ex.submit(_tasks.kept_mapped_bytes).result(TIMEOUT) >= array.nbytes
        assert ex.submit(_tasks.array_sum, array * 3).result(TIMEOUT) == BIG * 24


def test_pickles_too_large_for_the_ring_reuse_arena_blocks_both_ways(no_leaks):
    # A long str has no buffer to send out of band: its whole pickle goes beside the frame
    # (a blob). Blobs go in blocks of the sender's arena, which come back once received,
    # instead of a fresh memfd (and fresh pages) per call.
    from multilane import _core

    text = "blob " * (1 << 18)  # 1.25 MiB, far over the ring's inline limit
    with multilane.ProcessPoolExecutor(1) as ex:
        assert ex.submit(_tasks.identity, text).result(TIMEOUT) == text
        here = _core.arena_stats()
        there = ex.submit(_tasks.arena_stats).result(TIMEOUT)
        for i in range(20):
            assert ex.submit(_tasks.identity, text + str(i)).result(TIMEOUT) == text + str(i)
        assert _core.arena_stats()["blocks_made"] == here["blocks_made"]
        assert _core.arena_stats()["blocks_reused"] >= here["blocks_reused"] + 20
        now_there = ex.submit(_tasks.arena_stats).result(TIMEOUT)
        assert now_there["blocks_made"] == there["blocks_made"]
        assert now_there["blocks_reused"] >= there["blocks_reused"] + 20


@pytest.mark.parametrize("every", [1, 7, 4096])
def test_writes_a_task_made_to_its_argument_never_reach_the_next_task(no_leaks, every):
    # A block comes back to the same worker with new bytes: pages the last task wrote
    # (its private copies) must not show through, whether it wrote all of them or a few.
    with multilane.ProcessPoolExecutor(1) as ex:
        for value in (1.0, 2.0, 3.0, 4.0):
            array = np.full(BIG * 8, value)
            assert ex.submit(_tasks.scribble_then_sum, array, every).result(TIMEOUT) == \
                value * BIG * 8
            assert array[0] == value  # and the sender's own array is untouched


def test_results_written_by_the_caller_never_reach_the_next_result(no_leaks):
    # The same in the other direction: the worker's block comes back to the parent with
    # each result, and the parent keeps it mapped unless it wrote to a result.
    from multilane import _core

    with multilane.ProcessPoolExecutor(1) as ex:
        for value in (1.0, 2.0, 3.0, 4.0):
            result = ex.submit(_tasks.array_double, np.full(BIG * 8, value)).result(TIMEOUT)
            assert (result == 2 * value).all()
            if value == 2.0:
                result[::7] = -1.0
            del result
        _core.settle_kept_mappings()
        assert _core.arena_stats()["kept_mapped_bytes"] >= BIG * 8 * 8

