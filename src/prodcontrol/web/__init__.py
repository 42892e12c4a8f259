"""The web side: Slack interactivity endpoint and the evidence browser (FastAPI)."""
