"""array_double on multilane, the array made under multilane.zero_copy() and the workers'
results too (initializer=multilane.zero_copy): uncopied both ways."""
from _work import array_double
from array_sum._common import ms_per_call
from array_sum.multilane_zero_copy import caller, zero_copy_array


def run(n: int, runs: int) -> float:
    with caller() as call:
        return ms_per_call(call, array_double, zero_copy_array(n), runs)
