"""array_double (the result comes back) on concurrent.futures.ProcessPoolExecutor(2)."""
from _work import array_double
from array_sum._common import array, ms_per_call
from array_sum.stdlib import caller


def run(n: int, runs: int) -> float:
    with caller() as call:
        return ms_per_call(call, array_double, array(n), runs)
