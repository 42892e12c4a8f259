"""Regenerate the performance example's data (seeded, so the files are reproducible).

    python examples/performance/data/generate.py

loan-default-scorer: a logistic regression on data whose outcome follows a logistic law (its
scores are calibrated, as CBPE assumes); the current applications are shifted towards high
``debt_ratio``; labels (did the loan default?) arrived for 70 % of them, and in the ``south``
branch the world changed: 30 % of its outcomes go against the model. A ``kiosk`` branch has 40
applications, under the minimum segment size.

demand-forecaster: a linear regression on scikit-learn's Friedman #1 (it cannot fit the sine and
square terms), the current period shifted to high ``x0`` (its MAE rises about 17 %); sales
figures arrived for 60 % of the orders, in a Parquet file.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_friedman1
from sklearn.linear_model import LinearRegression, LogisticRegression

HERE = Path(__file__).parent
LOAN_FEATURES = ["debt_ratio", "income_k", "age", "tenure_years", "open_loans", "late_payments"]
DEMAND_FEATURES = [f"x{i}" for i in range(10)]
SCORED = datetime(2026, 11, 20)


def _shifted(
    frame: pd.DataFrame, column: str, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    high = frame[column] > frame[column].median()
    to_current = rng.random(len(frame)) < np.where(high, 0.8, 0.2)
    return frame[~to_current].copy(), frame[to_current].copy()


def loans(rng: np.random.Generator) -> None:
    n = 9000
    z = rng.normal(size=(n, len(LOAN_FEATURES)))
    odds = z @ np.array([1.2, -0.8, -0.3, -0.4, 0.5, 0.7]) - 1.0
    frame = pd.DataFrame(
        {
            "debt_ratio": (0.35 + 0.12 * z[:, 0]).round(3),
            "income_k": (55 + 18 * z[:, 1]).round(1),
            "age": (42 + 11 * z[:, 2]).round(0),
            "tenure_years": (6 + 3 * z[:, 3]).round(1),
            "open_loans": (2 + z[:, 4]).round(2),
            "late_payments": (1 + 0.8 * z[:, 5]).round(2),
        }
    )
    frame["defaulted"] = (rng.random(n) < 1 / (1 + np.exp(-odds))).astype(int)
    frame["branch"] = rng.choice(["north", "south", "online"], n)
    frame.loc[frame.index[:60], "branch"] = "kiosk"
    train, rest = frame.iloc[3000:], frame.iloc[:3000].copy()
    model = LogisticRegression(max_iter=1000).fit(train[LOAN_FEATURES], train["defaulted"])
    rest["score"] = model.predict_proba(rest[LOAN_FEATURES])[:, 1].round(4)
    reference, current = _shifted(rest, "debt_ratio", rng)
    reference.to_csv(HERE / "loans-reference.csv", index=False)
    current["application_id"] = [f"A{i:05d}" for i in range(len(current))]
    current["scored_at"] = [SCORED + timedelta(minutes=7 * i) for i in range(len(current))]
    columns = ["application_id", "scored_at", *LOAN_FEATURES, "score", "branch"]
    current[columns].to_csv(HERE / "loans-current.csv", index=False)
    labelled = current[rng.random(len(current)) < 0.7].copy()
    flip = (labelled["branch"] == "south").to_numpy() & (rng.random(len(labelled)) < 0.3)
    labelled.loc[flip, "defaulted"] = 1 - labelled.loc[flip, "defaulted"]
    labelled["labelled_at"] = labelled["scored_at"] + timedelta(days=5)
    labelled[["application_id", "defaulted", "labelled_at"]].to_csv(
        HERE / "loans-labels.csv", index=False
    )


def demand(rng: np.random.Generator) -> None:
    x, y = make_friedman1(n_samples=9000, noise=1.0, random_state=5)
    frame = pd.DataFrame(x.round(4), columns=DEMAND_FEATURES).assign(units=y.round(3))
    frame["store"] = rng.choice(["city", "mall", "outlet"], len(frame))
    train, rest = frame.iloc[:3000], frame.iloc[3000:].copy()
    model = LinearRegression().fit(train[DEMAND_FEATURES], train["units"])
    rest["prediction"] = model.predict(rest[DEMAND_FEATURES]).round(3)
    reference, current = _shifted(rest, "x0", rng)
    reference.to_csv(HERE / "demand-reference.csv", index=False)
    current["order_id"] = np.arange(len(current))
    current.drop(columns=["units"]).to_csv(HERE / "demand-current.csv", index=False)
    labelled = current[rng.random(len(current)) < 0.6]
    labelled[["order_id", "units"]].to_parquet(HERE / "demand-sales.parquet", index=False)


if __name__ == "__main__":
    loans(np.random.default_rng(2026))
    demand(np.random.default_rng(2027))
