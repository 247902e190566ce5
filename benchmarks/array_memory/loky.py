"""Peak extra memory of one array_sum on loky's reusable executor (2 workers)."""
from _work import array_sum
from array_memory._common import peak_per_call
from array_sum._common import array
from array_sum.loky import caller


def run(n: int, runs: int) -> float:
    return peak_per_call(caller, array_sum, array(n), runs)
