"""Frame kinds and flags shared by the parent and its workers (mirrors cpp/.../frame.hpp)."""

from __future__ import annotations

# Frame kinds (FrameKind in frame.hpp); 0 is the hub's "a worker exited" event.
EXIT = 0
INIT = 1
READY = 2
FUNCTION = 3
CALL = 4
RESULT = 5
ERROR = 6
CANCEL = 7
FORGET = 8
SHUTDOWN = 9
SHARED = 10  # parent -> worker: the attachment holds shared region `aux` (multilane.shared)
FORGET_SHARED = 11  # parent -> worker: drop shared region `aux`

# CALL flags
CALL_INLINE_FN = 1  # the payload is (fn, args, kwargs); aux is unused
CALL_CHUNK = 2  # the payload is a list of argument tuples; the result is a list
CALL_CHUNK_SINGLE = 4  # with CALL_CHUNK: a list of single arguments, not tuples
CALL_SHARED = 8  # the payload is (plan, pickle): some buffers are in shared regions
# READY flags
READY_FAILED = 1  # the initializer raised; the payload is the pickled (exception, traceback)
# ERROR flags
ERROR_BARE = 1  # the payload is (repr, type name, traceback): the exception did not pickle
ERROR_DECODE = 2  # the call (its function or arguments) did not unpickle in the worker
# RESULT and ERROR flags
REPLY_RETIRE = 1 << 8  # the worker is over its memory limit: send it nothing more

FDS_PREFIX = "--multilane-fds="


def parse_fds(argv: list[str]) -> tuple[int, int, int, int]:
    """The (link, hub, socket, lifeline) descriptors the hub passed on the command line."""
    for arg in argv:
        if arg.startswith(FDS_PREFIX):
            parts = arg[len(FDS_PREFIX):].split(",")
            if len(parts) == 4:
                link, hub, sock, lifeline = (int(p) for p in parts)
                return link, hub, sock, lifeline
    raise SystemExit(
        "multilane.worker is started by a multilane pool, not by hand "
        f"(missing {FDS_PREFIX}LINK,HUB,SOCKET,LIFELINE)"
    )
