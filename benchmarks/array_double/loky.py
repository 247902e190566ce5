"""array_double (the result comes back) on loky's reusable executor (2 workers)."""
from _work import array_double
from array_sum._common import array, ms_per_call
from array_sum.loky import caller


def run(n: int, runs: int) -> float:
    with caller() as call:
        return ms_per_call(call, array_double, array(n), runs)
