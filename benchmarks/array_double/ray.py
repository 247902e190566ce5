"""array_double (the result comes back) as a Ray task: NaN ("failed") if Ray does not start."""
from _work import array_double
from array_sum._common import array, ms_per_call
from array_sum.ray import caller


def run(n: int, runs: int) -> float:
    with caller() as call:
        return float("nan") if call is None else ms_per_call(call, array_double, array(n), runs)
