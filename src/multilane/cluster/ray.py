"""The cluster lane on Ray: ``multilane.Executor(cluster="ray")``.

Ray has no ``concurrent.futures`` executor of its own; this backend runs each call as a
remote function and follows it through ``ObjectRef.future()``. Without an address it
starts a local Ray instance (``ray.init``, no dashboard, the object store sized by
``object_store_bytes``) unless one is running in this process already, and shuts down
only the one it started.

A worker lost while running a call (``WorkerCrashedError``, ``NodeDiedError``, killed for
memory) fails it with :class:`multilane.WorkerCrashed`; Ray's own retries are off, the
lane applies the executor's. An exception the call raised arrives as itself, not wrapped
in Ray's ``RayTaskError``, with the worker's traceback as its ``__cause__``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

from .._cores import usable_cores
from ..errors import RemoteTraceback, WorkerCrashed
from ._backend import Done

__all__ = ["Ray"]

_OBJECT_STORE_BYTES = 512 * 2**20  # enough for the lane's own use; Ray's default is 30% of RAM


class Ray:
    """A Ray cluster for the cluster lane.

    ``address``: a running cluster's (``"ray://host:10001"`` or ``"auto"``); None starts a
    local one with ``cpus`` CPUs (default: the usable cores) and an object store of
    ``object_store_bytes``. ``window``: calls on the cluster at once at most (default:
    the lane's). Other ``init_options`` go to ``ray.init``.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, cpus: int | None = None,
                 object_store_bytes: int = _OBJECT_STORE_BYTES, window: int | None = None,
                 **init_options: Any) -> None:
        self.address = address
        self.cpus = cpus
        self.local = address is None  # started here (see Cluster)
        self.window = window
        if importlib.util.find_spec("ray") is None:
            raise ImportError("the Ray cluster lane needs Ray: pip install 'multilane[ray]'")
        self._object_store_bytes = object_store_bytes
        self._init_options = init_options
        self._owned = False
        self._remotes: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return f"multilane.cluster.Ray({self.address or 'local'})"

    def start(self) -> None:
        import ray

        if ray.is_initialized():
            return  # the program's own Ray: used, never shut down here
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "configure_logging": False}
        if self.address is None:
            # Workers find modules where this process does, as the local pool's do.
            path = os.pathsep.join(entry for entry in sys.path if entry)
            options.update(num_cpus=self.cpus or usable_cores(),
                           object_store_memory=self._object_store_bytes,
                           runtime_env={"env_vars": {"PYTHONPATH": path}})
        else:
            options["address"] = self.address
        options.update(self._init_options)
        ray.init(**options)
        self._owned = True

    def slots(self) -> int:
        import ray

        return int(ray.cluster_resources().get("CPU", 1))

    def send(self, fn: Callable[..., Any], args: tuple, done: Done) -> Any:
        remote = self._remotes.get(fn)
        if remote is None:
            import ray

            remote = self._remotes[fn] = ray.remote(fn).options(
                max_retries=0, retry_exceptions=False)
        ref = remote.remote(*args)
        ref.future().add_done_callback(lambda future: done(*_outcome(future)))
        return ref

    def cancel(self, handle: Any) -> bool:
        import ray

        try:
            ray.cancel(handle, force=True)  # kills the worker process running it
        except Exception:  # already finished, or its worker already gone
            pass
        return True

    def share(self, obj: Any) -> Any:
        import ray

        return ray.put(obj)

    def release(self, shared: Any) -> None:
        pass  # an ObjectRef frees its object when its last reference goes

    def close(self) -> None:
        self._remotes.clear()
        if self._owned:
            import ray

            self._owned = False
            ray.shutdown()


def _outcome(future: Any) -> tuple[Any, BaseException | None]:
    """(result, None) or (None, the exception) of a call's ended future."""
    from ray import exceptions

    try:
        return future.result(), None
    except exceptions.RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, BaseException):
            cause.__cause__ = RemoteTraceback(f'\n"""\n{exc}"""')  # type: ignore[arg-type]
            return None, cause
        return None, exc
    except (exceptions.WorkerCrashedError, exceptions.NodeDiedError,
            exceptions.OutOfMemoryError, exceptions.ObjectLostError) as exc:
        crashed = WorkerCrashed(f"a Ray worker died while running the call ({exc})")
        crashed.__cause__ = exc
        return None, crashed
    except BaseException as exc:
        return None, exc
