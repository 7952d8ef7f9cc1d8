"""The trace-drawing kernels (rdusim.scenarios.draws) give NumPy's numbers exactly, compiled and in pure Python."""
import numpy as np
import pytest

from rdusim.scenarios.draws import choice_cdf, guide_table, pick_by_cdf, running_sum
from rdusim.scenarios.serve import zipf_popularity


@pytest.mark.parametrize("weights", [
    zipf_popularity(150, 1.0),
    zipf_popularity(3, 0.0),
    zipf_popularity(1, 0.0),
    zipf_popularity(5000, 2.5),  # most slices of the guide table fall on expert 0
    np.array([0.0, 0.3, 0.0, 0.0, 0.7, 0.0]),  # zero weights, first and last included
    np.array([1e-12, 1.0, 1e-12]),
])
def test_pick_by_cdf_is_generator_choice(weights):
    n = 20000
    want = np.random.default_rng(7).choice(weights.size, size=n, p=weights)
    u = np.random.default_rng(7).random(n)
    cdf = choice_cdf(weights)
    guide = guide_table(cdf)
    assert guide.size >= 4 * weights.size and guide.size & (guide.size - 1) == 0
    np.testing.assert_array_equal(pick_by_cdf(u, cdf, guide, np.empty(n, np.int64)), want)
    pure = getattr(pick_by_cdf, "py_func", pick_by_cdf)  # the plain function under NUMBA_DISABLE_JIT
    np.testing.assert_array_equal(pure(u[:2000], cdf, guide, np.empty(2000, np.int64)), want[:2000])
    assert np.all(weights[want] > 0)


def test_pick_by_cdf_at_slice_edges_and_cdf_values():
    cdf = choice_cdf(np.array([0.25, 0.25, 0.5]))  # cdf values on slice edges: 0.25, 0.5, 1.0
    guide = guide_table(cdf)
    u = np.array([0.0, np.nextafter(0.25, 0), 0.25, np.nextafter(0.25, 1), 0.5, np.nextafter(1.0, 0)])
    want = cdf.searchsorted(u, side="right")
    np.testing.assert_array_equal(pick_by_cdf(u, cdf, guide, np.empty(u.size, np.int64)), want)
    np.testing.assert_array_equal(want, [0, 0, 1, 1, 2, 2])


def test_running_sum_is_cumsum_after_a_carry():
    gaps = np.random.default_rng(3).exponential(0.05, 100001)
    for carry in (0.0, 12345.678901):
        want = np.cumsum(np.concatenate([[carry], gaps]))[1:]
        np.testing.assert_array_equal(running_sum(carry, gaps, np.empty(gaps.size)), want)
        pure = getattr(running_sum, "py_func", running_sum)
        np.testing.assert_array_equal(pure(carry, gaps[:500], np.empty(500)), want[:500])
