"""Measuring on shared, noisy machines: alternate short slices of the two things compared, in one run,
and take medians of the per-slice ratios. Never compare absolute times across runs."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def steps_per_second(fn: Callable[[int], object], steps: int) -> float:
    t = time.perf_counter()
    fn(steps)
    return steps / (time.perf_counter() - t)


def calibrate(fn: Callable[[int], object], seconds: float) -> int:
    """Steps that take about `seconds` with `fn`."""
    n = 1
    while True:
        t = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - t
        if dt >= 0.05:
            return max(1, int(n * seconds / dt))
        n *= 4


def alternating_ratio(ours: Callable[[int], object], baseline: Callable[[int], object], *, slices: int = 6,
                      seconds: float = 0.5) -> tuple[float, float, float]:
    """(median, min, max) of ours/baseline throughput over alternating slices of about `seconds` each."""
    ours(1)  # a first step is slow (lazy state, allocations): calibrating on it would make the slices short
    baseline(1)
    n = calibrate(baseline, seconds)
    ours(max(1, n // 10))  # warm up both paths
    baseline(max(1, n // 10))
    ratios = []
    for i in range(slices):
        if i % 2:
            b = steps_per_second(baseline, n)
            o = steps_per_second(ours, n)
        else:
            o = steps_per_second(ours, n)
            b = steps_per_second(baseline, n)
        ratios.append(o / b)
    return statistics.median(ratios), min(ratios), max(ratios)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def line(name: str, value: str, goal: str, ok: bool | None) -> str:
    mark = "" if ok is None else (" ok" if ok else " MISSED")
    return f"{name}: {value} (goal {goal}){mark}"
