"""Fast, exact replacements for two NumPy steps of the synthetic serving traces (issue 22's speed rows).

* :func:`pick_by_cdf`: ``cdf.searchsorted(u, side="right")``, which is how ``Generator.choice(n, size, p=p)``
  turns its uniform draws ``u = rng.random(size)`` into indices (``cdf = p.cumsum() / p.cumsum()[-1]``).
  A binary search over 150 experts mispredicts a branch at almost every step (32 ns a draw); here a guide
  table (:func:`guide_table`: for each of ``2^k`` equal slices of [0, 1), the first index the slice can
  give) starts a short linear search at the right place (a few ns a draw). The result is the same index
  for every draw: the slice of ``u`` is ``floor(u * 2^k)``, exact in floating point, and the table counts
  the cdf values at or below the slice's lower edge, so the search never starts past the answer.
* :func:`running_sum`: ``np.cumsum`` of the inter-arrival gaps after a carried start (NumPy's accumulate
  adds in order, so the sums are the same floats), without the copy into a concatenated array.

Each kernel has its pure-Python twin (``.py_func``); ``tests/test_draws.py`` compares both with NumPy.
"""
from __future__ import annotations

import numpy as np

from rdusim.core.jit import njit

GUIDE_MIN_SLICES = 1024  # slices of the guide table: at least this, and at least 4 per expert (a power of two)


def choice_cdf(p: np.ndarray) -> np.ndarray:
    """The cumulative distribution ``Generator.choice`` searches for weights ``p`` (float64, normalised as it does)."""
    cdf = np.asarray(p, dtype=float).cumsum()
    cdf /= cdf[-1]
    return cdf


def guide_table(cdf: np.ndarray) -> np.ndarray:
    """For each of ``2^k`` slices [j / 2^k, (j + 1) / 2^k) of [0, 1): how many cdf values are at or below the
    slice's lower edge (where :func:`pick_by_cdf` starts its search)."""
    slices = max(GUIDE_MIN_SLICES, 1 << int(np.ceil(np.log2(4 * cdf.size))))
    return np.searchsorted(cdf, np.arange(slices) / slices, side="right").astype(np.int64)


@njit(cache=True)
def pick_by_cdf(u, cdf, guide, out):
    """``out[i] = cdf.searchsorted(u[i], side="right")`` for uniform draws ``u`` in [0, 1), started from the
    guide table of :func:`guide_table`."""
    slices = guide.shape[0]
    n = cdf.shape[0]
    for i in range(u.shape[0]):
        x = u[i]
        k = guide[int(x * slices)]
        while k < n and cdf[k] <= x:
            k += 1
        out[i] = k
    return out


@njit(cache=True)
def running_sum(carry, gaps, out):
    """``out[i] = carry + gaps[0] + ... + gaps[i]``, added in that order (``np.cumsum`` of ``[carry, *gaps]``
    without its first element)."""
    acc = carry
    for i in range(gaps.shape[0]):
        acc += gaps[i]
        out[i] = acc
    return out
