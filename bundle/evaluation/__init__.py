"""Measurement commands a user runs: evaluate, cross-validation, benchmark."""
