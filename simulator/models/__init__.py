"""Optimisation models: one module per model, the math in each docstring."""
