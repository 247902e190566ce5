"""Peak extra memory of one array_sum on multilane, the array placed in shared memory before
(multilane.shared) and the original gone."""
from _work import array_sum
from array_memory._common import peak_per_call
from array_sum._common import array
from array_sum.multilane import caller

import multilane


def run(n: int, runs: int) -> float:
    return peak_per_call(caller, array_sum, multilane.shared(array(n)), runs)
