"""DLE's loss model: scikit-learn's histogram gradient boosting, the same kind of model as the
LightGBM regressor NannyML's DLE fits. Seeded, so a run is repeatable.

scikit-learn comes with two core dependencies (mlflow and evidently both require it), so it is
not declared again in pyproject.toml; the pin is constraints.txt's."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from prodcontrol.engine.performance import FittedLoss

Floats = npt.NDArray[np.float64]


class _Fitted:
    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, features: Floats) -> Floats:
        return np.asarray(self.model.predict(features), dtype=np.float64)


class GradientBoostingLoss:
    """:class:`~prodcontrol.engine.performance.LossRegressor` over
    ``sklearn.ensemble.HistGradientBoostingRegressor``."""

    name = "gradient boosting (scikit-learn HistGradientBoostingRegressor)"

    def __init__(self, *, seed: int = 0, max_iter: int = 200) -> None:
        self.seed, self.max_iter = seed, max_iter

    def fit(self, features: Floats, losses: Floats) -> FittedLoss:
        from sklearn.ensemble import (  # type: ignore[import-untyped]  # no stubs or py.typed
            HistGradientBoostingRegressor,
        )

        model = HistGradientBoostingRegressor(
            max_iter=self.max_iter, random_state=self.seed, early_stopping="auto"
        )
        return _Fitted(model.fit(features, losses))


__all__ = ["GradientBoostingLoss"]
