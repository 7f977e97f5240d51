"""Arrival schedules, precomputed so the same seed gives the same schedule for PD and
aggregated runs (vLLM's method: gamma gaps, rescaled so the last send lands at N/rate)."""

from __future__ import annotations

import math
import random


def arrivals(n: int, rate: float, *, burstiness: float = 1.0, seed: int = 0) -> list[float]:
    """Send offsets in seconds for n requests. rate=inf: all at 0. burstiness 1 = Poisson,
    < 1 burstier, inf = evenly spaced."""
    if n <= 0:
        return []
    if math.isinf(rate):
        return [0.0] * n
    rng = random.Random(seed)
    if math.isinf(burstiness):
        gaps = [1.0 / rate] * n
    else:
        gaps = [rng.gammavariate(burstiness, 1.0 / (rate * burstiness)) for _ in range(n)]
    times, t = [], 0.0
    for gap in gaps:
        t += gap
        times.append(t)
    scale = (n / rate) / times[-1]
    return [round(t * scale - times[0] * scale, 9) for t in times]
