"""The statistics of a seed sweep: mean, spread and Student-t intervals, with no SciPy needed.

Seed-to-seed variation is summarised by the sample standard deviation and a 95% confidence
interval of the mean, ``mean ± t(0.975, n-1) · s / sqrt(n)``; a comparison of two notebooks run
under the same seeds uses the paired differences the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: The confidence level of every interval nbrepro reports.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """What a list of values says: count, mean, spread, extremes, 95% interval of the mean."""

    n: int
    mean: float
    std: float  #: sample standard deviation (n - 1 in the denominator); 0 when n == 1
    minimum: float
    maximum: float
    half_width: float  #: of the 95% interval of the mean; ``nan`` when n < 2

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% confidence interval of the mean."""
        return (self.mean - self.half_width, self.mean + self.half_width)


def summarize(values: Sequence[float]) -> Summary:
    """The :class:`Summary` of ``values`` (at least one)."""
    if not values:
        raise ValueError("summarize() needs at least one value")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return Summary(1, mean, 0.0, values[0], values[0], math.nan)
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    std = math.sqrt(variance)
    half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, min(values), max(values), half)


def spread(values: Sequence[float]) -> float:
    """The largest difference between two of ``values``: 0 when they are all equal."""
    return max(values) - min(values) if values else 0.0


def t_quantile(probability: float, degrees: int) -> float:
    """The ``probability`` quantile of Student's t distribution with ``degrees`` of freedom.

    Inverts the CDF (through the regularised incomplete beta function) by bisection; accurate
    to about 1e-12, which is far below what a sweep's intervals can resolve.
    """
    if not 0.0 < probability < 1.0 or degrees < 1:
        raise ValueError(
            f"t_quantile needs 0 < p < 1 and degrees >= 1, got {probability}, {degrees}"
        )
    if probability < 0.5:
        return -t_quantile(1.0 - probability, degrees)
    low, high = 0.0, 1.0
    while _t_cdf(high, degrees) < probability:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if _t_cdf(middle, degrees) < probability:
            low = middle
        else:
            high = middle
        if high - low < 1e-13 * max(1.0, high):
            break
    return (low + high) / 2.0


def _t_cdf(t: float, degrees: int) -> float:
    x = degrees / (degrees + t * t)
    tail = 0.5 * _incomplete_beta(degrees / 2.0, 0.5, x)
    return 1.0 - tail if t >= 0 else tail


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); use symmetry else.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    # Lentz's method for the continued fraction of the incomplete beta function.
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result
