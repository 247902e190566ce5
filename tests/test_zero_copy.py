"""multilane.zero_copy(): large NumPy arrays made in shared memory go to tasks uncopied."""

from __future__ import annotations

import os
import signal
import threading
import warnings

import _tasks
import numpy as np
import pytest
from conftest import TIMEOUT, wait_for_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_buffers import _rss_kib, _shmem_kib

import multilane
from multilane import _core
from multilane.buffers._serialize import MAX_BLOCKS, dumps_oob, loads_oob

MIB = 2**20
F64_MIB = MIB // 8  # float64 elements in 1 MiB: the allocator's threshold
OURS = "multilane_shared_memory"
NUMPYS = "default_allocator"


@pytest.fixture
def settled(no_leaks):
    """no_leaks, once the arena has let go of its free blocks: an array freed after its
    pool shut down leaves its block there for the next large array, which is no leak."""
    yield
    _core.arena_trim()


def stats() -> multilane.AllocatorStatistics:
    return multilane.zero_copy.statistics()


def parent_blocks() -> tuple[int, int]:
    """(blocks made, blocks reused) by this process's arena: a copy takes one of them."""
    s = _core.arena_stats()
    return s["blocks_made"], s["blocks_reused"]


# ---------------------------------------------------------------- the allocator


def test_large_arrays_are_made_in_shared_memory_and_small_ones_are_not(settled):
    before = stats()
    with multilane.zero_copy():
        large = np.ones(F64_MIB)
        small = np.ones(F64_MIB - 1)  # NumPy's allocator makes it (the array names ours)
        zeros = np.zeros((512, 512))  # calloc
    after = np.ones(F64_MIB)
    assert _tasks.allocated_by(large) == OURS
    assert _tasks.allocated_by(after) == NUMPYS, "the with block is over"
    assert zeros.sum() == 0 and large.sum() == F64_MIB and small.sum() == F64_MIB - 1
    now = stats()
    assert (now.live_arrays - before.live_arrays, now.live_bytes - before.live_bytes) == (
        2, 3 * MIB)
    del large, zeros
    assert stats().live_arrays == before.live_arrays


def test_it_stays_on_until_turned_off(settled):
    multilane.zero_copy()
    try:
        on = np.ones(F64_MIB)
    finally:
        multilane.zero_copy(False)
    off = np.ones(F64_MIB)
    multilane.zero_copy(False)  # off already: nothing changes
    assert (_tasks.allocated_by(on), _tasks.allocated_by(off)) == (OURS, NUMPYS)
    assert _tasks.allocated_by(np.ones(F64_MIB)) == NUMPYS


def test_it_applies_to_the_calling_thread_only(settled):
    seen = []
    with multilane.zero_copy():
        thread = threading.Thread(target=lambda: seen.append(_tasks.allocated_by(
            np.ones(F64_MIB))))
        thread.start()
        thread.join(TIMEOUT)
        mine = np.ones(F64_MIB)
    assert seen == [NUMPYS]
    assert _tasks.allocated_by(mine) == OURS


def test_a_freed_block_is_reused_for_the_next_array(settled):
    with multilane.zero_copy():
        np.ones(8 * F64_MIB).sum()  # made and freed
        (made, reused), allocations = parent_blocks(), stats().allocations
        for _ in range(5):
            (np.ones(8 * F64_MIB) + np.ones(8 * F64_MIB)).sum()  # and temporaries
    allocations = stats().allocations - allocations
    assert allocations >= 10
    assert parent_blocks() == (made + 1, reused + allocations - 1), "one more block, then none"


def test_resizing_keeps_the_data(settled):
    live = stats().live_bytes
    with multilane.zero_copy():
        a = np.arange(F64_MIB, dtype=np.float64)
        a.resize(3 * F64_MIB, refcheck=False)
        assert np.array_equal(a[:F64_MIB], np.arange(F64_MIB)) and not a[F64_MIB:].any()
        assert stats().live_bytes == live + 3 * MIB
        a.resize(10, refcheck=False)
    assert np.array_equal(a, np.arange(10))
    assert stats().live_bytes == live, "10 elements went back to NumPy's allocator"


def test_an_old_numpy_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(multilane.buffers._zero_copy, "_NEP49", (99, 0))
    with pytest.raises(ImportError) as raised:
        multilane.zero_copy()
    assert str(raised.value) == (
        f"multilane.zero_copy needs NumPy 99.0 or later, not {np.__version__}")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["f8", "f4", "i1", "u2", "c16", "?", "U3", "f8,i4"]),  # datetimes: in band
       st.sampled_from([(-1,), (-1, 7), (13, -1, 3)]), st.sampled_from("CF"),
       st.integers(0, 4096))
def test_any_array_made_here_round_trips_uncopied(dtype, shape, order, cut):
    """In one process: the pickle names the allocation's own block, with the offset of
    each slice, and the mapped buffers hold exactly the array's bytes."""
    dtype = np.dtype(dtype)
    count = 2 * MIB // dtype.itemsize
    shape = tuple(count // abs(np.prod(shape)) if side == -1 else side for side in shape)
    source = np.frombuffer(np.random.default_rng(cut).bytes(int(np.prod(shape)) * dtype.itemsize),
                           dtype=dtype).reshape(shape)
    with multilane.zero_copy():
        array = np.empty(shape, dtype, order=order)
        array[...] = source
    flat = array.reshape(-1, order="A")
    parts = {"whole": array, "tail": flat[cut:], "head": flat[:flat.size - cut]}
    data, attachments, _ = dumps_oob(parts)
    assert len(attachments) == 1, "the one block, no copy"
    back = loads_oob(data, attachments)
    for name, part in parts.items():
        assert back[name].dtype == part.dtype and back[name].shape == part.shape, name
        assert back[name].tobytes(order="A") == part.tobytes(order="A"), name
    assert back["whole"].flags.f_contiguous == array.flags.f_contiguous


# ---------------------------------------------------------------- through a pool


def test_an_argument_goes_uncopied_and_the_worker_sees_it_as_sent(settled, tmp_path):
    with multilane.zero_copy():
        array = np.zeros(4 * F64_MIB)
    gate = str(tmp_path / "gate")
    with multilane.ProcessPoolExecutor(1) as ex:
        assert ex.submit(_tasks.array_sum, np.ones(10)).result(TIMEOUT) == 10  # warm
        before, blocks = stats(), parent_blocks()
        future = ex.submit(_tasks.sum_after_file, array, gate)
        array[:] = 5  # after the send: the worker must still see zeros
        open(gate, "w").close()
        assert future.result(TIMEOUT) == 0.0
        assert array.sum() == 5 * array.size, "the sender's own array keeps its writes"
        after = stats()
        assert after.sent_without_copy == before.sent_without_copy + 1
        assert after.snapshots == before.snapshots + 1
        assert parent_blocks() == blocks, "nothing was copied into a block"
        # Written since it was sent: it is copied now, and the worker sees what is there.
        assert ex.submit(_tasks.array_sum, array).result(TIMEOUT) == 5 * array.size
        assert stats().copied_after_write == after.copied_after_write + 1
        assert parent_blocks() != blocks


def test_an_array_freed_while_its_task_runs_stays_intact_for_the_task(settled, tmp_path):
    """The block goes back to the arena when the array dies, but is reused only once the
    worker let go: the next large array is made elsewhere, and the task sees its bytes."""
    with multilane.zero_copy():
        array = np.full(4 * F64_MIB, 3.0)
    gate = str(tmp_path / "gate")
    with multilane.ProcessPoolExecutor(1) as ex:
        future = ex.submit(_tasks.sum_after_file, array, gate)
        del array
        with multilane.zero_copy():
            other = np.full(4 * F64_MIB, 7.0)  # would take the block if it were free
        open(gate, "w").close()
        assert future.result(TIMEOUT) == 3.0 * 4 * F64_MIB
        assert other.sum() == 7.0 * 4 * F64_MIB
        del other, future


def test_an_unchanged_array_and_its_slices_go_again_uncopied(settled):
    with multilane.zero_copy():
        array = np.arange(8 * F64_MIB, dtype=np.float64)
    parts = [array, array[1000:], array[:3 * F64_MIB], array.reshape(-1, 8)[F64_MIB // 4:]]
    with multilane.ProcessPoolExecutor(2) as ex:
        assert ex.submit(_tasks.array_sum, np.ones(10)).result(TIMEOUT) == 10  # warm
        before, blocks = stats(), parent_blocks()
        for _ in range(3):
            futures = [ex.submit(_tasks.array_sum, part) for part in parts]
            assert [f.result(TIMEOUT) for f in futures] == [float(p.sum()) for p in parts]
        after = stats()
    assert after.sent_without_copy - before.sent_without_copy == 3 * len(parts)
    assert after.snapshots - before.snapshots == 1
    assert after.copied_after_write == before.copied_after_write
    assert parent_blocks() == blocks


def test_a_worker_writing_its_argument_changes_nothing_elsewhere(settled):
    with multilane.zero_copy():
        array = np.ones(2 * F64_MIB)
    with multilane.ProcessPoolExecutor(1) as ex:
        # The worker writes every element of what it received, then gets the same block again.
        assert ex.submit(_tasks.scribble_then_sum, array, 1).result(TIMEOUT) == array.size
        assert ex.submit(_tasks.array_sum, array).result(TIMEOUT) == array.size
        assert ex.submit(_tasks.scribble_then_sum, array[F64_MIB:], 3).result(TIMEOUT) == (
            F64_MIB)
        assert ex.submit(_tasks.array_sum, array).result(TIMEOUT) == array.size
    assert (array == 1).all()


def test_results_come_back_uncopied_from_workers_that_ask_for_it(settled):
    with multilane.ProcessPoolExecutor(1, initializer=multilane.zero_copy) as ex:
        results = [ex.submit(_tasks.make_array, 4, float(i)).result(TIMEOUT) for i in range(3)]
        doubled = ex.submit(np.multiply, results[2], 2).result(TIMEOUT)
        small = ex.submit(_tasks.make_array, 0, 1.0).result(TIMEOUT)
        worker = ex.submit(_tasks.allocator_statistics).result(TIMEOUT)
    assert (worker.sent_without_copy, worker.allocations) == (4, 4), "small ones: NumPy's"
    assert small.size == 0
    for i, result in enumerate(results):  # valid after the pool shut down, and writable
        assert result.sum() == i * result.size
        result += 1
    assert (doubled == 4.0).all()


def test_an_executor_s_process_lane_sends_uncopied_too(settled):
    with multilane.zero_copy():
        array = np.ones(2 * F64_MIB)
    before = stats().sent_without_copy
    with multilane.Executor(processes=1) as ex:
        for lane in ("process", "thread"):
            future = ex.options(lane=lane).submit(_tasks.array_sum, array)
            assert future.result(TIMEOUT) == array.size
    assert stats().sent_without_copy == before + 1


def test_more_blocks_than_a_call_can_name_are_copied(settled):
    with multilane.zero_copy():
        arrays = [np.full(F64_MIB, float(i)) for i in range(MAX_BLOCKS + 5)]
    before = stats().sent_without_copy
    with multilane.ProcessPoolExecutor(1) as ex:
        total = ex.submit(_tasks.sums, {"arrays": arrays}).result(TIMEOUT)
    assert total == sum(float(a.sum()) for a in arrays)
    assert stats().sent_without_copy == before + MAX_BLOCKS


def test_a_crash_with_an_uncopied_buffer_in_flight_loses_nothing(settled, tmp_path):
    """The worker dies holding the parent's own block: its future fails, the array is
    intact and goes again to the replacement, and its memory goes back once freed (the
    block, which a dead worker may have held, is closed instead of reused)."""
    shmem_before = _shmem_kib()
    with multilane.zero_copy():
        array = np.ones(64 * F64_MIB)
    with multilane.ProcessPoolExecutor(1) as ex:
        path = str(tmp_path / "pid")
        future = ex.submit(_tasks.hold_array_and_announce, array, path)
        os.kill(wait_for_file(path), signal.SIGKILL)
        with pytest.raises(multilane.WorkerCrashed):
            future.result(TIMEOUT)
        assert ex.submit(_tasks.array_sum, array).result(TIMEOUT) == array.size
    assert (array == 1).all()
    del array, future
    _core.arena_trim()
    assert _shmem_kib() - shmem_before < 32 * 1024  # 64 MiB were sent


@pytest.mark.heavy
def test_soak_of_2000_uncopied_tasks_keeps_memory_and_descriptors_flat(settled):
    with multilane.ProcessPoolExecutor(2) as ex:
        def round_of(n: int) -> None:
            with multilane.zero_copy():
                arrays = [np.full(2 * F64_MIB, float(i)) for i in range(n)]
            futures = [ex.submit(_tasks.array_sum, a) for a in arrays]
            assert [f.result(TIMEOUT) for f in futures] == [2.0 * F64_MIB * i for i in range(n)]

        for _ in range(3):
            round_of(20)  # warm: the arena holds what 20 arrays in flight need
        rss, shmem, fds = _rss_kib(), _shmem_kib(), len(os.listdir("/proc/self/fd"))
        before = stats().sent_without_copy
        for _ in range(100):
            round_of(20)
        assert stats().sent_without_copy - before == 2000
        assert len(os.listdir("/proc/self/fd")) - fds < 32
        assert _rss_kib() - rss < 20 * 1024
        assert _shmem_kib() - shmem < 40 * 1024
        assert stats().live_arrays == 0


def test_a_forked_child_and_its_parent_keep_their_own_bytes(settled):
    """As with ordinary memory: what one side writes after a fork, the other never sees."""
    with multilane.zero_copy():
        array = np.zeros(2 * F64_MIB)
    child_wrote, parent_wrote = os.pipe(), os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads alive
        pid = os.fork()
    if pid == 0:  # the child: only os and NumPy from here on, then _exit
        code = 2
        try:
            array[:F64_MIB] = 1
            os.write(child_wrote[1], b"w")
            os.read(parent_wrote[0], 1)
            code = 0 if array[F64_MIB:].sum() == 0 and array[:F64_MIB].sum() == F64_MIB else 1
        finally:
            os._exit(code)
    try:
        assert os.read(child_wrote[0], 1) == b"w"
        assert array.sum() == 0, "the child's write reached its parent"
        array[F64_MIB:] = 2
        os.write(parent_wrote[1], b"g")
    finally:
        _, status = os.waitpid(pid, 0)
        for fd in (*child_wrote, *parent_wrote):
            os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, "the parent's write reached its child"
    assert array[F64_MIB:].sum() == 2 * F64_MIB
