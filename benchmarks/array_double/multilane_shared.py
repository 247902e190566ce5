"""array_double on multilane with the array placed in shared memory once (multilane.shared)."""
from _work import array_double
from array_sum._common import array, ms_per_call
from array_sum.multilane import caller

import multilane


def run(n: int, runs: int) -> float:
    with caller() as call:
        return ms_per_call(call, array_double, multilane.shared(array(n)), runs)
