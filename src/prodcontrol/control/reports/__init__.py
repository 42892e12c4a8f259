"""What leaders and auditors read: the operating review, the charts, and the demo's simulated
history."""
