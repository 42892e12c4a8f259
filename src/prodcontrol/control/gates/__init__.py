"""Decide gates, expire them, queue the actions a decision sets off and apply them; waivers."""
