"""Regenerate the example reference/current data (seeded, so the files are reproducible).

    python examples/data/generate.py

churn: current data like the reference (controls pass). credit: mild shift (warnings).
fraud: strong shift in amount, channel and predictions (controls fail, the gate opens).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
ROWS = 3000


def churn(rng: np.random.Generator, shift: float) -> pd.DataFrame:
    tenure = rng.integers(1, 72, ROWS)
    charges = rng.normal(70 + 10 * shift, 20, ROWS).round(2)
    calls = rng.poisson(1.5 + shift, ROWS)
    contract = rng.choice(["monthly", "annual", "two_year"], ROWS, p=[0.55, 0.3, 0.15])
    region = rng.choice(["north", "south", "east", "west"], ROWS)
    logit = -1.5 - 0.03 * tenure + 0.01 * charges + 0.3 * calls + (contract == "monthly") * 0.8
    prob = 1 / (1 + np.exp(-logit))
    return pd.DataFrame({
        "tenure_months": tenure, "monthly_charges": charges, "support_calls": calls,
        "contract": contract, "region": region,
        "prediction": prob.round(4), "churned": (rng.random(ROWS) < prob).astype(int),
    })


def credit(rng: np.random.Generator, shift: float) -> pd.DataFrame:
    income = rng.lognormal(10.8 + 0.15 * shift, 0.4, ROWS).round(0)
    utilisation = rng.beta(2 + shift, 5, ROWS).round(3)
    age = rng.integers(21, 75, ROWS)
    accounts = rng.poisson(3, ROWS)
    employment = rng.choice(["employed", "self_employed", "retired", "student"], ROWS, p=[0.6, 0.2, 0.12, 0.08])
    housing = rng.choice(["own", "rent", "family"], ROWS, p=[0.5, 0.4, 0.1])
    limit = (0.12 * income * (1 - utilisation) + 200 * accounts).round(-2)
    noise = rng.normal(0, 300, ROWS)
    return pd.DataFrame({
        "income": income, "utilisation": utilisation, "age": age, "open_accounts": accounts,
        "employment": employment, "housing": housing,
        "prediction": (limit + noise).round(-2), "limit": limit,
    })


def fraud(rng: np.random.Generator, shift: float) -> pd.DataFrame:
    amount = rng.lognormal(3.5 + 1.2 * shift, 1.0, ROWS).round(2)
    hour = rng.integers(0, 24, ROWS)
    merchant_risk = rng.beta(2, 8 - 4 * shift, ROWS).round(3)
    distance = rng.exponential(15 + 60 * shift, ROWS).round(1)
    channels = ["pos", "online", "atm"] + (["crypto_exchange"] if shift else [])
    probs = [0.5, 0.4, 0.1] if not shift else [0.25, 0.45, 0.1, 0.2]
    channel = rng.choice(channels, ROWS, p=probs)
    country = rng.choice(["DE", "FR", "NL", "ES", "IT"], ROWS)
    score = 1 / (1 + np.exp(-(-6 + 0.4 * np.log1p(amount) + 4 * merchant_risk + 0.01 * distance)))
    data = pd.DataFrame({
        "amount": amount, "hour": hour, "merchant_risk": merchant_risk, "distance_km": distance,
        "channel": channel, "country": country,
        "prediction": score.round(4), "is_fraud": (rng.random(ROWS) < score).astype(int),
    })
    if shift:
        data.loc[data.sample(frac=0.25, random_state=1).index, "merchant_risk"] = None
    return data


def main() -> None:
    for name, make, shift in (("churn", churn, 0.0), ("credit", credit, 0.35), ("fraud", fraud, 1.0)):
        make(np.random.default_rng(11), 0.0).to_csv(HERE / f"{name}-reference.csv", index=False)
        make(np.random.default_rng(12), shift).to_csv(HERE / f"{name}-current.csv", index=False)


if __name__ == "__main__":
    main()
