"""Shapes before allocation: the exact check on the meta device, the arithmetic rules, the diagnosis of a mismatch, the memory budget and the summary table."""
