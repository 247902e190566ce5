"""Peak extra memory of one array_sum on multilane, the array made under
multilane.zero_copy(): it lives in shared memory from the start, and nothing is copied."""
from _work import array_sum
from array_memory._common import peak_per_call
from array_sum.multilane_zero_copy import caller, zero_copy_array


def run(n: int, runs: int) -> float:
    return peak_per_call(caller, array_sum, zero_copy_array(n), runs)
