"""Peak extra memory of one array_sum on joblib.Parallel(n_jobs=2) with memmapping."""
from _work import array_sum
from array_memory._common import peak_per_call
from array_sum._common import array
from array_sum.joblib import caller


def run(n: int, runs: int) -> float:
    return peak_per_call(caller, array_sum, array(n), runs)
