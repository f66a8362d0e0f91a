"""Intervals for the reports: percentile bootstrap over the unit that varies (product models,
queries, images), paired differences between two models on the same units, and intervals of
a mean over training seeds.

Resampling is over *units* (``groups``): all rows of a resampled unit come along, so that
images of one product model, or pairs of one query, are never treated as independent.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

import config

Statistic = Callable[[np.ndarray], float]   # row indices -> a number


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def items(self, key: str) -> dict[str, float]:
        """``{key: value, key_ci_low: low, key_ci_high: high}`` for metrics.json."""
        return {key: self.value, f"{key}_ci_low": self.low, f"{key}_ci_high": self.high}

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _unit_rows(groups: np.ndarray | None, n: int) -> list[np.ndarray]:
    if groups is None:
        return [np.array([i]) for i in range(n)]
    groups = np.asarray(groups)
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group labels for {n} rows")
    _, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return np.split(order, bounds)


def resamples(n: int, groups: np.ndarray | None = None, *, count: int = config.BOOTSTRAP_RESAMPLES,
              seed: int) -> list[np.ndarray]:
    """``count`` bootstrap resamples of row indices, drawn by unit."""
    units = _unit_rows(groups, n)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(units), size=(count, len(units)))
    return [np.concatenate([units[u] for u in row]) for row in picks]


def bootstrap(statistic: Statistic, n: int, groups: np.ndarray | None = None, *, level: float = 0.95,
              count: int = config.BOOTSTRAP_RESAMPLES, seed: int) -> Interval:
    """The statistic on all rows and its percentile interval over unit resamples."""
    values = np.array([statistic(rows) for rows in resamples(n, groups, count=count, seed=seed)])
    values = values[np.isfinite(values)]
    tail = (1 - level) / 2 * 100
    return Interval(float(statistic(np.arange(n))), *map(float, np.percentile(values, [tail, 100 - tail])))


def mean_interval(values: np.ndarray, groups: np.ndarray | None = None, **kw) -> Interval:
    """The mean of per-row values (per query, per image) with its bootstrap interval."""
    values = np.asarray(values, dtype=float)
    return bootstrap(lambda rows: float(values[rows].mean()), len(values), groups, **kw)


def paired_difference(stat_a: Statistic, stat_b: Statistic, n: int, groups: np.ndarray | None = None,
                      **kw) -> Interval:
    """a - b on the same resampled units: the interval of a difference between two models
    scored on the same items (far narrower than comparing two separate intervals)."""
    return bootstrap(lambda rows: stat_a(rows) - stat_b(rows), n, groups, **kw)


def seeds_interval(values: np.ndarray, level: float = 0.95) -> Interval:
    """Mean over training seeds with a Student-t interval (the seeds' spread, not the test set's)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, mean, mean)
    half = float(sps.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return Interval(mean, mean - half, mean + half)


def verdict(value: float, target: float, *, at_least: bool, low: float | None = None,
            high: float | None = None) -> str:
    """A figure against its target: "yes" where it meets it; "no difference" where it does not
    but its spread (``low`` .. ``high``: an interval, or repeated runs) reaches the target, so
    the measurement cannot tell the two apart; "NO" where the whole spread misses it."""
    if value >= target if at_least else value <= target:
        return "yes"
    reach = high if at_least else low
    if reach is not None and (reach >= target if at_least else reach <= target):
        return "no difference"
    return "NO"


def flatten(intervals: Mapping[str, Interval]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, interval in intervals.items():
        out.update(interval.items(key))
    return out
