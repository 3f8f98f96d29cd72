"""Shared timing helper of the benchmarks."""

import statistics
import time


def median_time(fn, repeat, warmup=2):
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
