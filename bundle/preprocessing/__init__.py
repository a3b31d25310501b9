"""Preprocessing shared by inference and training: brain extraction, bias field, intensity, 2.5D slice stacks."""
