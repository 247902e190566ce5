"""What the cluster lane asks of a cluster: the protocol Dask and Ray implement.

A backend only moves calls: it starts or joins a cluster, sends one call, reports how it
ended, places a shared object on every worker, and closes. Everything a user sees of a
call (its future, timeout, retries, the bounded window of calls in flight, which
arguments are shared) is the lane's (``_lane.py``), the same for every backend, so a
third cluster needs only this class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["Cluster", "Done"]

Done = Callable[[Any, "BaseException | None"], None]  # (result, exception): how a call ended


@runtime_checkable
class Cluster(Protocol):
    """A cluster the lane can send calls to."""

    #: Short name for messages and statistics ("dask", "ray").
    name: str
    #: Calls on the cluster at once at most (None: the lane's default); more wait here.
    window: int | None
    # Optional, read with getattr: ``local = False`` says the cluster was joined, not
    # started on this machine, so the auto lane weighs it against the local lanes (one
    # started here shares this machine's cores, and a backend without the attribute is
    # taken to be such).

    def start(self) -> None:
        """Starts the cluster this backend owns, or connects to the one it was given."""

    def slots(self) -> int:
        """How many calls the cluster runs at once now (its workers' threads or CPUs)."""

    def send(self, fn: Callable[..., Any], args: tuple, done: Done) -> Any:
        """Runs ``fn(*args)`` on the cluster; a handle for the call. A handle among
        ``args`` (top level only) that ``share`` returned arrives as its object.

        Once the call has ended, ``done(result, None)`` or ``done(None, exception)`` is
        called, once, from any thread (possibly before ``send`` returns). A worker lost
        while running the call is :class:`multilane.WorkerCrashed`."""

    def cancel(self, handle: Any) -> bool:
        """Cancels the call; its outcome is no longer asked for. True if it is stopped
        (or never started), False if it may run on in its worker."""

    def share(self, obj: Any) -> Any:
        """Places ``obj`` on every worker once; a handle to pass to ``send``."""

    def release(self, shared: Any) -> None:
        """The shared object is no longer needed: the cluster may free it."""

    def close(self) -> None:
        """Disconnects, and stops the cluster if this backend started it."""
