import math
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation import stats  # noqa: E402


class PercentileTest(unittest.TestCase):
    def test_hand_computed(self):
        xs = [4, 1, 3, 2]  # unsorted on purpose
        self.assertEqual(stats.percentile(xs, 0), 1)
        self.assertEqual(stats.percentile(xs, 100), 4)
        self.assertAlmostEqual(stats.percentile(xs, 50), 2.5)  # h = 1.5
        self.assertAlmostEqual(stats.percentile(xs, 25), 1.75)  # h = 0.75
        self.assertAlmostEqual(stats.percentile(xs, 99), 3.97)  # h = 2.97
        self.assertAlmostEqual(stats.percentile([10, 20, 30, 40, 50], 90), 46.0)  # h = 3.6
        self.assertAlmostEqual(stats.percentile([10, 20, 30, 40, 50], 50), 30.0)  # exact rank

    def test_single_and_ties(self):
        for q in (0, 37.5, 50, 99, 100):
            self.assertEqual(stats.percentile([7.0], q), 7.0)
        self.assertEqual(stats.percentile([5, 5, 5, 9], 50), 5)
        self.assertAlmostEqual(stats.percentile([5, 5, 5, 9], 90), 7.8)  # h = 2.7: 5 + 0.7 * 4

    def test_rejects(self):
        with self.assertRaises(ValueError):
            stats.percentile([], 50)
        with self.assertRaises(ValueError):
            stats.percentile([1, 2], 101)
        with self.assertRaises(ValueError):
            stats.percentile([1, 2], -1)
        with self.assertRaises(ValueError):
            stats.percentile([1, float("nan")], 50)
        with self.assertRaises(ValueError):
            stats.percentile([1, 2], float("nan"))

    def test_median_mean(self):
        self.assertEqual(stats.median([3, 1, 2]), 2)
        self.assertAlmostEqual(stats.mean([1, 2, 3, 10]), 4.0)
        with self.assertRaises(ValueError):
            stats.mean([])


class EcdfTest(unittest.TestCase):
    def test_ties_collapse(self):
        self.assertEqual(stats.ecdf([3, 1, 2, 2]), ([1, 2, 3], [0.25, 0.75, 1.0]))
        self.assertEqual(stats.ecdf([]), ([], []))


class RegressionTest(unittest.TestCase):
    def test_exact_line(self):
        xs = [i * 0.5 for i in range(50)]
        fit = stats.linregress(xs, [3.0 * x - 7.0 for x in xs])
        self.assertAlmostEqual(fit.slope, 3.0, places=12)
        self.assertAlmostEqual(fit.intercept, -7.0, places=10)
        self.assertAlmostEqual(fit.slope_se, 0.0, places=10)
        self.assertEqual(fit.n, 50)

    def test_hand_computed_se(self):
        # mx = 1.5, my = 2.75, Sxx = 5, Sxy = 5.5: slope 1.1, intercept 1.1; SSR = 2.7; se = sqrt(2.7 / 2 / 5).
        fit = stats.linregress([0, 1, 2, 3], [1, 3, 2, 5])
        self.assertAlmostEqual(fit.slope, 1.1)
        self.assertAlmostEqual(fit.intercept, 1.1)
        self.assertAlmostEqual(fit.slope_se, math.sqrt(0.27))

    def test_degenerate(self):
        self.assertIsNone(stats.linregress([0, 1], [0, 2]).slope_se)
        with self.assertRaises(ValueError):
            stats.linregress([1, 1, 1], [1, 2, 3])
        with self.assertRaises(ValueError):
            stats.linregress([1], [1])
        with self.assertRaises(ValueError):
            stats.linregress([1, 2], [1])


class BootstrapTest(unittest.TestCase):
    data = [12.0, 15.0, 9.0, 20.0, 14.0, 11.0, 18.0, 13.0]

    def test_reproducible_and_seed_dependent(self):
        a = stats.bootstrap_ci(self.data, stats.median, 2000, 0.95, seed=42)
        b = stats.bootstrap_ci(self.data, stats.median, 2000, 0.95, seed=42)
        self.assertEqual(a, b)
        c = stats.bootstrap_ci(self.data, stats.mean, 2000, 0.95, seed=43)
        d = stats.bootstrap_ci(self.data, stats.mean, 2000, 0.95, seed=42)
        self.assertNotEqual(c, d)

    def test_contains_point_estimate(self):
        for stat in (stats.median, stats.mean):
            lo, hi = stats.bootstrap_ci(self.data, stat, seed=1)
            point = stat(self.data)
            self.assertLess(lo, point)
            self.assertGreater(hi, point)
            self.assertGreaterEqual(lo, min(self.data))
            self.assertLessEqual(hi, max(self.data))

    def test_few_units_and_constant(self):
        self.assertIsNone(stats.bootstrap_ci([5.0]))
        self.assertIsNone(stats.bootstrap_ci([]))
        self.assertEqual(stats.bootstrap_ci([5.0, 5.0, 5.0]), (5.0, 5.0))

    def test_two_units_span(self):
        # Medians of resamples of two values are a, (a+b)/2 or b; a 95 % interval reaches both ends.
        self.assertEqual(stats.bootstrap_ci([200.0, 300.0], seed=0), (200.0, 300.0))

    def test_ratio(self):
        point, ci = stats.ratio_ci([10.0, 20.0, 30.0], [1.0, 2.0, 3.0], seed=3)
        self.assertAlmostEqual(point, 10.0)
        self.assertLessEqual(ci[0], 10.0)
        self.assertGreaterEqual(ci[1], 10.0)
        self.assertGreaterEqual(ci[0], 10.0 / 3.0)
        self.assertLessEqual(ci[1], 30.0)
        self.assertEqual(stats.ratio_ci([4.0, 4.0], [2.0, 2.0]), (2.0, (2.0, 2.0)))
        self.assertEqual(stats.ratio_ci([4.0], [2.0, 2.0]), (2.0, None))
        self.assertEqual(stats.ratio_ci([], [2.0]), (None, None))
        self.assertEqual(stats.ratio_ci([1.0], [0.0]), (None, None))
        again = stats.ratio_ci([10.0, 20.0, 30.0], [1.0, 2.0, 3.0], seed=3)
        self.assertEqual(again, (point, ci))


if __name__ == "__main__":
    unittest.main()
