"""The Python work one round trip cannot avoid, done in one thread with no process boundary:
make a future, pickle the call, unpickle it, call, pickle the result, unpickle it, complete."""
import pickle

from _harness import timed
from _work import identity

from multilane._future import LaneFuture as _Future


def _one(i: int) -> None:
    call = pickle.loads(pickle.dumps(((i,), {}), protocol=5))
    result = pickle.loads(pickle.dumps(identity(*call[0], **call[1]), protocol=5))
    future = _Future()
    future.set_running_or_notify_cancel()
    future.set_result(result)
    future.result()


def run(n: int, runs: int) -> float:
    return min(timed(lambda: [_one(i) for i in range(n)]) for _ in range(runs)) / n * 1e6
