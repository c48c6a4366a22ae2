"""Statistics shared by product code and the evals: bootstrap intervals and a fixed-horizon rule.

Product code (the live A/B report in :mod:`services.experiments`) must not import ``evals/``, so
what both need lives here. Pure numpy; nothing here reads or writes anything.

Stopping rule: a **fixed horizon**. The sample size per arm is fixed before looking at the
difference, from the two-sample normal approximation
``n = 2 * (z_{1-alpha/2} + z_{1-beta})**2 * sigma**2 / delta**2`` (at alpha = 0.05 and power 0.8
this is van Belle's rule of thumb ``n = 16 sigma^2 / delta^2``: G. van Belle, *Statistical Rules
of Thumb*, 2nd ed., Wiley 2008, section 2.3; see also R. Kohavi, D. Tang, Y. Xu, *Trustworthy
Online Controlled Experiments*, Cambridge 2020, ch. 17). The result is read once both arms reach
it; an interval shown earlier is marked provisional, because stopping the first time an interval
excludes zero ("peeking") inflates false positives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Z_975 = 1.959963984540054
"""Standard normal quantile at 0.975 (two-sided alpha = 0.05)."""
Z_80 = 0.8416212335729143
"""Standard normal quantile at 0.80 (power 0.8)."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile bootstrap interval."""

    mean: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _as_array(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64).reshape(-1)


def bootstrap_mean(
    values: npt.ArrayLike, *, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Estimate:
    """The mean of ``values`` with a percentile bootstrap interval (seeded, so reports repeat)."""
    x = _as_array(values)
    if x.size == 0:
        return Estimate(math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    return _percentiles(float(x.mean()), means, confidence)


def bootstrap_diff(
    a: npt.ArrayLike, b: npt.ArrayLike, *, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Estimate:
    """mean(b) - mean(a) for two independent samples (each arm resampled on its own), with a
    percentile bootstrap interval. Independent, not paired: in a live split each order is seen by
    one arm only."""
    xa, xb = _as_array(a), _as_array(b)
    if xa.size == 0 or xb.size == 0:
        return Estimate(math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    ma = xa[rng.integers(0, xa.size, size=(resamples, xa.size))].mean(axis=1)
    mb = xb[rng.integers(0, xb.size, size=(resamples, xb.size))].mean(axis=1)
    return _percentiles(float(xb.mean() - xa.mean()), mb - ma, confidence)


def _percentiles(point: float, samples: npt.NDArray[np.float64], confidence: float) -> Estimate:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return Estimate(point, float(low), float(high))


def fixed_horizon_n(sigma: float, delta: float, *, z_alpha: float = Z_975, z_power: float = Z_80) -> int:
    """Orders per arm needed to detect a difference ``delta`` in means with standard deviation
    ``sigma`` (two-sided alpha 0.05, power 0.8 by default; see the module docstring). At least 2."""
    if delta <= 0:
        raise ValueError("delta must be positive")
    if not math.isfinite(sigma) or sigma <= 0:
        return 2
    return max(2, math.ceil(2.0 * (z_alpha + z_power) ** 2 * sigma**2 / delta**2))
