"""Latency sampling shared by the inference benchmarks."""

import time


def latencies(fn, batch, runs: int, warmup: int = 10) -> list[float]:
    """Seconds per call of ``fn(batch)``, after ``warmup`` calls (tracing, allocation)."""
    for _ in range(warmup):
        fn(batch)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(batch)
        samples.append(time.perf_counter() - start)
    return samples
