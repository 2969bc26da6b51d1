"""lab4.report_stats: the bootstrap interval behind the report's rankings, on samples whose answer is known."""
import numpy as np

from lab4 import report_stats as S


def test_separated_samples_exclude_zero():
    iv = S.bootstrap_diff([25.0, 25.2, 25.1], [22.0, 22.3, 22.1])
    assert iv.verdict == "above" and 2.6 < iv.lo <= iv.diff <= iv.hi < 3.3
    assert abs(iv.diff - 2.9666667) < 1e-6
    assert S.bootstrap_diff([22.0, 22.3, 22.1], [25.0, 25.2, 25.1]).verdict == "below"


def test_identical_distributions_span_zero():
    rng = np.random.default_rng(1)
    a, b = rng.normal(24, 1, 5), rng.normal(24, 1, 5)
    iv = S.bootstrap_diff(a, b)
    assert iv.verdict == "spans" and iv.lo < 0 < iv.hi
    same = S.bootstrap_diff([24.0, 25.0, 26.0], [24.0, 25.0, 26.0])
    assert same.verdict == "spans" and same.diff == 0 and same.lo < 0 < same.hi


def test_reproducible_and_untested_below_two_seeds():
    a, b = [1.0, 2.0, 3.0], [2.0, 2.5, 4.0]
    assert S.bootstrap_diff(a, b) == S.bootstrap_diff(a, b)  # a fixed RNG seed: the report's numbers repeat
    assert S.bootstrap_diff([25.0], [22.0, 23.0]) is None
    assert S.bootstrap_diff([25.0, float("nan")], [22.0, 23.0]) is None  # NaN is no seed
    one = S.bootstrap_diff([0.5, 0.7, 0.6])  # one sample against zero, e.g. margins over a baseline
    assert one.verdict == "above" and 0.5 <= one.lo < one.hi <= 0.7


def test_mean_std():
    m, s, n = S.mean_std([1.0, 3.0, None, float("nan")])
    assert (m, n) == (2.0, 2) and abs(s - np.sqrt(2)) < 1e-12
    assert np.isnan(S.mean_std([5.0])[1]) and S.mean_std([])[2] == 0
