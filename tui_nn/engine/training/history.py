"""A loss history whose memory stays bounded however long the run.

Up to `capacity` buckets are kept. When full, neighbouring buckets merge pairwise and every later
bucket covers twice as many steps, so a 10^6-step run keeps at most `capacity` buckets, each with the
mean, min and max of the steps it covers (the plot draws the mean and can show the envelope).
"""

from __future__ import annotations

import math

import numpy as np

MAX_CAPACITY = 1 << 16  # buckets a restored history may have (a session keeps 4096)
INT64_MAX = 2**63 - 1


class LossHistory:
    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 4 or capacity % 2:
            raise ValueError("capacity must be an even number >= 4")
        self.capacity = capacity
        self.width = 1  # steps per full bucket
        self._step = np.zeros(capacity, dtype=np.int64)  # last step covered by each bucket
        self._sum = np.zeros(capacity, dtype=np.float64)
        self._min = np.zeros(capacity, dtype=np.float64)
        self._max = np.zeros(capacity, dtype=np.float64)
        self._count = np.zeros(capacity, dtype=np.int64)
        self.n = 0  # buckets in use
        self.steps = 0  # steps recorded
        self.last = float("nan")

    def __len__(self) -> int:
        return self.steps

    def clear(self) -> None:
        self.__init__(self.capacity)  # type: ignore[misc]

    def extend(self, losses: "np.ndarray | list[float]") -> None:
        values = np.asarray(losses, dtype=np.float64).ravel()
        i = 0
        while i < len(values):
            # fill the open bucket (the last one, if not full)
            if self.n and self._count[self.n - 1] < self.width:
                b = self.n - 1
                take = min(self.width - int(self._count[b]), len(values) - i)
                chunk = values[i:i + take]
                self._sum[b] += chunk.sum()
                self._min[b] = min(self._min[b], chunk.min())
                self._max[b] = max(self._max[b], chunk.max())
                self._count[b] += take
                self.steps += take
                self._step[b] = self.steps
                i += take
                continue
            if self.n == self.capacity:
                self._merge()
                continue
            # open whole buckets at once, vectorised
            room = self.capacity - self.n
            full = min((len(values) - i) // self.width, room)
            if full:
                block = values[i:i + full * self.width].reshape(full, self.width)
                s = slice(self.n, self.n + full)
                self._sum[s] = block.sum(axis=1)
                self._min[s] = block.min(axis=1)
                self._max[s] = block.max(axis=1)
                self._count[s] = self.width
                self._step[s] = self.steps + self.width * np.arange(1, full + 1)
                self.n += full
                self.steps += full * self.width
                i += full * self.width
                continue
            # a partial bucket
            b = self.n
            self._sum[b] = 0.0
            self._min[b] = np.inf
            self._max[b] = -np.inf
            self._count[b] = 0
            self.n += 1
        if len(values):
            self.last = float(values[-1])

    def _merge(self) -> None:
        half = self.capacity // 2
        n = self.n - (self.n % 2)
        s = slice(0, n)
        self._sum[:n // 2] = self._sum[s].reshape(-1, 2).sum(axis=1)
        self._min[:n // 2] = self._min[s].reshape(-1, 2).min(axis=1)
        self._max[:n // 2] = self._max[s].reshape(-1, 2).max(axis=1)
        self._count[:n // 2] = self._count[s].reshape(-1, 2).sum(axis=1)
        self._step[:n // 2] = self._step[s].reshape(-1, 2)[:, 1]
        if self.n % 2:
            for arr in (self._sum, self._min, self._max, self._count, self._step):
                arr[n // 2] = arr[self.n - 1]
        self.n = n // 2 + self.n % 2
        self.width *= 2
        assert self.n <= half + 1

    @classmethod
    def restore(cls, capacity: int, width: int, steps: int, last: float,
                rows: "list[tuple[int, float, float, int, float]]") -> "LossHistory":
        """A history from its saved buckets (step, min, max, count, sum per row), checked against what `extend`,
        `_merge` and `truncate` can make: every bucket covers the `count` steps after the previous one (so the
        steps increase and the last row ends at `steps`), 1 <= count <= width, width a power of two. Raises
        ValueError naming the field or row; nothing of a size the caller did not bound is allocated (the
        capacity is at most MAX_CAPACITY and checked before the arrays are made)."""
        for name, value in (("capacity", capacity), ("width", width), ("steps", steps)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}: expected an integer, got {type(value).__name__}")
        if not (4 <= capacity <= MAX_CAPACITY) or capacity % 2:
            raise ValueError(f"capacity: {capacity} is not an even number from 4 to {MAX_CAPACITY}")
        if not (1 <= width <= 2**62) or width & (width - 1):
            raise ValueError(f"width: {width} is not a power of two")
        if not (0 <= steps <= INT64_MAX):
            raise ValueError(f"steps: {steps} is not a step count")
        if isinstance(last, bool) or not isinstance(last, (int, float)):
            raise ValueError("last: expected a number")
        if len(rows) > capacity:
            raise ValueError(f"{len(rows)} rows for a capacity of {capacity}")
        h = cls(capacity)
        previous = 0
        for i, (step, lo, hi, count, total) in enumerate(rows):
            where = f"row {i + 2}"  # the CSV's line (after its header)
            if not (1 <= count <= width):
                raise ValueError(f"{where}: count {count} is not from 1 to the width {width}")
            if step > INT64_MAX or step - previous != count:
                raise ValueError(f"{where}: step {step} does not follow the previous bucket's {previous} by its "
                                 f"count {count}")
            for name, value in (("min", lo), ("max", hi), ("sum", total)):
                if not isinstance(value, float):
                    raise ValueError(f"{where}: {name} is not a float")
            if not (math.isnan(lo) or math.isnan(hi)) and lo > hi:
                raise ValueError(f"{where}: min {lo!r} is more than max {hi!r}")
            h._step[i] = step
            h._min[i] = lo
            h._max[i] = hi
            h._count[i] = count
            h._sum[i] = total
            previous = step
        if previous != steps:
            raise ValueError(f"steps: the last row ends at step {previous}, not at the recorded {steps}")
        h.n = len(rows)
        h.width = width
        h.steps = steps
        h.last = float(last)
        return h

    def truncate(self, steps: int) -> None:
        """Forget everything after `steps` (bucket granularity: buckets that end after it are dropped)."""
        keep = int(np.searchsorted(self._step[:self.n], steps, side="right"))
        self.n = keep
        self.steps = int(self._step[keep - 1]) if keep else 0
        self.last = float(self._sum[keep - 1] / self._count[keep - 1]) if keep else float("nan")

    def series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(step, mean, min, max) per bucket; step is the last step a bucket covers."""
        n = self.n
        count = np.maximum(self._count[:n], 1)
        return (self._step[:n].copy(), self._sum[:n] / count, self._min[:n].copy(), self._max[:n].copy())

    def to_csv(self) -> str:
        steps, mean, lo, hi = self.series()
        lines = ["step,loss,min,max"]
        lines += [f"{s},{m!r},{a!r},{b!r}" for s, m, a, b in zip(steps.tolist(), mean.tolist(), lo.tolist(),
                                                                  hi.tolist())]
        return "\n".join(lines) + "\n"
