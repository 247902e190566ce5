"""Pickling across the process boundary: protocol 5, cloudpickle where plain pickle cannot.

Calls and results travel with their large buffers out of band: pickle protocol 5 hands
each contiguous buffer (NumPy arrays, and bytes, bytearray or memoryview passed as an
argument or returned) to a callback instead of copying it into the pickle. A buffer of
``OOB_MIN`` bytes or more that multilane's NumPy allocator made goes as its own memfd
block, uncopied; the others are copied once into an Attachment (a memfd). Either way the
receiver maps them instead of copying them again.
"""

from __future__ import annotations

import pickle
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import multilane._core as _core

from .._calls import describe
from . import _regions

if TYPE_CHECKING:
    from ..errors import SerializationError

PROTOCOL = 5
# What plain pickle raises for objects it cannot handle (locks, lambdas, local classes...).
_PICKLE_FAILURES = (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError)
_MAIN = b"__main__"
# Buffers at least this large travel out of band; smaller ones are cheaper to copy inline.
OOB_MIN = 1 << 16
# Types pickle always copies inline; as a call's arguments or a result they are wrapped.
RAW_TYPES = (bytes, bytearray, memoryview)


def _cloudpickle_dumps(obj: Any, buffer_callback: Any = None) -> bytes:
    import cloudpickle  # imported on first need: most tasks never pay for it

    return cloudpickle.dumps(obj, protocol=PROTOCOL, buffer_callback=buffer_callback)


def dumps(obj: Any) -> bytes:
    """Pickles ``obj`` for another interpreter.

    Plain pickle first (fast, in C). A reference to ``__main__`` would not resolve in a
    worker (its ``__main__`` is the worker module), and lambdas, closures and local
    classes do not pickle by reference at all: both go through cloudpickle, which pickles
    them by value. Raises whatever pickling raised if both fail.
    """
    return _dumps(obj, None, None)


def _dumps(obj: Any, buffer_callback: Any, reset: Any) -> bytes:
    try:
        data = pickle.dumps(obj, protocol=PROTOCOL, buffer_callback=buffer_callback)
        # Maybe a __main__ reference: a false alarm only costs a slower pickle.
        if _MAIN not in data:
            return data
    except _PICKLE_FAILURES:
        pass
    if reset is not None:
        reset()  # cloudpickle hands the buffers over again
    return _cloudpickle_dumps(obj, buffer_callback)


# Where a plan (see ``dumps_oob``) finds an out-of-band buffer on the receiving side:
ATTACHED = 0  # (ATTACHED, attachment index, buffer index, offset, length)
REGION = 1  # (REGION, shared region id, buffer index, offset, length)
_PACKED = 2  # while pickling only: (_PACKED, index among the buffers to copy, length)
# Blocks of multilane's NumPy allocator one call may name; any more are copied (one
# attachment more is the copies', and a frame carries 64).
MAX_BLOCKS = 63


def dumps_oob(obj: Any, allocated: bool = True) -> tuple[bytes, tuple, tuple]:
    """(pickle, attachments, shared regions): ``obj`` pickled, its large buffers apart.

    Each large buffer travels in one of three ways. One that lies in a ``multilane.shared``
    region is named by region and offset. One that lies in an allocation of multilane's
    NumPy allocator (``multilane.zero_copy``) goes as that allocation's own block, not
    copied at all (unless ``allocated`` is false, or it was written since it was last
    sent). Every other one is copied into one packed attachment. Without such buffers the
    pickle is plain; with them it is ``(plan, pickle)``, the plan naming for each
    out-of-band buffer where the receiver finds it (``loads_oob`` reads it). If no memfd
    can be made (memory is short), everything is pickled inline.
    """
    try:  # the common case, without a large buffer: one plain pickle, nothing allocated
        data = pickle.dumps(obj, protocol=PROTOCOL, buffer_callback=_small_only)
        if _MAIN not in data:
            return data, (), ()
    except _HasLargeBuffer:
        pass
    except _PICKLE_FAILURES:
        pass
    raws: list[memoryview] = []  # buffers to copy into the packed attachment
    plan: list[tuple] = []
    regions: dict[int, Any] = {}
    blocks: dict[int, int] = {}  # a block's descriptor -> its index among the attachments
    attachments: list[Any] = []

    def take(buffer: pickle.PickleBuffer) -> bool:
        try:
            raw = buffer.raw()
        except BufferError:  # not contiguous: pickled inline
            return True
        nbytes = raw.nbytes
        if nbytes < OOB_MIN:
            return True
        if _regions.has_regions():
            found = _regions.find(_address(raw), nbytes)
            if found is not None:
                region, index, offset = found
                regions[region.id] = region
                plan.append((REGION, region.id, index, offset, nbytes))
                return False
        allocation = (_allocated_block(raw) if allocated and len(attachments) < MAX_BLOCKS
                      else None)
        if allocation is not None:
            block, offset = allocation
            where = blocks.get(block.fd)
            if where is None:
                where = blocks[block.fd] = len(attachments)
                attachments.append(block)
            plan.append((ATTACHED, where, 0, offset, nbytes))
            return False
        plan.append((_PACKED, len(raws), nbytes))
        raws.append(raw)
        return False

    def reset() -> None:
        raws.clear()
        plan.clear()
        regions.clear()
        blocks.clear()
        attachments.clear()

    data = _dumps(obj, take, reset)
    if raws:

        try:
            attachments.append(_core.pack_buffers(raws))
        except OSError:
            return dumps(obj), (), ()
        packed = len(attachments) - 1
        plan = [(ATTACHED, packed, step[1], 0, step[2]) if step[0] == _PACKED else step
                for step in plan]
    if not plan:
        return data, (), ()
    return pickle.dumps((plan, data), protocol=PROTOCOL), tuple(attachments), tuple(
        regions.values())


def _allocated_block(raw: memoryview) -> tuple | None:
    """(block, offset) if ``raw`` can go as its allocation's own block (see ``dumps_oob``)."""

    try:
        return _core.heap_share(raw)
    except OSError:  # the remap failed (no memory for page tables): copy it instead
        return None


class _HasLargeBuffer(Exception):
    """Raised by ``_small_only`` to leave the fast path of ``dumps_oob``."""


def _small_only(buffer: pickle.PickleBuffer) -> bool:
    """A buffer callback for the fast path: small buffers inline, a large one aborts."""
    try:
        if buffer.raw().nbytes < OOB_MIN:
            return True
    except BufferError:
        return True
    raise _HasLargeBuffer


def loads_oob(data: bytes, attachments: Any, regions: dict[int, list] | None = None) -> Any:
    """Unpickles what ``dumps_oob`` made; attached buffers are mapped, not copied.
    ``regions`` (id -> mapped buffers) is given when the pickle names shared regions."""
    if not attachments and regions is None:
        return pickle.loads(data)
    plan, data = pickle.loads(data)
    mapped = [attachment.map() for attachment in attachments or ()]
    buffers = []
    for kind, source, index, offset, length in plan:
        buffer = (mapped[source] if kind == ATTACHED else regions[source])[index]  # type: ignore[index]
        if offset or length != len(buffer):
            buffer = memoryview(buffer)[offset:offset + length]
        buffers.append(buffer)
    return pickle.loads(data, buffers=buffers)


def _address(raw: memoryview) -> int:

    return _core.buffer_address(raw)


class _Raw:
    """A large bytes, bytearray or memoryview sent as an argument or a result: pickle has
    no out-of-band path for these types, so they are wrapped in one that has."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[Any, ...]]:
        kind = type(self.value)
        return _unraw, (0 if kind is bytes else 1 if kind is bytearray else 2,
                        pickle.PickleBuffer(self.value))


def _unraw(kind: int, buffer: Any) -> Any:
    if kind == 2:
        return memoryview(buffer)  # the mapping itself: no copy
    return bytes(buffer) if kind == 0 else bytearray(buffer)  # these types own their bytes


def outband(value: Any) -> Any:
    """``value``, wrapped to travel out of band if it is a large bytes-like object."""
    if type(value) in RAW_TYPES and memoryview(value).nbytes >= OOB_MIN:
        try:
            pickle.PickleBuffer(value).raw()
        except (BufferError, TypeError):
            return value
        return _Raw(value)
    return value


def outband_call(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """A call's arguments with large bytes-like ones wrapped (usually returned as they are)."""
    for value in args:
        if type(value) in RAW_TYPES:
            break
    else:
        if not kwargs:
            return args, kwargs
    return (tuple(outband(value) for value in args),
            {name: outband(value) for name, value in kwargs.items()})


def outband_items(items: Sequence[Any], single: bool = True) -> Sequence[Any]:
    """A chunk's items (single values, or argument tuples unless ``single``), with large
    bytes-like ones wrapped to travel out of band as a call's do (``outband``), if its
    first item holds one: a map's items are mostly alike, and looking at each would cost
    a map of tiny calls a few percent. Inline, 12 arguments of 70 MiB took 3.2 s in
    chunks of two, against 1.1 s as 12 calls."""
    if not items:
        return items
    first = items[0]
    if single:
        return [outband(value) for value in items] if type(first) in RAW_TYPES else items
    if not any(type(value) in RAW_TYPES for value in first):
        return items
    return [tuple(outband(value) for value in args) for args in items]


def dumps_function(fn: Callable[..., Any]) -> bytes:
    """Pickles a callable, naming it in the error if it cannot be pickled."""
    try:
        return dumps(fn)
    except Exception as exc:
        raise _serialization_error(
            f"cannot pickle the function {describe(fn)}: {type(exc).__name__}: {exc}"
        ) from exc


def dumps_call(fn: Callable[..., Any], payload: Any, args: Sequence[Any],
               kwargs: dict) -> tuple[bytes, tuple, tuple]:
    """Pickles a call's payload, large buffers apart (see ``dumps_oob``); on failure names
    the argument that failed and why."""
    try:
        return dumps_oob(payload)
    except Exception as exc:
        raise _name_culprit(fn, args, kwargs, exc) from exc


def _name_culprit(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict,
                  exc: BaseException) -> SerializationError:
    where = f"of {describe(fn)}"
    for index, value in enumerate(args):
        reason = _why_unpicklable(value)
        if reason is not None:
            return _serialization_error(
                f"cannot pickle argument {index} ({type(value).__name__}) {where}: {reason}")
    for name, value in kwargs.items():
        reason = _why_unpicklable(value)
        if reason is not None:
            return _serialization_error(
                f"cannot pickle keyword argument {name!r} ({type(value).__name__}) {where}: "
                f"{reason}")
    reason = _why_unpicklable(fn)
    if reason is not None:
        return _serialization_error(f"cannot pickle the function {describe(fn)}: {reason}")
    return _serialization_error(f"cannot pickle the call {where}: {type(exc).__name__}: {exc}")


def name_unpicklable_item(fn: Callable[..., Any], chunk: Sequence[Any], start: int,
                          exc: BaseException) -> SerializationError:
    """For map: names the input item (by its index in the whole input) that failed."""
    for offset, item in enumerate(chunk):
        reason = _why_unpicklable(item)
        if reason is not None:
            return _serialization_error(
                f"cannot pickle item {start + offset} ({type(item).__name__}) of the input to "
                f"map({describe(fn)}): {reason}")
    return _name_culprit(fn, (), {}, exc)


def _why_unpicklable(value: Any) -> str | None:
    try:
        dumps(value)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def loads(data: bytes) -> Any:
    """Unpickles what ``dumps`` made (cloudpickle output is plain pickle data)."""
    return pickle.loads(data)


def cacheable(fn: Any) -> bool:
    """True for callables that are safe to pickle once and refer to by id afterwards.

    Plain functions and builtins: their identity is their behaviour. Bound methods,
    partials and callable objects carry state that may change between calls, so they
    are pickled with every call, as the standard library does. Functions made by
    ``@multilane.task`` are plain functions with methods attached.
    """
    return isinstance(fn, (types.FunctionType, types.BuiltinFunctionType)) or getattr(
        type(fn), "_multilane_cacheable", False)


class _Spawning:
    """Stands for the Popen of a process being started while an initializer is pickled, so
    that multiprocessing's objects (Queue, Lock, Semaphore, Event, Pipe ends) pickle as
    they do for a standard pool's worker: descriptors travel through multiprocessing's
    resource sharer, each taken once by the process that unpickles it."""

    @staticmethod
    def duplicate_for_child(fd: int) -> int:
        return fd

    @staticmethod
    def DupFd(fd: int) -> Any:  # noqa: N802 -- multiprocessing's name
        from multiprocessing import resource_sharer

        return resource_sharer.DupFd(fd)


def dumps_spawning(obj: Any) -> bytes:
    """``dumps`` as multiprocessing pickles the arguments of a process it starts (objects
    that refuse to pickle at any other time, like a Queue, pickle here)."""
    import copyreg
    import io
    from multiprocessing import context, reduction

    import cloudpickle

    class Pickler(cloudpickle.CloudPickler):
        # Read by the C pickler at construction: multiprocessing's reducers (sockets,
        # connections, ...) on top of cloudpickle's.
        dispatch_table = {**copyreg.dispatch_table, **cloudpickle.CloudPickler.dispatch_table,
                          **reduction.ForkingPickler._extra_reducers}  # type: ignore[attr-defined]  # noqa: SLF001

    context.set_spawning_popen(_Spawning)  # type: ignore[arg-type]  # stands for a Popen
    try:
        buffer = io.BytesIO()
        Pickler(buffer, protocol=PROTOCOL).dump(obj)
        return buffer.getvalue()
    finally:
        context.set_spawning_popen(None)


def _serialization_error(message: str) -> SerializationError:
    # Imported on the first failure: the errors module imports concurrent.futures, which
    # a worker would otherwise import at every start for nothing.
    from ..errors import SerializationError

    return SerializationError(message)
