"""The application layer: one package per part of the control loop (DESIGN §4)."""
