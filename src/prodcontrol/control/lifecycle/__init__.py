"""A model's life through gates: use-case approval, promotion, model review, retire; what MLflow's
registry events set off; a new inventory entry from what MLflow knows."""
