import numpy as np

from tui_nn.engine.training.history import LossHistory


def test_short_history_is_exact():
    h = LossHistory(capacity=16)
    h.extend([3.0, 2.0, 1.0])
    steps, mean, lo, hi = h.series()
    assert steps.tolist() == [1, 2, 3] and mean.tolist() == [3.0, 2.0, 1.0]
    assert len(h) == 3 and h.last == 1.0


def test_million_steps_stay_bounded_and_keep_the_mean():
    h = LossHistory(capacity=4096)
    rng = np.random.default_rng(0)
    values = rng.random(1_000_000)
    for chunk in np.array_split(values, 997):  # uneven report sizes, as a live run gives
        h.extend(chunk)
    steps, mean, lo, hi = h.series()
    assert len(h) == 1_000_000
    assert len(steps) <= 4096
    assert steps[-1] == 1_000_000
    counts = np.diff(np.concatenate([[0], steps]))
    assert np.isclose((mean * counts).sum() / counts.sum(), values.mean())
    assert lo.min() == values.min() and hi.max() == values.max()
    nbytes = sum(a.nbytes for a in (h._step, h._sum, h._min, h._max, h._count))
    assert nbytes <= 5 * 8 * 4096


def test_bulk_and_one_by_one_agree():
    a, b = LossHistory(capacity=8), LossHistory(capacity=8)
    values = np.arange(1, 101, dtype=float)
    a.extend(values)
    for v in values:
        b.extend([v])
    for x, y in zip(a.series(), b.series()):
        assert np.array_equal(x, y)


def test_truncate():
    h = LossHistory(capacity=16)
    h.extend(np.arange(10.0))
    h.truncate(4)
    assert len(h) == 4 and h.series()[1].tolist() == [0.0, 1.0, 2.0, 3.0]
