"""The pure performance engine: realized metrics, CBPE, DLE, calibration, against golden
numbers worked out by hand and against scikit-learn's own implementations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error, roc_auc_score

from prodcontrol.engine import performance as perf

SCORES = np.array([0.9, 0.8, 0.3, 0.1])


def test_cbpe_roc_auc_is_the_expected_auc_of_the_scores_golden() -> None:
    # pairs ranked in order: sum p_i (1 - p_j) = 3.17, ties of a row with itself count half
    # (0.275); over sum(p) * sum(1 - p) = 2.1 * 1.9
    assert perf.cbpe("roc_auc", SCORES) == pytest.approx(3.445 / 3.99, abs=1e-12)


def test_cbpe_accuracy_is_the_expected_share_right_golden() -> None:
    # threshold 0.5: right with probability 0.9, 0.8, 0.7, 0.9
    assert perf.cbpe("accuracy", SCORES) == pytest.approx(3.3 / 4)
    assert perf.cbpe("accuracy", SCORES, threshold=0.85) == pytest.approx(
        (0.9 + 0.2 + 0.7 + 0.9) / 4
    )


def test_realized_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500).astype(float)
    scores = np.clip(labels * 0.3 + rng.random(500) * 0.7, 0, 1).round(2)  # with ties
    assert perf.realized("roc_auc", labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert perf.realized("accuracy", labels, scores) == pytest.approx(
        accuracy_score(labels, scores >= 0.5)
    )
    y, yhat = rng.normal(size=300), rng.normal(size=300)
    assert perf.realized("mae", y, yhat) == pytest.approx(mean_absolute_error(y, yhat))
    assert perf.realized("rmse", y, yhat) == pytest.approx(np.sqrt(mean_squared_error(y, yhat)))


def test_cbpe_on_perfectly_calibrated_scores_is_unbiased() -> None:
    """Labels drawn from the scores themselves: the estimate matches the realized metric."""
    rng = np.random.default_rng(11)
    scores = rng.beta(0.6, 0.6, 50_000)
    labels = (rng.random(50_000) < scores).astype(float)
    for metric in ("roc_auc", "accuracy"):
        assert perf.cbpe(metric, scores) == pytest.approx(
            perf.realized(metric, labels, scores), abs=0.005
        )


def test_isotonic_calibration_matches_scikit_learn() -> None:
    rng = np.random.default_rng(5)
    scores = rng.random(400).round(3)
    labels = (rng.random(400) < scores**2).astype(float)
    ours = perf.Isotonic.fit(scores, labels)
    theirs = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(scores, labels)
    probe = np.linspace(0, 1, 101)
    np.testing.assert_allclose(ours(probe), theirs.predict(probe), atol=1e-12)
    # golden: [0, 1, 0, 1] pools the middle two to 0.5
    small = perf.Isotonic.fit([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1])
    np.testing.assert_allclose(small([0.1, 0.2, 0.3, 0.4]), [0, 0.5, 0.5, 1])
    # one row per bin: (0.1 + 0.8 + 0.3 + 0.6) / 4 before, 0 after calibration
    assert perf.calibration_error([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1]) == pytest.approx(0.45)
    assert perf.calibration_error(small([0.1, 0.2, 0.3, 0.4]), [0, 1, 0, 1]) == pytest.approx(0)


def test_dle_recovers_a_constant_and_a_linear_loss() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((4000, 2))
    yhat = x @ np.array([3.0, -1.0])
    sign = np.where(rng.random(4000) < 0.5, -1.0, 1.0)
    constant = perf.LossModel.fit("mae", x, yhat, yhat + 2 * sign)
    assert constant.estimate(x[:100], yhat[:100]) == pytest.approx(2.0, abs=1e-6)
    rmse = perf.LossModel.fit("rmse", x, yhat, yhat + 2 * sign)
    assert rmse.estimate(x[:100], yhat[:100]) == pytest.approx(2.0, abs=1e-6)
    growing = perf.LossModel.fit("mae", x, yhat, yhat + sign * (1 + 4 * x[:, 0]))
    high = x[:, 0] > 0.8  # a current period where the first feature is high: larger errors
    expected = float(np.mean(1 + 4 * x[high, 0]))
    assert growing.estimate(x[high], yhat[high]) == pytest.approx(expected, rel=0.01)


def test_drop_points_the_way_the_metric_does() -> None:
    assert perf.drop("roc_auc", 0.76, 0.80) == pytest.approx(0.05)
    assert perf.drop("mae", 12.0, 10.0) == pytest.approx(0.2)
    assert perf.drop("rmse", 8.0, 10.0, mode="absolute") == pytest.approx(-2.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: perf.realized("roc_auc", [1, 1], [0.2, 0.9]), "both classes"),
        (lambda: perf.cbpe("roc_auc", [0.2, 1.7]), "between 0 and 1"),
        (lambda: perf.realized("accuracy", [0, 2], [0.2, 0.9]), "0 or 1"),
        (lambda: perf.cbpe("mae", [0.2]), "classifier metrics"),
        (lambda: perf.realized("mae", [], []), "no rows"),
        (lambda: perf.realized("mae", [1.0, np.nan], [1.0, 2.0]), "missing"),
    ],
)
def test_what_cannot_be_measured_says_why(call: object, message: str) -> None:
    with pytest.raises(perf.PerformanceError, match=message):
        call()  # type: ignore[operator]
