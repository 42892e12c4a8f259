"""Model performance from scores and labels, and estimated without labels. Pure: numpy only.

Realized metrics (labels known): ROC AUC, accuracy, MAE, RMSE.

Estimated metrics (labels not arrived yet), the published methods NannyML implements:

* **CBPE**, confidence-based performance estimation (NannyML, "Estimating model performance
  without labels", 2022): a *calibrated* classifier's score ``p`` is the probability that the
  row is positive, so each row counts as a positive with weight ``p`` and as a negative with
  weight ``1 - p``. The expected confusion matrix at every threshold follows, and from it the
  expected ROC AUC (the AUC of the weighted ROC curve) and the expected accuracy
  (``mean(p if p >= t else 1 - p)``). The scores are calibrated first on the reference data
  (scores and labels) with isotonic regression (pool-adjacent-violators), as NannyML does when
  the reference says they are not calibrated. Valid under covariate shift (``P(y | x)`` holds);
  not under concept drift, which no label-free estimate can see.
* **DLE**, direct loss estimation (NannyML): a second model learns, on the reference data, the
  loss of each prediction (``|y - ŷ|`` for MAE, ``(y - ŷ)²`` for RMSE) from the features and the
  prediction, and the estimate on current data is the mean predicted loss (square-rooted for
  RMSE). NannyML's loss model is LightGBM; a run uses scikit-learn's histogram gradient
  boosting (:mod:`prodcontrol.adapters.loss_model`, the same kind of model); the engine's own
  :class:`QuadraticRidge` (numpy, closed form) serves where no regressor is passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from prodcontrol.errors import ProdControlError

Floats = npt.NDArray[np.float64]
Metric = Literal["roc_auc", "accuracy", "mae", "rmse"]
CLASSIFICATION_METRICS: tuple[Metric, ...] = ("roc_auc", "accuracy")
REGRESSION_METRICS: tuple[Metric, ...] = ("mae", "rmse")
HIGHER_IS_BETTER: dict[str, bool] = {"roc_auc": True, "accuracy": True, "mae": False, "rmse": False}
RIDGE_ALPHA = 1.0


class PerformanceError(ProdControlError):
    """The metric cannot be computed on this data (one class only, no rows, bad scores)."""


def _floats(values: object, what: str) -> Floats:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise PerformanceError(f"{what} must be one column of numbers")
    if len(array) == 0:
        raise PerformanceError(f"no rows to compute {what} on")
    if not np.isfinite(array).all():
        raise PerformanceError(f"{what} has missing or infinite values")
    return array


def _scores(values: object) -> Floats:
    scores = _floats(values, "the scores")
    if scores.min() < 0 or scores.max() > 1:
        raise PerformanceError(
            f"the scores run from {scores.min():.4g} to {scores.max():.4g}; CBPE needs the "
            "predicted probability of the positive class, between 0 and 1 (score_column)"
        )
    return scores


# --------------------------------------------------------------------------- realized


def weighted_roc_auc(scores: Floats, positive: Floats, negative: Floats) -> float:
    """Area under the ROC curve where each row weighs ``positive`` as a positive and
    ``negative`` as a negative (labels: 1/0 and 0/1; CBPE: ``p`` and ``1 - p``). Ties in the
    score share one point of the curve (the trapezoid counts them half), as scikit-learn does."""
    total_pos, total_neg = float(positive.sum()), float(negative.sum())
    if total_pos <= 0 or total_neg <= 0:
        raise PerformanceError("ROC AUC needs both classes (positives and negatives)")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    tp, fp = np.cumsum(positive[order]), np.cumsum(negative[order])
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tpr = np.r_[0.0, tp[last_of_tie] / total_pos]
    fpr = np.r_[0.0, fp[last_of_tie] / total_neg]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _labels(values: object) -> Floats:
    labels = _floats(values, "the labels")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise PerformanceError(
            "the labels of a classifier must be 0 or 1 (target_column / label_column)"
        )
    return labels


def realized(metric: Metric, labels: object, outputs: object, *, threshold: float = 0.5) -> float:
    """The metric once the labels are known. ``outputs``: scores (classifiers) or predictions
    (regressors)."""
    if metric in CLASSIFICATION_METRICS:
        y, p = _labels(labels), _scores(outputs)
        if len(y) != len(p):
            raise PerformanceError("labels and scores differ in length")
        if metric == "roc_auc":
            return weighted_roc_auc(p, y, 1 - y)
        return float(np.mean((p >= threshold) == (y == 1)))
    y, yhat = _floats(labels, "the labels"), _floats(outputs, "the predictions")
    if len(y) != len(yhat):
        raise PerformanceError("labels and predictions differ in length")
    if metric == "mae":
        return float(np.mean(np.abs(y - yhat)))
    return float(np.sqrt(np.mean((y - yhat) ** 2)))


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Isotonic:
    """A monotone step function from scores to probabilities, fitted by pool-adjacent-violators
    and interpolated linearly between block centres (clipped outside), like scikit-learn's
    ``IsotonicRegression(out_of_bounds="clip")``."""

    x: Floats
    y: Floats

    @classmethod
    def fit(cls, scores: object, labels: object) -> Isotonic:
        p, y = _scores(scores), _labels(labels)
        order = np.argsort(p, kind="mergesort")
        xs, ys = p[order], y[order]
        unique, start = np.unique(xs, return_index=True)
        counts = np.diff(np.r_[start, len(xs)]).astype(np.float64)
        sums = np.add.reduceat(ys, start)
        means: list[float] = []
        weights: list[float] = []
        lefts: list[int] = []
        for i in range(len(unique)):
            mean, weight, left = sums[i] / counts[i], counts[i], i
            while means and means[-1] >= mean:
                prev_mean, prev_weight = means.pop(), weights.pop()
                left = lefts.pop()
                mean = (prev_mean * prev_weight + mean * weight) / (prev_weight + weight)
                weight += prev_weight
            means.append(mean)
            weights.append(weight)
            lefts.append(left)
        rights = [*lefts[1:], len(unique)]
        knots_x, knots_y = [], []
        for mean, left, right in zip(means, lefts, rights, strict=True):
            ends = [unique[left]] if right - 1 == left else [unique[left], unique[right - 1]]
            knots_x += ends
            knots_y += [mean] * len(ends)
        return cls(np.asarray(knots_x), np.asarray(knots_y))

    def __call__(self, scores: object) -> Floats:
        return np.asarray(np.interp(_scores(scores), self.x, self.y), dtype=np.float64)


def calibration_error(scores: object, labels: object, bins: int = 10) -> float:
    """Expected calibration error over equal-width score bins: how far scores are from being
    probabilities (0 = calibrated)."""
    p, y = _scores(scores), _labels(labels)
    index = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        rows = index == b
        if rows.any():
            error += rows.sum() / len(p) * abs(p[rows].mean() - y[rows].mean())
    return float(error)


# --------------------------------------------------------------------------- CBPE


def cbpe(
    metric: Metric,
    current_scores: object,
    *,
    calibrator: Isotonic | None = None,
    threshold: float = 0.5,
) -> float:
    """The expected ``metric`` (roc_auc or accuracy) of a classifier on rows whose labels are
    not known, from its (calibrated) scores."""
    if metric not in CLASSIFICATION_METRICS:
        raise PerformanceError(
            f"CBPE estimates classifier metrics (roc_auc, accuracy), not {metric}"
        )
    raw = _scores(current_scores)
    p = calibrator(raw) if calibrator is not None else raw
    if metric == "roc_auc":
        return weighted_roc_auc(raw, p, 1 - p)  # ranked by the model's own scores
    return float(np.mean(np.where(raw >= threshold, p, 1 - p)))


# --------------------------------------------------------------------------- DLE


class FittedLoss(Protocol):
    def predict(self, features: Floats) -> Floats: ...


class LossRegressor(Protocol):
    """Learns a prediction's loss from the features and the prediction (DLE's second model).
    The runtime's is gradient boosting (:mod:`prodcontrol.adapters.loss_model`, as NannyML
    uses LightGBM); :class:`QuadraticRidge` is the pure one."""

    name: str

    def fit(self, features: Floats, losses: Floats) -> FittedLoss: ...


@dataclass(frozen=True)
class _FittedRidge:
    mean: Floats
    scale: Floats
    coef: Floats

    def predict(self, features: Floats) -> Floats:
        design = np.column_stack([features, features**2])
        z = np.column_stack([np.ones(len(design)), (design - self.mean) / self.scale])
        return np.asarray(z @ self.coef, dtype=np.float64)


@dataclass(frozen=True)
class QuadraticRidge:
    """Ridge regression on the standardised inputs and their squares: closed form, numpy."""

    alpha: float = RIDGE_ALPHA
    name: str = "ridge regression on the inputs and their squares"

    def fit(self, features: Floats, losses: Floats) -> FittedLoss:
        design = np.column_stack([features, features**2])
        mean, scale = design.mean(axis=0), design.std(axis=0)
        scale[scale == 0] = 1.0
        z = np.column_stack([np.ones(len(design)), (design - mean) / scale])
        penalty = self.alpha * np.eye(z.shape[1])
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        coef = np.linalg.solve(z.T @ z + penalty, z.T @ losses)
        return _FittedRidge(mean, scale, coef)


@dataclass(frozen=True)
class LossModel:
    """DLE: the loss of each prediction (``|y - ŷ|`` or ``(y - ŷ)²``) learnt on the reference
    data from the features and the prediction; fitted once, estimates any current rows."""

    metric: Metric
    fitted: FittedLoss
    regressor: str

    @classmethod
    def fit(
        cls,
        metric: Metric,
        features: object,
        predictions: object,
        labels: object,
        *,
        regressor: LossRegressor | None = None,
    ) -> LossModel:
        if metric not in REGRESSION_METRICS:
            raise PerformanceError(f"DLE estimates regressor metrics (mae, rmse), not {metric}")
        x = _matrix(features)
        yhat, y = _floats(predictions, "the predictions"), _floats(labels, "the labels")
        if not len(x) == len(yhat) == len(y):
            raise PerformanceError("features, predictions and labels differ in length")
        loss = np.abs(y - yhat) if metric == "mae" else (y - yhat) ** 2
        learner = regressor or QuadraticRidge()
        return cls(metric, learner.fit(np.column_stack([x, yhat]), loss), learner.name)

    def losses(self, features: object, predictions: object) -> Floats:
        x, yhat = _matrix(features), _floats(predictions, "the predictions")
        if len(x) != len(yhat):
            raise PerformanceError("features and predictions differ in length")
        predicted = self.fitted.predict(np.column_stack([x, yhat]))
        return np.asarray(np.clip(predicted, 0.0, None), dtype=np.float64)

    def estimate(self, features: object, predictions: object) -> float:
        mean_loss = float(self.losses(features, predictions).mean())
        return mean_loss if self.metric == "mae" else float(np.sqrt(mean_loss))


def _matrix(values: object) -> Floats:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or len(array) == 0:
        raise PerformanceError("no rows of numeric features to estimate the loss from")
    if not np.isfinite(array).all():
        raise PerformanceError("the features have missing or infinite values")
    return array


# --------------------------------------------------------------------------- against a baseline


def drop(metric: str, current: float, baseline: float, *, mode: str = "relative") -> float:
    """How much worse ``current`` is than ``baseline`` (negative: better); relative drops are a
    share of the baseline. Error metrics (MAE, RMSE) are worse when higher."""
    worse_by = baseline - current if HIGHER_IS_BETTER[metric] else current - baseline
    if mode == "absolute":
        return worse_by
    if baseline == 0:
        raise PerformanceError(f"the baseline {metric} is 0; use mode: absolute for this control")
    return worse_by / abs(baseline)


__all__ = [
    "CLASSIFICATION_METRICS",
    "HIGHER_IS_BETTER",
    "REGRESSION_METRICS",
    "FittedLoss",
    "Isotonic",
    "LossModel",
    "LossRegressor",
    "Metric",
    "PerformanceError",
    "QuadraticRidge",
    "calibration_error",
    "cbpe",
    "drop",
    "realized",
    "weighted_roc_auc",
]
