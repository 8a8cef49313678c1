"""Small, dependency-free statistics for the evaluation (standard library only).

Conventions used everywhere in the analysis:

* ``percentile(values, q)`` takes ``q`` in [0, 100] and interpolates linearly between the two closest ranks of the
  sorted sample: with ``n`` values sorted ascending as ``x[0..n-1]`` and ``h = (n - 1) * q / 100``, the result is
  ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``. This is Hyndman & Fan type 7, the default
  of NumPy, R and Excel's PERCENTILE.INC; p0 is the minimum, p100 the maximum, p50 the usual median.
* Confidence intervals are bootstrap percentile intervals from ``random.Random(seed)``, so every number is
  reproducible. The resampled unit is whatever the caller passes: the summary passes one value per cell (per seed),
  never individual frames. Frames of one cell share one network realisation and one player state and are strongly
  autocorrelated; resampling them would treat thousands of dependent samples as independent and give intervals
  that are far too narrow. Seeds (cells) are the independent replications, so they are the unit. With fewer than
  two units there is no spread to resample and the interval is ``None``, not a degenerate ``(x, x)``.
"""

from __future__ import annotations

import math
import random
from typing import Callable, Iterable, Sequence

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0


def _finite_list(values: Iterable[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    for v in out:
        if not math.isfinite(v):
            raise ValueError(f"{what}: non-finite value {v!r}")
    return out


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) by linear interpolation between closest ranks (type 7).

    Raises ValueError on an empty sample, a non-finite value or q outside [0, 100].
    """
    xs = sorted(_finite_list(values, "percentile"))
    if not xs:
        raise ValueError("percentile of an empty sample")
    if not (0.0 <= q <= 100.0):  # also rejects NaN
        raise ValueError(f"percentile q={q!r} outside [0, 100]")
    return _percentile_sorted(xs, q)


def _percentile_sorted(xs: Sequence[float], q: float) -> float:
    n = len(xs)
    if n == 1:
        return xs[0]
    h = (n - 1) * q / 100.0
    lo = math.floor(h)
    if lo >= n - 1:
        return xs[-1]
    frac = h - lo
    return xs[lo] + frac * (xs[lo + 1] - xs[lo])


def median(values: Iterable[float]) -> float:
    """percentile(values, 50)."""
    return percentile(values, 50.0)


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean (math.fsum). Raises ValueError on an empty sample."""
    xs = _finite_list(values, "mean")
    if not xs:
        raise ValueError("mean of an empty sample")
    return math.fsum(xs) / len(xs)


def ecdf(values: Iterable[float]) -> tuple[list[float], list[float]]:
    """Empirical CDF: the distinct values ascending and, for each, the fraction of the sample <= it.

    ``ecdf([3, 1, 2, 2])`` is ``([1, 2, 3], [0.25, 0.75, 1.0])``. An empty sample gives two empty lists.
    """
    xs = sorted(_finite_list(values, "ecdf"))
    n = len(xs)
    ux: list[float] = []
    ps: list[float] = []
    for i, x in enumerate(xs):
        if ux and ux[-1] == x:
            ps[-1] = (i + 1) / n
        else:
            ux.append(x)
            ps.append((i + 1) / n)
    return ux, ps


class Regression:
    """Ordinary least squares fit y = intercept + slope * x.

    ``slope_se`` is the usual standard error of the slope, sqrt(SSR / (n - 2) / Sxx); it is None when n == 2
    (a line through two points has no residual degrees of freedom).
    """

    __slots__ = ("slope", "intercept", "slope_se", "n")

    def __init__(self, slope: float, intercept: float, slope_se: float | None, n: int):
        self.slope = slope
        self.intercept = intercept
        self.slope_se = slope_se
        self.n = n

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Regression(slope={self.slope!r}, intercept={self.intercept!r}, slope_se={self.slope_se!r}, n={self.n})"


def linregress(xs: Iterable[float], ys: Iterable[float]) -> Regression:
    """Least-squares slope and intercept of ys on xs, with the slope's standard error.

    Raises ValueError if the lengths differ, there are fewer than two points, or all xs are equal.
    """
    x = _finite_list(xs, "linregress x")
    y = _finite_list(ys, "linregress y")
    if len(x) != len(y):
        raise ValueError(f"linregress: {len(x)} x values but {len(y)} y values")
    n = len(x)
    if n < 2:
        raise ValueError("linregress needs at least two points")
    mx = math.fsum(x) / n
    my = math.fsum(y) / n
    sxx = math.fsum((a - mx) ** 2 for a in x)
    if sxx == 0.0:
        raise ValueError("linregress: all x values are equal")
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(x, y))
    slope = sxy / sxx
    intercept = my - slope * mx
    se: float | None = None
    if n > 2:
        ssr = math.fsum((b - (intercept + slope * a)) ** 2 for a, b in zip(x, y))
        se = math.sqrt(ssr / (n - 2) / sxx)
    return Regression(slope, intercept, se, n)


def bootstrap_ci(
    units: Sequence,
    statistic: Callable[[list], float] = median,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float] | None:
    """Bootstrap percentile interval of ``statistic`` over ``units``.

    Each of ``n_resamples`` resamples draws ``len(units)`` units with replacement from ``random.Random(seed)``;
    the interval is the (1 - confidence) / 2 and (1 + confidence) / 2 percentiles (type 7, as ``percentile``) of
    the resampled statistics. A unit can be anything ``statistic`` accepts a list of (a per-cell value, or a
    per-cell list of samples). Returns None with fewer than two units.
    """
    units = list(units)
    if len(units) < 2:
        return None
    _check_boot_args(n_resamples, confidence)
    rng = random.Random(seed)
    n = len(units)
    stats = []
    for _ in range(n_resamples):
        sample = [units[rng.randrange(n)] for _ in range(n)]
        stats.append(float(statistic(sample)))
    return _interval(stats, confidence)


def ratio_ci(
    numerator_units: Sequence,
    denominator_units: Sequence,
    statistic: Callable[[list], float] = median,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> tuple[float | None, tuple[float, float] | None]:
    """Point estimate and bootstrap percentile interval of statistic(numerator) / statistic(denominator).

    The two groups are resampled independently (each with replacement, its own size) from one
    ``random.Random(seed)``; they are not paired, because seed k of two systems is not a matched pair (the same
    netem seed drops different packets of different traffic). Resamples whose denominator statistic is 0 are
    discarded; if more than half are, the interval is None. The point estimate is None if the denominator
    statistic of the full data is 0 or either group is empty; the interval is None if either group has fewer
    than two units.
    """
    num = list(numerator_units)
    den = list(denominator_units)
    if not num or not den:
        return None, None
    d = float(statistic(den))
    point = None if d == 0.0 else float(statistic(num)) / d
    if len(num) < 2 or len(den) < 2:
        return point, None
    _check_boot_args(n_resamples, confidence)
    rng = random.Random(seed)
    ratios = []
    for _ in range(n_resamples):
        a = [num[rng.randrange(len(num))] for _ in range(len(num))]
        b = [den[rng.randrange(len(den))] for _ in range(len(den))]
        sb = float(statistic(b))
        if sb == 0.0:
            continue
        ratios.append(float(statistic(a)) / sb)
    if len(ratios) * 2 < n_resamples:
        return point, None
    return point, _interval(ratios, confidence)


def _check_boot_args(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    if not (0.0 < confidence < 1.0):
        raise ValueError("confidence must be in (0, 1)")


def _interval(stats: list[float], confidence: float) -> tuple[float, float]:
    xs = sorted(_finite_list(stats, "bootstrap statistic"))
    alpha = 1.0 - confidence
    return _percentile_sorted(xs, 100.0 * alpha / 2.0), _percentile_sorted(xs, 100.0 * (1.0 - alpha / 2.0))
